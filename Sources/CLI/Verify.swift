import ArgumentParser
import Foundation
import SofieDriver
import SofieIR

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compile a model, build and run the C++ on inputs, and compare with ONNX Runtime.",
        discussion: """
        Compiles MODEL as `sofie compile` does (into a temporary folder), builds it with the system C++ compiler ($CXX, else g++ or clang++; -O3 -march=native unless --cxx-flags says otherwise), runs it on the inputs given as NumPy .npy files (--input NAME=FILE or --input INDEX=FILE) or on seeded random inputs of the right types and sizes (floats in [-1, 1), integer indices within the extent they index), and runs ONNX Runtime on the same inputs through a Python that has onnxruntime and numpy (--python, else $SOFIE_PYTHON, ./.venv, python3 on the PATH). Without such a Python (or with --swift-reference) the reference is sofie's own Swift evaluator of the graph before optimization, in float64, which covers the common ops (dense, convolution, pooling, normalization, recurrent, Resize nearest/linear, elementwise and shape ops) and names any op it lacks. Keras models are compared on their ONNX lowering, as `sofie convert` writes it.

        Prints, per output, the largest absolute and relative difference and the worst ratio to the tolerance |a-b| <= atol + rtol*|ref| (1 is the limit), and the time per inference; exits 1 when an output differs (or anything fails), 0 when all match. With --dim NAME=max:BOUND the code is compiled once and checked at the smallest value, about half and the bound of each such dimension (random inputs of those sizes).
        """
    )

    @Argument(help: "The model to verify (.onnx, .keras, .h5).")
    var model: String

    @Option(name: .long, parsing: .singleValue, help: "An input as a .npy file: NAME=FILE or INDEX=FILE (repeatable). Inputs not given are random.")
    var input: [String] = []

    @Option(name: .long, help: "Timed runs after one warm-up run.")
    var runs: Int = 10

    @Option(name: .long, help: "Rows of the random inputs when the model has a run-time batch.")
    var batch: Int = 1

    @Option(name: .long, help: "Seed of the random inputs.")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Python with onnxruntime and numpy for the reference.")
    var python: String?

    @Flag(name: .customLong("swift-reference"), help: "Compare with sofie's own Swift reference evaluator (float64, the graph before optimization) instead of ONNX Runtime; the default when no Python with onnxruntime is found.")
    var swiftReference = false

    @Option(name: .long, help: "C++ compiler (default: $CXX, else g++ or clang++ on the PATH).")
    var cxx: String?

    @Option(name: .long, help: "Flags for the C++ compiler besides -std=c++17, space-separated.")
    var cxxFlags: String = "-O3 -march=native"

    @Option(name: .long, help: "Relative tolerance.")
    var rtol: Double = 1e-4

    @Option(name: .long, help: "Absolute tolerance.")
    var atol: Double = 1e-5

    @Option(name: .long, help: "Write sofie's outputs as .npy files into this folder (named after the outputs).")
    var saveOutputs: String?

    @OptionGroup var dims: DimOptions

    @OptionGroup var limits: LimitOptions

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard rtol >= 0, atol >= 0 else { throw ValidationError("--rtol and --atol must not be negative") }
        for i in input where !i.contains("=") { throw ValidationError("--input expects NAME=FILE or INDEX=FILE, got '\(i)'") }
    }

    func run() throws {
        limits.apply()
        var options = ModelVerification.Options(name: "model")
        for i in input {
            let parts = i.split(separator: "=", maxSplits: 1).map(String.init)
            options.inputs[parts[0]] = parts[1]
        }
        options.compile.dims = try dims.values()
        options.compile.bounds = try dims.bounds()
        options.runs = runs
        options.batch = batch
        options.seed = seed
        options.python = python
        options.swiftReference = swiftReference
        options.cxx = cxx
        options.cxxFlags = cxxFlags.split(separator: " ").map(String.init)
        options.rtol = rtol
        options.atol = atol
        options.saveOutputs = saveOutputs
        let report: ModelVerification.Report
        do {
            report = try ModelVerification.verify(path: model, options: options)
        } catch {
            fail(error, file: model)
        }
        print("model:     \(model)")
        print("built:     \(report.compiler)")
        print("reference: \(report.reference)")
        if !report.sizes.isEmpty { print("sizes:     \(report.sizes.joined(separator: "; ")) (compiled once; the figures are the worst over them, the time at the last)") }
        let width = max(6, report.outputs.map(\.name.count).max() ?? 0)
        print("output".padding(toLength: width, withPad: " ", startingAt: 0) + "  max |a-b|    max rel      worst/tol  result")
        for o in report.outputs {
            print(o.name.padding(toLength: width, withPad: " ", startingAt: 0)
                  + String(format: "  %-11.3g  %-11.3g  %-9.3g  %@", o.maxAbs, o.maxRel, o.worst, o.passed ? "ok" : "MISMATCH"))
        }
        print(String(format: "time:      %.2f µs per inference (mean of %d runs)", report.microsecondsPerRun, runs))
        if report.passed {
            print("match: every output within |a-b| <= \(atol) + \(rtol)*|ref|")
        } else {
            FileHandle.standardError.write(Data("error: \(model): \(report.outputs.filter { !$0.passed }.map(\.name).joined(separator: ", ")) differ from ONNX Runtime beyond |a-b| <= \(atol) + \(rtol)*|ref|\n".utf8))
            Foundation.exit(1)
        }
    }
}
