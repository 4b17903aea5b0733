import ArgumentParser
import Foundation
import SofieBackends
import SofieFrontends
import SofieIR

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a model to ONNX.",
        discussion: """
        Reads INPUT (.onnx), checks that its graph is well-formed, and writes it as an ONNX file
        (IR version and opsets kept; tensors stored as raw data; ONNX local functions inlined).
        The output appears only when it is complete: nothing is left behind on failure.
        """
    )

    @Argument(help: "The model to convert (.onnx).")
    var input: String

    @Option(name: .shortAndLong, help: "Where to write the ONNX model (a path ending in .onnx).")
    var output: String

    func validate() throws {
        guard output.lowercased().hasSuffix(".onnx") else {
            throw ValidationError("the output '\(output)' should end in .onnx: convert writes ONNX models")
        }
    }

    func run() throws {
        do {
            let model = try ModelLoader.load(path: input)
            try Verifier.verify(model)
            try ONNXWriter.write(model, to: output)
            print("wrote \(output): \(model.graph.nodes.count) nodes, \(model.graph.initializers.count) initializers")
        } catch {
            fail(error)
        }
    }
}
