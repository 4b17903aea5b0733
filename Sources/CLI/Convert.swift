import ArgumentParser
import Foundation
import SofieBackends
import SofieDriver
import SofieFrontends
import SofieIR
import SofiePasses

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a model to ONNX.",
        discussion: """
        Reads INPUT and writes it as an ONNX file. ONNX input keeps its IR version and opsets (tensors stored as raw data, local functions inlined). Keras input (.keras from Keras 3, .h5 from Keras 2 or 3) is lowered to ONNX opset 18 without TensorFlow: channels_last layers become channels-first ONNX ops between explicit Transposes; the batch dimension stays symbolic. Unsupported layer classes or options are errors naming the layer, its class, and the supported classes. The output appears only when it is complete: nothing is left behind on failure.
        """
    )

    @Argument(help: "The model to convert (.onnx, .keras, .h5).")
    var input: String

    @Option(name: .shortAndLong, help: "Where to write the ONNX model (a path ending in .onnx).")
    var output: String

    @OptionGroup var passOptions: PassOptions
    @OptionGroup var limits: LimitOptions

    @Flag(name: .long, help: "Keep swift-sofie's own fused ops (domain org.sofie: FusedConv, FusedGemm, Gelu) in the output, for inspection; other ONNX tools cannot run them. Without it the output holds only standard ONNX ops.")
    var sofieOps = false

    func validate() throws {
        guard output.lowercased().hasSuffix(".onnx") else {
            throw ValidationError("the output '\(output)' should end in .onnx: convert writes ONNX models")
        }
    }

    func run() throws {
        limits.apply()
        do {
            let model = try ModelLoader.load(path: input)
            try Verifier.verify(model)
            let statistics = passOptions.stats ? PassStatistics() : nil
            try Compiler.optimize(model, passes: try passOptions.chosen(), keepSofieOps: sofieOps, verifyEach: passOptions.verifyEach,
                                  afterEach: passOptions.hook(), statistics: statistics)
            try Verifier.verify(model)
            try ONNXWriter.write(model, to: output)
            print("wrote \(output): \(model.graph.nodes.count) nodes, \(model.graph.initializers.count) initializers")
            if let statistics { print(statistics.text) }
        } catch let e as PassError {
            fail(Compiler.Failure(file: input, underlying: e))
        } catch let e as CompileError {
            fail(Compiler.Failure(file: input, underlying: e))
        } catch {
            fail(error, file: input)
        }
    }
}
