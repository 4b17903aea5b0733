import Foundation
import SofieBackends
import SofieFrontends
import SofieIR
import SofiePasses

/// `sofie verify`: compiles a model, builds the header with the system C++ compiler, runs it on
/// given (.npy) or seeded random inputs and compares its outputs with ONNX Runtime's on the same
/// inputs (through a Python that has onnxruntime). Keras models are compared on their ONNX
/// lowering (what `sofie convert` writes), so the check covers sofie's passes and C++ kernels.
public enum ModelVerification {
    public struct Options {
        public var compile: Compiler.Options
        /// Input files by input name or position ("0", "1", ...).
        public var inputs: [String: String] = [:]
        public var runs = 10
        public var python: String?
        /// Compare with sofie's own Swift reference evaluator instead of ONNX Runtime (the
        /// default when no Python with onnxruntime is found).
        public var swiftReference = false
        public var cxx: String?
        public var cxxFlags = ["-O3", "-march=native"]
        public var rtol = 1e-4, atol = 1e-5
        public var saveOutputs: String?
        public var seed: UInt64 = 1
        /// Rows of random inputs for a model with a run-time batch.
        public var batch = 1
        public var workDirectory: String?
        public init(name: String) { compile = Compiler.Options(name: name) }
    }

    public struct OutputReport {
        public let name: String
        public let maxAbs: Double
        public let maxRel: Double
        public let worst: Double  // max |a-b| / (atol + rtol |ref|); <= 1 passes
        public var passed: Bool { worst <= 1 }
    }

