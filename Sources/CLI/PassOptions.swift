import ArgumentParser
import Foundation
import SofieBackends
import SofieDriver
import SofieIR
import SofiePasses

/// Options that choose and inspect the optimization passes (shared by convert and compile).
struct PassOptions: ParsableArguments {
    @Option(name: .long, help: "Comma-separated passes to run, in order, repeated until nothing changes (see `sofie passes`); `default` stands for the default pipeline, e.g. default,my-pass. Default: \(PassRegistry.defaultPipeline.joined(separator: ",")).")
    var passes: String?

    @Option(name: .long, help: ArgumentHelp("Load passes from a shared library built against the Sofie library (repeatable); they can then be named in --passes.",
                                            discussion: "A plugin is a Swift package's .dynamic library that calls PassPlugin.export([...]) from a @_cdecl(\"sofie_plugin_init\") function; Examples/CustomPass is one.", valueName: "PATH"))
    var loadPassPlugin: [String] = []

    @Flag(name: .customLong("O0", withSingleDash: true), help: "Run no optimization passes.")
    var noOptimization = false

    @Flag(name: .long, help: "Check that the graph is well-formed after every pass.")
    var verifyEach = false

    @Flag(name: .long, help: "Print what each pass did: runs, runs that changed the graph, nodes removed and added, time.")
    var stats = false

    @Option(name: .long, help: "Print the graph after each run of this pass (repeatable).")
    var printAfter: [String] = []

    @Option(name: .long, help: "Write the model as ONNX into --dump-dir after each run of this pass (repeatable).")
    var dumpAfter: [String] = []

    @Option(name: .long, help: "Folder for --dump-after files (default: the current folder).")
    var dumpDir: String = "."

    func validate() throws {
        if noOptimization && passes != nil { throw ValidationError("give either --passes or -O0, not both") }
        // Plugins first: their passes may be named below and in --passes.
        for path in loadPassPlugin {
            do { try PassPlugin.load(path) } catch { throw ValidationError("\(error)") }
        }
        for name in printAfter + dumpAfter where PassRegistry.make(name) == nil {
            throw ValidationError("no pass named '\(name)'; the passes are: \(PassRegistry.builtins.map(\.name).joined(separator: ", "))")
        }
    }

    func chosen() throws -> [GraphPass]? {
        if noOptimization { return [] }
        return try passes.map { try PassRegistry.pipeline($0) }
    }

    func hook() -> ((GraphPass, Model, Bool) throws -> Void)? {
        guard !printAfter.isEmpty || !dumpAfter.isEmpty else { return nil }
        var runs: [String: Int] = [:]
        return { pass, model, changed in
            runs[pass.name, default: 0] += 1
            if printAfter.contains(pass.name) {
                print("// after \(pass.name) (run \(runs[pass.name]!), \(changed ? "changed" : "no change")): \(model.graph.nodes.count) nodes")
                print(GraphPrinter.text(model.graph))
            }
            if dumpAfter.contains(pass.name) {
                let path = "\(dumpDir)/after-\(pass.name)-\(runs[pass.name]!).onnx"
                try ONNXWriter.write(model, to: path)
                print("wrote \(path)")
            }
        }
    }
}

struct Passes: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the built-in optimization passes (and those of pass plugins).",
        discussion: "Passes are chained with --passes a,b,c on convert and compile and run, in order, until nothing changes; -O0 runs none. Library users register their own passes with PassRegistry.register; pass plugins add theirs with --load-pass-plugin."
    )

    @Option(name: .long, help: ArgumentHelp("Also list the passes of this pass plugin (repeatable).", valueName: "PATH"))
    var loadPassPlugin: [String] = []

    func run() throws {
        var plugins: [(String, [String])] = []
        for path in loadPassPlugin {
            do { plugins.append((path, try PassPlugin.load(path))) } catch { fail(error) }
        }
        let width = (PassRegistry.builtins.map(\.name.count) + plugins.flatMap { $0.1.map(\.count) }).max() ?? 0
        for (name, make) in PassRegistry.builtins {
            let mark = PassRegistry.defaultPipeline.contains(name) ? "*" : " "
            print("\(mark) \(name.padding(toLength: width, withPad: " ", startingAt: 0))  \(make().summary)")
        }
        print("(* = in the default pipeline)")
        for (path, names) in plugins {
            print("from \(path):")
            for name in names { print("  \(name.padding(toLength: width, withPad: " ", startingAt: 0))  \(PassRegistry.make(name)?.summary ?? "")") }
        }
    }
}
