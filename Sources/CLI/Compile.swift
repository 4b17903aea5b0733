import ArgumentParser
import Foundation
import SofieBackends
import SofieDriver
import SofieIR
import SofiePasses

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compile a model to a self-contained C++17 header.",
        discussion: """
        Writes DIR/NAME.hxx, which needs only a C++17 compiler and the standard library, and, when the weights go to a file, DIR/NAME.weights. In C++:

          #include "NAME.hxx"
          NAME::Session session;                  // embedded weights
          NAME::Session session("NAME.weights");  // weights in a file
          session.infer(input, output);           // raw pointers, one per model input/output
          auto y = session.infer(inputVector);    // std::vector convenience

        Build it with optimization and your target's instruction set, e.g. g++ -std=c++17 -O3 -march=native: the kernels use SIMD vectors as wide as the target has (AVX-512, AVX, or 128-bit SSE2/NEON), and a build without -O3 or target flags runs several times slower.

        Other symbolic dimensions than the leading (batch) one need --dim NAME=VALUE, or --dim NAME=max:BOUND to choose them at run time up to BOUND: infer(n, ...) then takes the value (compiled once; memory planned for the bound; out of range throws std::out_of_range). Lengths that values choose (NonZero, Compress, Unique, NonMaxSuppression, TopK with k as an input) are bounded by the largest they can be, or by --dim NODE_len=max:BOUND; a Range over run-time values needs that bound. The code throws std::length_error beyond it, and session.last_NODE_len() gives the length of the last run. A symbolic leading dimension stays a run-time argument, infer(batch, ...), when every op keeps the rows of the batch independent (the usual case); the code is then compiled for one row and, for models with dense layers, again for blocks of --batch-block rows: infer(batch, ...) runs whole blocks as real matrix products and the remaining rows one by one. Otherwise the batch is fixed to --batch (default 1) and sofie says why. Shape computations and constants are folded at compile time. An op, attribute or shape that cannot be compiled is an error naming the node, its op and the reason.
        """
    )

    @Argument(help: "The model to compile (.onnx, .keras, .h5).")
    var model: String

    @Option(name: .shortAndLong, help: "Folder to write the header (and weights file) into; created if missing.")
    var output: String

    @Option(name: .long, help: "Name of the C++ namespace and of the files (default: the model file's name).")
    var name: String?

    @Option(name: .long, help: "Where the weights go: embed (in the header), file (NAME.weights), or auto (embed up to 1 MiB).")
    var weights: String = "auto"

    @OptionGroup var dims: DimOptions

    @Option(name: .long, help: "Value of a symbolic leading (batch) dimension.")
    var batch: Int = 1

    @Option(name: .long, help: "With a run-time batch: also compile the model for blocks of these many rows (comma-separated, e.g. 64,16), so that infer(batch, ...) runs whole blocks as real matrix products, largest first, and the remaining rows one by one (1: no block bodies). Default: 64,16 for models with dense layers and no convolutions, as far as a block needs at most 8 MiB of scratch.")
    var batchBlock: String?

    @Flag(name: .customLong("c-api"), help: "Also write NAME_c.h and NAME_c.cpp: a C interface (NAME_create, NAME_infer, NAME_destroy, NAME_status_message; status codes, no exceptions across it) for C, Fortran, Julia or Python ctypes. Build NAME_c.cpp as C++17, e.g. into a shared library: g++ -std=c++17 -O3 -march=native -fPIC -shared NAME_c.cpp -o libNAME.so.")
    var cApi = false

    @Flag(name: .customLong("no-winograd"), help: "Run 3×3 stride-1 convolutions with the direct kernel instead of Winograd F(2×2, 3×3) (by default for outputs larger than 8×8; smaller ones always run direct). Winograd is 1.3–2.5× faster on them, but its transformed weights take 16/9 the space (keras.applications ResNet50: 137 MB of weights instead of 102 MB) and its sums round differently (within the usual float tolerance).")
    var noWinograd = false

    @OptionGroup var passOptions: PassOptions
    @OptionGroup var limits: LimitOptions

    func validate() throws {
        guard WeightsPlacement(rawValue: weights) != nil else {
            throw ValidationError("--weights must be one of embed, file, auto (got '\(weights)')")
        }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        _ = try blockSizes()
    }

    /// The --batch-block row counts (nil when not given); throws the usage error for a malformed list.
    func blockSizes() throws -> [Int]? {
        guard let b = batchBlock else { return nil }
        let sizes = b.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 != nil && $0! >= 1 && $0! <= 4096 }) else {
            throw ValidationError("--batch-block expects row counts between 1 and 4096 separated by commas, e.g. 64,16 (got '\(b)')")
        }
        return sizes.compactMap { $0 }
    }

    func run() throws {
        limits.apply()
        let stem = name ?? URL(fileURLWithPath: model).deletingPathExtension().lastPathComponent
        var options = Compiler.Options(name: stem)
        options.weights = WeightsPlacement(rawValue: weights)!
        options.dims = try dims.values()
        options.bounds = try dims.bounds()
        options.batch = batch
        options.cApi = cApi
        options.winograd = !noWinograd
        options.batchBlocks = try blockSizes()
        do {
            options.passes = try passOptions.chosen()
            options.verifyEach = passOptions.verifyEach
            options.afterEach = passOptions.hook()
            options.statistics = passOptions.stats ? PassStatistics() : nil
            let start = Date()
            let emitted = try Compiler.compile(path: model, directory: output, options: options)
            let ms = Date().timeIntervalSince(start) * 1000
            var msg = "wrote \(output)/\(emitted.headerFileName)"
            if let w = emitted.weights { msg += " and \(output)/\(emitted.weightsFileName) (\(w.count) bytes)" }
            if cApi { msg += ", with the C interface \(output)/\(emitted.namespace)_c.h and _c.cpp" }
            print(msg + String(format: " in %.0f ms", ms))
            if let st = options.statistics { print(st.text) }
            for warning in emitted.warnings { FileHandle.standardError.write(Data("warning: \(model): \(warning)\n".utf8)) }
            if emitted.runtimeBatch {
                if !emitted.blockSizes.isEmpty {
                    print("batch: any size at run time, with infer(batch, ...): blocks of \(emitted.blockSizes.map(String.init).joined(separator: ", then ")) rows, the rest one by one")
                } else {
                    print("batch: any size at run time, with infer(batch, ...) (the model keeps batch rows independent)")
                }
            } else if let reason = emitted.fixedBatchReason {
                print("batch: fixed at \(batch) at compile time: \(reason)")
            }
            let args = emitted.runtimeDimensions.filter { !$0.dimension.fromValues }, lengths = emitted.runtimeDimensions.filter(\.dimension.fromValues)
            if !args.isEmpty {
                print("run-time dimensions: \(args.map { "\($0.argument) in \($0.dimension.minimum)...\($0.dimension.bound)" }.joined(separator: ", ")): session.infer(\(args.map(\.argument).joined(separator: ", ")), ...)")
            }
            for l in lengths {
                print("length computed at run time: \(l.argument) in \(l.dimension.minimum)...\(l.dimension.bound) (session.last_\(l.argument)() after infer)")
            }
            for (rows, reason) in emitted.droppedBlocks { print("note: no block body of \(rows) rows: \(reason)") }
        } catch {
            fail(error, file: model)
        }
    }
}