    public struct Report {
        public var outputs: [OutputReport] = []
        public var microsecondsPerRun = 0.0
        public var reference = ""
        public var compiler = ""
        /// With run-time dimensions: the sizes checked ("n = 1", "n = 16", ...), the outputs'
        /// figures the worst over them and the time the one at the bounds.
        public var sizes: [String] = []
        public var passed: Bool { outputs.allSatisfy(\.passed) }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// A Python that can import onnxruntime and numpy: the given one, $SOFIE_PYTHON, .venv next
    /// to the current directory, or python3 on the PATH.
    public static func findPython(_ given: String?) -> String? {
        var candidates: [String] = []
        if let given { return canRunORT(given) ? given : nil }
        if let env = ProcessInfo.processInfo.environment["SOFIE_PYTHON"] { candidates.append(env) }
        candidates.append(FileManager.default.currentDirectoryPath + "/.venv/bin/python")
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            candidates.append("\(dir)/python3")
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) && canRunORT($0) }
    }

    static func canRunORT(_ python: String) -> Bool {
        (try? run(python, ["-c", "import onnxruntime, numpy"]).status) == 0
    }

    public static func findCompiler(_ given: String?) -> String? {
        if let given { return given }
        if let env = ProcessInfo.processInfo.environment["CXX"], !env.isEmpty { return env }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            for c in ["g++", "clang++"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(c)") { return "\(dir)/\(c)" }
        }
        return nil
    }

    struct RunResult { let status: Int32; let output: String }

    static func run(_ exe: String, _ args: [String]) throws -> RunResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe.contains("/") ? exe : "/usr/bin/env")
        p.arguments = exe.contains("/") ? args : [exe] + args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return RunResult(status: p.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    /// Seeded inputs of the right types and sizes: floats uniform in [-1, 1), integers in
    /// [0, bound) where bound is the smallest extent they index (Gather's data along its axis),
    /// else 10; booleans half true.
    static func randomInputs(_ model: Model, ports: [EmittedCpp.Port], batch: Int, seed: UInt64, shapes: [[Int]]? = nil,
                             sizes: [String: Int] = [:]) throws -> [Tensor] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1
        func next() -> UInt64 {  // SplitMix64
            state = state &+ 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let graphInputs = model.graph.inputs.filter { $0.initializer == nil }
        var out: [Tensor] = []
        for (k, p) in ports.enumerated() {
            let row = shapes?[k] ?? p.shape
            let dims = p.batched ? [batch] + row.dropFirst() : row
            let n = try Checked.product(dims)
            // The smallest extent the input indexes as Gather's indices; 10 if it indexes nothing.
            var extents: [Int] = []
            if k < graphInputs.count {
                for use in graphInputs[k].uses where use.node.opType == "Gather" && use.index == 1 {
                    let axis = use.node.int("axis") ?? 0
                    // (A symbolic extent checked at a run-time dimension's value: that value.)
                    if let dims = use.node.input(0)?.tensorType?.shape, !dims.isEmpty {
                        let a = axis < 0 ? axis + dims.count : axis
                        var extent: Int? = nil
                        if a >= 0 && a < dims.count {
                            switch dims[a] {
                            case .fixed(let v): extent = v
                            case .symbolic(let name): extent = sizes[name]
                            case .unknown: extent = nil
                            }
                        }
                        if let extent, extent > 0 { extents.append(extent) }
                    }
                }
            }
            // Integers that index nothing directly: below 10, or with run-time dimensions below
            // the smallest of their values (edge lists index nodes through further Gathers).
            let bound = extents.min() ?? min(10, sizes.values.min() ?? 10)
            let name = graphInputs.indices.contains(k) ? graphInputs[k].name : "input\(k)"
            switch p.dataType {
            case .float: out.append(Tensor(name: name, dataType: .float, dims: dims, values: (0..<n).map { _ in Float(Double(next() >> 11) / Double(1 << 53) * 2 - 1) }))
            case .double: out.append(Tensor(name: name, dataType: .double, dims: dims, values: (0..<n).map { _ in Double(next() >> 11) / Double(1 << 53) * 2 - 1 }))
            case .int64: out.append(Tensor(name: name, dataType: .int64, dims: dims, values: (0..<n).map { _ in Int64(next() % UInt64(bound)) }))
            case .int32: out.append(Tensor(name: name, dataType: .int32, dims: dims, values: (0..<n).map { _ in Int32(next() % UInt64(bound)) }))
            case .int8: out.append(Tensor(name: name, dataType: .int8, dims: dims, values: (0..<n).map { _ in Int8(next() % UInt64(min(bound, 127))) }))
            case .uint8: out.append(Tensor(name: name, dataType: .uint8, dims: dims, values: (0..<n).map { _ in UInt8(next() % UInt64(min(bound, 255))) }))
            case .bool: out.append(Tensor(name: name, dataType: .bool, dims: dims, values: (0..<n).map { _ in UInt8(next() & 1) }))
            case .float16:
                out.append(Tensor(name: name, dataType: .float16, dims: dims,
                                  values: (0..<n).map { _ in Float16(Double(next() >> 11) / Double(1 << 53) * 2 - 1).bitPattern }))
            default: throw Failure(description: "input \(k) ('\(name)') is of type \(p.dataType): give it with --input \(k)=FILE.npy")
            }
        }
        return out
    }

    static let referenceScript = """
    import sys, numpy as np, onnxruntime as ort
    model, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.log_severity_level = 3
    s = ort.InferenceSession(model, so, providers=['CPUExecutionProvider'])
    feeds = {i.name: np.load(f'{out}/in{k}.npy') for k, i in enumerate(s.get_inputs()[:n])}
    for k, y in enumerate(s.run(None, feeds)):
        np.save(f'{out}/ref{k}.npy', np.asarray(y))
    print('onnxruntime', ort.__version__)
    """

    public static func verify(path: String, options: Options) throws -> Report {
        guard let cxx = findCompiler(options.cxx) else { throw Failure(description: "no C++ compiler found (g++ or clang++ on the PATH, or $CXX, or --cxx)") }
        var python: String? = nil
        if !options.swiftReference {
            python = findPython(options.python)
            if python == nil, let given = options.python { throw Failure(description: "\(given) cannot import onnxruntime and numpy") }
        }
        let work = options.workDirectory ?? NSTemporaryDirectory() + "sofie-verify-\(getpid())"
        try? FileManager.default.removeItem(atPath: work)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { if options.workDirectory == nil { try? FileManager.default.removeItem(atPath: work) } }

        // The reference model: the ONNX file itself, or a Keras model's lowering.
        // The model is read once; the compile and the Swift reference each work on a copy.
        let isONNX = path.lowercased().hasSuffix(".onnx")
        let original = try ModelLoader.load(path: path)
        let referenceModel = isONNX ? path : work + "/reference.onnx"
        if !isONNX { try ONNXWriter.write(original, to: referenceModel) }

        var compileOptions = options.compile
        compileOptions.name = "model"
        compileOptions.weights = .file
        let emitted = try Compiler.compile(original.clone(), source: path, directory: work, options: compileOptions)
        let batched = emitted.inputs.contains { $0.batched }
        // Run-time dimensions (--dim N=max:B): the one compiled code is checked at the smallest
        // value, near half and at the bound of every dimension infer takes (lengths computed
        // from values follow the inputs).
        let argDims = emitted.runtimeDimensions.filter { !$0.dimension.fromValues }
        var sizeSets: [[String: Int]] = [[:]]
        if !argDims.isEmpty {
            guard options.inputs.isEmpty else { throw Failure(description: "--input files are not taken with --dim NAME=max:BOUND: sofie verify checks the compiled code at sizes of its own (the smallest, about half, the bound)") }
            sizeSets = []
            for pick in [{ (d: RuntimeDimension) in d.minimum }, { max($0.minimum, ($0.bound + 1) / 2) }, { $0.bound }] {
                let set = Dictionary(uniqueKeysWithValues: argDims.map { ($0.dimension.name, pick($0.dimension)) })
                if !sizeSets.contains(set) { sizeSets.append(set) }
            }
        }
        let argOf = Dictionary(uniqueKeysWithValues: emitted.runtimeDimensions.map { ($0.dimension.name, $0.argument) })
        let graphInputs = original.graph.inputs.filter { $0.initializer == nil }
        var report = Report()
        var worst: [Int: OutputReport] = [:]
        for (j, sizes) in sizeSets.enumerated() {
            let dir = sizeSets.count > 1 || !sizes.isEmpty ? work + "/s\(j)" : work
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            func extents(_ p: EmittedCpp.Port) throws -> [Int] { try p.runtimeShape.map { try $0.map { try $0.evaluate(sizes) } } ?? p.shape }
            // Inputs: files given, else seeded random ones.
            var tensors = try randomInputs(original, ports: emitted.inputs, batch: options.batch, seed: options.seed &+ UInt64(j),
                                           shapes: try emitted.inputs.map(extents), sizes: sizes)
            for (key, file) in options.inputs {
                let k = Int(key) ?? graphInputs.firstIndex { $0.name == key }
                guard let k, k >= 0, k < tensors.count else {
                    throw Failure(description: "--input \(key)=\(file): the model has no input '\(key)' (its inputs: \(graphInputs.map(\.name).joined(separator: ", ")))")
                }
                let t = try NPY.read(path: file)
                let port = emitted.inputs[k]
                guard t.dataType == port.dataType else { throw Failure(description: "\(file): holds \(t.dataType), input \(k) ('\(graphInputs[k].name)') is \(port.dataType)") }
                let rowShape = Array(port.shape.dropFirst())
                let fits = port.batched ? (t.dims.count == port.shape.count && Array(t.dims.dropFirst()) == rowShape && t.dims[0] >= 1) : t.dims == port.shape
                guard fits else {
                    throw Failure(description: "\(file): shape \(t.dims) does not fit input \(k) ('\(graphInputs[k].name)'), which is \(port.batched ? "[batch, " + rowShape.map(String.init).joined(separator: ", ") + "]" : "\(port.shape)")")
                }
                tensors[k] = t
            }
            let rows = batched ? (zip(emitted.inputs, tensors).first { $0.0.batched }?.1.dims.first ?? 1) : 1
            for (k, t) in tensors.enumerated() {
                if emitted.inputs[k].batched && t.dims[0] != rows { throw Failure(description: "the batched inputs have different numbers of rows (\(rows) and \(t.dims[0]))") }
                try NPY.write(t, to: "\(dir)/in\(k).npy")
                // float16/bfloat16/float8 go to the C++ side as raw bits (the header's .npy reader is for plain numbers).
                if emitted.inputs[k].isBits, let raw = t.rawBytes { try Data(raw).write(to: URL(fileURLWithPath: "\(dir)/in\(k).bin")) }
            }

            // The driver program. Booleans travel as bytes (load_npy reads bool arrays as uint8_t).
            func ctype(_ p: EmittedCpp.Port) -> String { p.dataType == .bool ? "uint8_t" : p.cType }
            func cast(_ expr: String, _ t: DataType, const: Bool) -> String { t == .bool ? "reinterpret_cast<\(const ? "const " : "")bool*>(\(expr))" : expr }
            // An output extent in C++: a number, or (a length computed from values) read after the call.
            func cppExtent(_ d: DimExpr) -> String {
                d.cpp { sym in sizes[sym].map(String.init) ?? "static_cast<std::size_t>(session.last_\(argOf[sym] ?? sym)())" }
            }
            // float16/bfloat16/float8 arrays travel as raw bits (load_bits/save_bits; .npy is for plain numbers).
            var src = "#define SOFIE_NPY\n#include \"model.hxx\"\n#include <chrono>\n#include <cstdio>\n#include <cstdint>\n#include <fstream>\n" + """
            template <class T> std::vector<T> load_bits(const char* path, std::size_t n) {
              std::vector<T> v(n); std::ifstream f(path, std::ios::binary);
              if (!f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(T)))) throw std::runtime_error(std::string("cannot read ") + path);
              return v;
            }
            template <class T> void save_bits(const char* path, const std::vector<T>& v) {
              std::ofstream f(path, std::ios::binary); f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
            }

            """ + "int main() {\n  try {\n"
            for (k, p) in emitted.inputs.enumerated() {
                if p.isBits {
                    src += "    auto in\(k) = load_bits<\(p.cppType)>(\"\(dir)/in\(k).bin\", \(tensors[k].elementCount));\n"
                } else {
                    src += "    auto in\(k) = model::load_npy<\(ctype(p))>(\"\(dir)/in\(k).npy\");\n"
                }
            }
            src += "    model::Session session(\"\(work)/model.weights\");\n"
            for (k, p) in emitted.outputs.enumerated() {
                src += "    std::vector<\(p.isBits ? p.cppType : ctype(p))> out\(k)(\(p.batched ? "\(rows) * " : "")\(p.count));\n"
            }
            let dimArgs = argDims.map { String(sizes[$0.dimension.name] ?? $0.dimension.bound) }
            let args = (batched ? ["\(rows)"] : []) + dimArgs + emitted.inputs.enumerated().map { cast("in\($0).data()", $1.dataType, const: true) }
                + emitted.outputs.enumerated().map { cast("out\($0).data()", $1.dataType, const: false) }
            let call = "session.infer(\(args.joined(separator: ", ")));"
            src += "    \(call)\n"
            src += "    auto t0 = std::chrono::steady_clock::now();\n"
            src += "    for (int i = 0; i < \(max(options.runs, 1)); ++i) \(call)\n"
            src += "    auto t1 = std::chrono::steady_clock::now();\n"
            src += "    std::printf(\"%.3f\\n\", std::chrono::duration<double, std::micro>(t1 - t0).count() / \(max(options.runs, 1)));\n"
            for (k, p) in emitted.outputs.enumerated() {
                let shape = p.runtimeShape.map { $0.map(cppExtent) } ?? p.shape.map(String.init)
                let dims = (p.batched ? ["\(rows)"] + shape.dropFirst() : shape).joined(separator: ", ")
                if p.runtimeShape != nil { src += "    out\(k).resize(\(dims.isEmpty ? "1" : dims.replacingOccurrences(of: ", ", with: " * ")));\n" }
                src += p.isBits ? "    save_bits(\"\(dir)/out\(k).bin\", out\(k));\n" : "    model::save_npy(\"\(dir)/out\(k).npy\", out\(k), {\(dims)});\n"
            }
            src += "  } catch (const std::exception& e) {\n    std::fprintf(stderr, \"%s\\n\", e.what());\n    return 1;\n  }\n  return 0;\n}\n"
            try AtomicFile.write(src, to: dir + "/main.cpp")
            let build = try run(cxx, ["-std=c++17"] + options.cxxFlags + ["-I", work, dir + "/main.cpp", "-o", dir + "/main"])
            guard build.status == 0 else { throw Failure(description: "\(cxx) could not build the generated code:\n\(build.output.prefix(2000))") }
            let sizeText = sizes.sorted { $0.key < $1.key }.map { "\(argOf[$0.key] ?? $0.key) = \($0.value)" }.joined(separator: ", ")
            let ran = try run(dir + "/main", [])
            guard ran.status == 0, let us = Double(ran.output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw Failure(description: "the compiled model failed\(sizeText.isEmpty ? "" : " at " + sizeText): \(ran.output.prefix(2000))")
            }
            if !sizeText.isEmpty { report.sizes.append(sizeText) }

            if let python {
                let ref = try run(python, ["-c", referenceScript, referenceModel, dir, "\(tensors.count)"])
                guard ref.status == 0 else { throw Failure(description: "ONNX Runtime could not run \(referenceModel):\n\(ref.output.suffix(2000))") }
                report.reference = ref.output.trimmingCharacters(in: .whitespacesAndNewlines)
            } else {
                let outs = try evaluate(original.clone(), inputs: tensors, dims: options.compile.dims.merging(sizes) { a, _ in a }, rows: rows)
                for (k, t) in outs.enumerated() { try NPY.write(t, to: "\(dir)/ref\(k).npy") }
                report.reference = "sofie's Swift reference evaluator (float64, the graph before optimization)"
                    + (options.swiftReference ? "" : "; no Python with onnxruntime found")
            }
            report.microsecondsPerRun = us
            report.compiler = ([URL(fileURLWithPath: cxx).lastPathComponent, "-std=c++17"] + options.cxxFlags).joined(separator: " ")
            let outputNames = original.graph.outputs.map(\.name)
            for k in emitted.outputs.indices {
                let port = emitted.outputs[k]
                let ours: Tensor
                if port.isBits {
                    let data = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/out\(k).bin"))
                    let dims = port.batched ? [rows] + port.shape.dropFirst() : port.shape
                    ours = Tensor(dataType: port.dataType, dims: dims, data: .raw(ByteStorage(array: [UInt8](data))))
                } else {
                    ours = try NPY.read(path: "\(dir)/out\(k).npy")
                }
                let theirs = try NPY.read(path: "\(dir)/ref\(k).npy")
                let name = outputNames.indices.contains(k) ? outputNames[k] : "output\(k)"
                guard ours.elementCount == theirs.elementCount else {
                    throw Failure(description: "output \(k) ('\(name)')\(sizeText.isEmpty ? "" : " at " + sizeText): sofie gives \(ours.dims), ONNX Runtime \(theirs.dims)")
                }
                guard let a = numbers(ours), let b = numbers(theirs) else {
                    throw Failure(description: "output \(k) ('\(name)') of type \(ours.dataType) is not compared")
                }
                var maxAbs = 0.0, maxRel = 0.0, worstRatio = 0.0
                for (x, y) in zip(a, b) {
                    let d = x == y ? 0 : (x.isNaN && y.isNaN ? 0 : abs(x - y))
                    maxAbs = max(maxAbs, d.isNaN ? .infinity : d)
                    if y != 0 { maxRel = max(maxRel, d / abs(y)) }
                    worstRatio = max(worstRatio, d.isNaN ? .infinity : d / (options.atol + options.rtol * abs(y)))
                }
                let previous = worst[k]
                worst[k] = OutputReport(name: name, maxAbs: max(maxAbs, previous?.maxAbs ?? 0), maxRel: max(maxRel, previous?.maxRel ?? 0),
                                        worst: max(worstRatio, previous?.worst ?? 0))
                if let dir = options.saveOutputs {
                    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                    // A file name from the model's output name: letters, digits, '-', '_' and '.' only.
                    var file = String(name.unicodeScalars.map { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0)) ? Character($0) : "_" }.prefix(80))
                    if file.isEmpty || file.hasPrefix(".") { file = "output\(k)" + file }
                    try NPY.write(ours, to: "\(dir)/\(file).npy")
                }
            }
        }
        report.outputs = emitted.outputs.indices.compactMap { worst[$0] }
        return report
    }

    /// A tensor's elements as numbers: through NDArray, or decoded for float16/bfloat16/float8.
    static func numbers(_ t: Tensor) -> [Double]? {
        if let a = NDArray(t) { return (0..<a.count).map(a.double) }
        return ReducedFloatFormat.values(of: t)
    }

    /// Runs the model (as read; it is changed) on `inputs` with the reference semantics
    /// (ReferenceOps, and constant folding's evaluators): its dimensions pinned, shapes inferred
    /// and constant subgraphs (shape computations) folded by the same semantics; no other pass.
    public static func evaluate(_ model: Model, inputs: [Tensor], dims: [String: Int], rows: Int) throws -> [Tensor] {
        _ = try PinDimensions(values: dims, batch: rows).run(model)
        try PassManager([ShapeInference(), ConstantFolding(), DeadCodeElimination()], fixedPoint: true, maxIterations: 50).run(model)
        _ = try ShapeInference(strict: true).run(model)
        let opset = model.onnxOpset ?? 21
        var env: [ObjectIdentifier: NDArray] = [:]
        let graphInputs = model.graph.inputs.filter { $0.initializer == nil }
        for (v, t) in zip(graphInputs, inputs) {
            guard let a = NDArray(t) else { throw Failure(description: "input '\(v.name)' of type \(t.dataType) has no reference form") }
            env[ObjectIdentifier(v)] = a
        }
        for v in model.graph.initializers {
            if let t = v.initializer, let a = NDArray(t) { env[ObjectIdentifier(v)] = a }
        }
        for node in model.graph.nodes {
            guard let evaluate = ReferenceOps.evaluator(for: node) else {
                throw Failure(description: "node \(node.label): the Swift reference evaluator has no \(node.opType) yet; verify this model with ONNX Runtime (--python PATH)")
            }
            let args: [NDArray?] = try node.inputs.map { v in
                guard let v else { return nil }
                guard let a = env[ObjectIdentifier(v)] else { throw Failure(description: "node \(node.label): input '\(v.name)' has no value") }
                return a
            }
            let results = try evaluate(OpContext(node: node, opset: opset), args)
            for (o, r) in zip(node.outputs, results) { if let o { env[ObjectIdentifier(o)] = r } }
        }
        return try model.graph.outputs.map { v in
            guard let a = env[ObjectIdentifier(v)] else { throw Failure(description: "output '\(v.name)' was not computed") }
            return a.tensor(name: v.name)
        }
    }
}
