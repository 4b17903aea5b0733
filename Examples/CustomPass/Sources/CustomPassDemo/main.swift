// A custom pass, declared with swift-sofie's pattern-rewrite API, registered by name and run
// in a pipeline together with built-in passes; the result is written as ONNX and compiled to C++.
//
//   swift run custom-pass-demo MODEL.onnx OUT_DIR
import Foundation
import SofieBackends
import SofieDriver
import SofieFrontends
import SofieIR
import SofiePasses
import CustomPasses

let args = CommandLine.arguments
guard args.count == 3 else {
    FileHandle.standardError.write(Data("usage: custom-pass-demo MODEL OUT_DIR\n".utf8))
    exit(2)
}
do {
    PassRegistry.register("collapse-double-relu") { collapseRelu }
    PassRegistry.register("report-ops") { ReportOps() }
    let model = try ModelLoader.load(path: args[1])
    let before = model.graph.nodes.count
    let pipeline = try PassRegistry.pipeline("report-ops,collapse-double-relu,eliminate-identity,eliminate-dead-code")
    try PassManager(pipeline, fixedPoint: true, verifyEach: true).run(model)
    print("nodes: \(before) -> \(model.graph.nodes.count)")
    try FileManager.default.createDirectory(atPath: args[2], withIntermediateDirectories: true)
    try ONNXWriter.write(model, to: args[2] + "/optimized.onnx")
    var options = Compiler.Options(name: "demo")
    options.passes = []  // already optimized
    let emitted = try Compiler.emit(model, options: options, source: args[1])
    try AtomicFile.write(emitted.header, to: args[2] + "/" + emitted.headerFileName)
    print("wrote \(args[2])/optimized.onnx and \(args[2])/\(emitted.headerFileName)")
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
