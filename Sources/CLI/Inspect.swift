import ArgumentParser
import Foundation
import SofieBackends
import SofieDriver
import SofieFrontends
import SofieIR
import SofiePasses

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a model's inputs, outputs, operators, parameters and opsets.",
        discussion: """
        Reads MODEL (.onnx, .keras or .h5; Keras models are shown as lowered to ONNX) and prints: the producer and IR version; every input and output with its element type and shape (symbolic dimensions by name); how often each operator occurs (including inside subgraphs); the number and size of parameters (initializers, and constants made by Constant/ConstantOfShape nodes); and the imported opsets.
        """
    )

    @Argument(help: "The model file to inspect (.onnx, .keras, .h5).")
    var model: String

    @Option(name: .long, help: "Also write a self-contained HTML page (no scripts, no external files) showing the graph as read and after the optimization pipeline of sofie compile side by side: operators coloured by family, tensor shapes on the edges, nodes the pipeline removed dashed red, nodes it created outlined green, operator counts before and after. Open it in any browser.")
    var html: String?

    @OptionGroup var limits: LimitOptions

    func run() throws {
        let loaded: Model
        limits.apply()
        do {
            loaded = try ModelLoader.load(path: model)
            // Lenient shape inference fills in what the file leaves out and refuses numbers no
            // model can mean (overflowing sizes, out-of-range axes), as convert and compile do.
            _ = try ShapeInference().run(loaded)
        } catch {
            fail(error, file: model)
        }
        print(render(loaded, file: model))
        if let html {
            do {
                let optimized = loaded.clone()
                // The passes `sofie compile` runs, its backend fusions (org.sofie ops) included.
                try Compiler.optimize(optimized, passes: nil, keepSofieOps: true)
                _ = try ShapeInference().run(optimized)
                let page = GraphHTML.render(before: loaded, after: optimized, file: model,
                                            pipeline: PassRegistry.defaultPipeline.joined(separator: ", ") + " (as sofie compile runs it)")
                try AtomicFile.write(page, to: html)
                print("wrote \(html): \(loaded.graph.nodes.count) nodes as read, \(optimized.graph.nodes.count) after the pipeline")
            } catch {
                fail(error, file: model)
            }
        }
    }

    func render(_ m: Model, file: String) -> String {
        var out = "model:     \(file)\n"
        let producer = [m.producerName, m.producerVersion].filter { !$0.isEmpty }.joined(separator: " ")
        out += "format:    ONNX, IR version \(m.irVersion)\(producer.isEmpty ? "" : ", produced by \(producer)")\n"
        out += "opsets:    " + m.opsetImports.map { "\($0.domain.isEmpty ? "ai.onnx" : $0.domain) \($0.version)" }.joined(separator: ", ") + "\n"
        out += "graph:     '\(m.graph.name)'\n"
        func table(_ title: String, _ values: [Value]) {
            out += "\(title) (\(values.count)):\n"
            let width = min(40, values.map(\.name.count).max() ?? 0)
            for v in values {
                out += "  " + v.name.padding(toLength: max(width, v.name.count), withPad: " ", startingAt: 0)
                out += "  " + (v.type?.description ?? "untyped") + "\n"
            }
        }
        let realInputs = m.graph.inputs.filter { $0.initializer == nil }
        table("inputs", realInputs)
        table("outputs", m.graph.outputs)
        let s = ModelStatistics.summarize(m.graph)
        out += "nodes:     \(s.nodeCount)\n"
        out += "parameters: \(count(s.initializerElements + s.constantNodeElements)) (\(bytes(s.initializerBytes + s.constantNodeBytes)))"
        out += ": \(count(s.initializerElements)) in \(s.initializerCount) initializers"
        if s.constantNodeElements > 0 { out += ", \(count(s.constantNodeElements)) made by constant nodes" }
        out += "\n"
        let hist = m.graph.opHistogram().sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        out += "operators (\(hist.count) kinds):\n"
        let w = hist.map(\.key.count).max() ?? 0
        for (op, n) in hist { out += "  " + op.padding(toLength: w, withPad: " ", startingAt: 0) + "  \(n)\n" }
        return String(out.dropLast())
    }

    func count(_ n: Int) -> String {
        if n >= 1_000_000 { return String(format: "%.2f M", Double(n) / 1e6) }
        if n >= 10_000 { return String(format: "%.1f k", Double(n) / 1e3) }
        return "\(n)"
    }

    func bytes(_ n: Int) -> String {
        if n >= 1 << 20 { return String(format: "%.1f MiB", Double(n) / Double(1 << 20)) }
        if n >= 1 << 10 { return String(format: "%.1f KiB", Double(n) / 1024) }
        return "\(n) B"
    }
}
