import Foundation
import SofieIR

/// An HDF5 file (Keras weights, .h5 models) as read, in full, by a child process.
///
/// libhdf5 is not safe on corrupt files: fuzzing found inputs that make it loop forever in its
/// global-heap code (variable-length strings) and others crash it. So sofie never calls it in
/// its own process: a forked child opens the file, walks every group, reads the attributes the
/// Keras reader uses and every dataset (each checked against the file size before it is
/// allocated), and hands the result back through a pipe. The child runs under a time limit and
/// an address-space limit; if it crashes, hangs or runs out of memory, the parent reports a
/// clear error naming the file. The Keras reader then works on this snapshot.
final class HDF5File {
    let name: String
    fileprivate let nodes: [String: HDF5Snapshot.Node]

    init(path: String) throws {
        name = path
        let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
        nodes = try HDF5Snapshot.snapshot(name: path, bytes: size) { try LiveHDF5File(path: path) }
    }

    init(bytes: [UInt8], name: String) throws {
        self.name = name
        if HDF5Input.mode == .snapshotBytes {
            guard let decoded = HDF5Snapshot.decode(bytes) else { throw HDF5Error(file: name, message: "not an HDF5 snapshot") }
            nodes = decoded
        } else {
            nodes = try HDF5Snapshot.snapshot(name: name, bytes: bytes.count) { try LiveHDF5File(bytes: bytes, name: name) }
        }
    }

    var root: HDF5Group { HDF5Group(file: self, path: "/") }
}

/// A group (or the root) of an HDF5 snapshot, addressed by path; the same questions the
/// Keras reader asked libhdf5 directly.
struct HDF5Group {
    let file: HDF5File
    let path: String

    func fail(_ message: String) -> HDF5Error { HDF5Error(file: file.name, message: message) }
    private var node: HDF5Snapshot.Node? { file.nodes[path] }

    func child(_ name: String) -> HDF5Group { HDF5Group(file: file, path: path == "/" ? "/" + name : path + "/" + name) }

    func exists(_ relative: String) -> Bool {
        file.nodes[(path == "/" ? "" : path) + "/" + relative.split(separator: "/").joined(separator: "/")] != nil
    }

    func members() throws -> [String] {
        guard let n = node, !n.isDataset else { throw fail("no group '\(path)'") }
        return n.members
    }

    func hasAttribute(_ name: String) -> Bool { node?.attributes[name] != nil }

    func stringsAttribute(_ name: String) throws -> [String]? {
        guard let n = node else { throw fail("no object '\(path)'") }
        switch n.attributes[name] {
        case nil: return nil
        case .strings(let s)?: return s
        case .notStrings?: return nil
        case .failure(let m)?: throw fail(m)
        }
    }

    func stringAttribute(_ name: String) throws -> String? { try stringsAttribute(name)?.first }

    func readFloats() throws -> (shape: [Int], values: [Float]) {
        guard let n = node, n.isDataset else { throw fail("no dataset '\(path)'") }
        if let m = n.failure { throw fail(m) }
        // The snapshot comes from another process that ran libhdf5 on a hostile file: the
        // layers index `values` by `shape` (in unchecked loops), so the two must agree.
        guard n.shape.allSatisfy({ $0 >= 0 }), let count = try? Checked.product(n.shape), count == n.values.count else {
            throw fail("the dataset's shape \(n.shape) does not match its \(n.values.count) values")
        }
        return (n.shape, n.values)
    }

    var isDataset: Bool { node?.isDataset ?? false }
}

/// How HDF5 content given as bytes (`.keras` weights, `.h5` from memory) is read. Only the fuzz
/// targets change it: everything sofie does after libhdf5 works on a snapshot decoded from the
/// child's bytes, so fuzzing snapshots covers sofie's own code without libhdf5 in the loop.
public enum HDF5Input {
    public enum Mode: Sendable {
        /// libhdf5 in a forked child with limits (the default; SOFIE_HDF5_IN_PROCESS=1 turns
        /// it into `libhdf5InProcess`).
        case isolatedChild
        /// libhdf5 in this process: a crash or hang in it is this process's.
        case libhdf5InProcess
        /// The bytes are a snapshot in the child's wire format (see `snapshot(ofHDF5:name:)`).
        case snapshotBytes
    }
    nonisolated(unsafe) public static var mode: Mode =
        ProcessInfo.processInfo.environment["SOFIE_HDF5_IN_PROCESS"] == "1" ? .libhdf5InProcess : .isolatedChild

    /// The snapshot of an HDF5 file's bytes, read with libhdf5 in this process (for fuzz seeds).
    public static func snapshot(ofHDF5 bytes: [UInt8], name: String) throws -> [UInt8] {
        HDF5Snapshot.encode(try HDF5Snapshot.walk(try LiveHDF5File(bytes: bytes, name: name)))
    }
}

/// Reading a whole HDF5 file into nodes, in a child process, and the wire format between them.
enum HDF5Snapshot {
    enum Attribute { case strings([String]), notStrings, failure(String) }

    struct Node {
        var isDataset = false
        var members: [String] = []
        var attributes: [String: Attribute] = [:]
        var shape: [Int] = []
        var values: [Float] = []
        /// Why the dataset could not be read (reported when the reader asks for it).
        var failure: String?
    }

    /// The attributes the Keras reader looks at.
    static let attributeNames = ["model_config", "keras_version", "backend", "weight_names", "layer_names", "name"]
    static let maxObjects = 100_000
    static let maxDepth = 32
    /// Wall-clock limit for the child, in seconds: 6 s plus 1 s per 16 MB of file (reading
    /// ResNet-50's 100 MB of weights takes about 1 s on an idle machine, but a busy one can be
    /// several times slower, and a 215 MB InceptionResNetV2 missed a flat 6 s under load).
    /// SOFIE_HDF5_TIMEOUT sets it outright (values outside 1 s ... 1 h are ignored).
    static func timeLimit(bytes: Int) -> Double {
        if let v = Double(ProcessInfo.processInfo.environment["SOFIE_HDF5_TIMEOUT"] ?? ""), v >= 1, v <= 3600 { return v }
        return min(6 + Double(max(bytes, 0)) / Double(16 << 20), 3600)
    }

    static func snapshot(name: String, bytes size: Int, open: () throws -> LiveHDF5File) throws -> [String: Node] {
        if HDF5Input.mode != .isolatedChild { return try walk(try open()) }
        let bytes = try isolated(name: name, timeLimit: timeLimit(bytes: size), fileBytes: size) {
            do { return [0] + encode(try walk(try open())) } catch { return [1] + Array("\(error)".utf8) }
        }
        guard let tag = bytes.first else { throw HDF5Error(file: name, message: "the HDF5 reader process returned nothing") }
        if tag == 1 {
            // The child's error already names the file; pass its message on.
            let text = String(decoding: bytes.dropFirst(), as: UTF8.self)
            let prefix = name + ": "
            throw HDF5Error(file: name, message: text.hasPrefix(prefix) ? String(text.dropFirst(prefix.count)) : text)
        }
        guard let nodes = decode(Array(bytes.dropFirst())) else { throw HDF5Error(file: name, message: "the HDF5 reader process returned malformed data") }
        return nodes
    }

    /// Every group and dataset below the root, breadth first, with the attributes the reader uses.
    static func walk(_ file: LiveHDF5File) throws -> [String: Node] {
        var nodes: [String: Node] = [:]
        var queue: [(LiveHDF5Group, Int)] = [(file.root, 0)]
        var budget = Int64(1) << 31  // floats read in total
        var i = 0
        while i < queue.count {
            let (g, depth) = queue[i]
            i += 1
            guard nodes[g.path] == nil else { continue }  // hard links can make cycles
            guard nodes.count < maxObjects else { throw g.fail("has more than \(maxObjects) groups and datasets") }
            var node = Node()
            for a in attributeNames where g.hasAttribute(a) {
                do { node.attributes[a] = try g.stringsAttribute(a).map { .strings($0) } ?? .notStrings } catch {
                    node.attributes[a] = .failure((error as? HDF5Error)?.message ?? "\(error)")
                }
            }
            if g.isDataset {
                node.isDataset = true
                do {
                    let (shape, values) = try g.readFloats()
                    budget -= Int64(values.count)
                    guard budget >= 0 else { throw g.fail("holds more than 2^31 weights in total") }
                    node.shape = shape
                    node.values = values
                } catch let e as HDF5Error {
                    node.failure = e.message
                }
            } else if depth < maxDepth {
                node.members = (try? g.members()) ?? []
                for m in node.members { queue.append((g.child(m), depth + 1)) }
            }
            nodes[g.path] = node
        }
        return nodes
    }

    // MARK: the child process

    /// Runs `body` in a forked child under time and memory limits and returns what it produced.
    static func isolated(name: String, timeLimit: Double, fileBytes: Int = 0, _ body: () -> [UInt8]) throws -> [UInt8] {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw HDF5Error(file: name, message: "cannot create a pipe for the HDF5 reader: \(String(cString: strerror(errno)))") }
        let limit = addressSpaceLimit(fileBytes: fileBytes)
        let pid = fork()
        if pid < 0 {
            close(fds[0]); close(fds[1])
            throw HDF5Error(file: name, message: "cannot start the HDF5 reader process: \(String(cString: strerror(errno)))")
        }
        if pid == 0 {
            // Child: only libhdf5 and the walk run here; results go to the pipe, then _exit.
            close(fds[0])
            // A crash in libhdf5 should end the child at once with its signal, which the parent
            // reports: not run the Swift runtime's backtracer (slow, and it would print a
            // crash report on the user's terminal for what is a corrupt file).
            for sig in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP] { _ = signal(sig, SIG_DFL) }
            let devNull = open("/dev/null", O_WRONLY)
            if devNull >= 0 { _ = dup2(devNull, STDERR_FILENO); close(devNull) }
            if let limit {
                var rl = rlimit(rlim_cur: rlim_t(limit), rlim_max: rlim_t(limit))
                _ = setrlimit(Int32(RLIMIT_AS.rawValue), &rl)
            }
            var cpu = rlimit(rlim_cur: rlim_t(timeLimit + 1), rlim_max: rlim_t(timeLimit + 2))
            _ = setrlimit(Int32(RLIMIT_CPU.rawValue), &cpu)
            let out = body()
            var length = UInt64(out.count).littleEndian
            var ok = withUnsafeBytes(of: &length) { writeAll(fds[1], $0) }
            ok = ok && out.withUnsafeBytes { writeAll(fds[1], $0) }
            _exit(ok ? 0 : 3)
        }
        close(fds[1])
        defer { close(fds[0]) }
        var data: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeLimit)
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var timedOut = false
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { timedOut = true; break }
            var p = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(min(left, 1) * 1000) + 1)
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { continue }
            let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            data.append(contentsOf: buffer[0..<n])
        }
        if timedOut { kill(pid, SIGKILL) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let termSignal = status & 0x7f, exitCode = (status >> 8) & 0xff
        if timedOut || termSignal == SIGXCPU || termSignal == SIGKILL {
            throw HDF5Error(file: name, message: "libhdf5 did not finish reading the file within \(Int(timeLimit)) s (a corrupt file can make it loop)")
        }
        if termSignal != 0 {
            let memory = limit.map { ", or needs more than the reader's \($0 >> 30) GiB of address space" } ?? ""
            throw HDF5Error(file: name, message: "libhdf5 crashed (signal \(termSignal)) reading the file: it is corrupt\(memory)")
        }
        guard exitCode == 0, data.count >= 8 else {
            throw HDF5Error(file: name, message: "the HDF5 reader process failed (exit status \(exitCode)); the file may be corrupt or need more than the memory limit")
        }
        let length = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard length == UInt64(data.count - 8) else { throw HDF5Error(file: name, message: "the HDF5 reader process returned incomplete data") }
        return Array(data.dropFirst(8))
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            done += n
        }
        return true
    }

    /// The child's address-space limit: what this process maps now plus 4 GiB. None under
    /// AddressSanitizer, whose shadow memory reserves terabytes of address space.
    /// The child's address space: what the process has, 4 GiB, and 4 bytes per byte of the
    /// file (the weights are held as read, as floats and encoded for the pipe: ConvNeXtXLarge's
    /// 1.4 GB of weights did not fit in a flat 4 GiB). A small hostile file still gets ~4 GiB.
    static func addressSpaceLimit(fileBytes: Int = 0) -> Int? {
        if dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") != nil { return nil }
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
              let pages = Int(statm.split(separator: " ").first ?? "") else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE))) + (4 << 30) + 4 * min(max(fileBytes, 0), 1 << 40)
    }

    // MARK: wire format (child -> parent)

    static func encode(_ nodes: [String: Node]) -> [UInt8] {
        var out: [UInt8] = []
        func int(_ v: Int) { var x = UInt64(bitPattern: Int64(v)).littleEndian; withUnsafeBytes(of: &x) { out += $0 } }
        func string(_ s: String) { let u = Array(s.utf8); int(u.count); out += u }
        int(nodes.count)
        for (path, n) in nodes.sorted(by: { $0.key < $1.key }) {
            string(path)
            out.append(n.isDataset ? 1 : 0)
            int(n.members.count); n.members.forEach(string)
            int(n.attributes.count)
            for (k, a) in n.attributes.sorted(by: { $0.key < $1.key }) {
                string(k)
                switch a {
                case .strings(let s): out.append(0); int(s.count); s.forEach(string)
                case .notStrings: out.append(1)
                case .failure(let m): out.append(2); string(m)
                }
            }
            int(n.shape.count); n.shape.forEach(int)
            int(n.values.count)
            n.values.withUnsafeBytes { out += $0 }
            if let f = n.failure { out.append(1); string(f) } else { out.append(0) }
        }
        return out
    }

    static func decode(_ b: [UInt8]) -> [String: Node]? {
        var pos = 0
        func byte() -> UInt8? { guard pos < b.count else { return nil }; pos += 1; return b[pos - 1] }
        func int() -> Int? {
            guard pos + 8 <= b.count else { return nil }
            var v: UInt64 = 0
            for k in 0..<8 { v |= UInt64(b[pos + k]) << (8 * UInt64(k)) }
            pos += 8
            let i = Int(Int64(bitPattern: v))
            return i >= 0 ? i : nil
        }
        func count(_ elementSize: Int) -> Int? {
            guard let n = int(), n <= (b.count - pos) / max(elementSize, 1) else { return nil }
            return n
        }
        func string() -> String? {
            guard let n = count(1) else { return nil }
            defer { pos += n }
            return String(decoding: b[pos..<(pos + n)], as: UTF8.self)
        }
        guard let total = count(1) else { return nil }
        var nodes: [String: Node] = [:]
        for _ in 0..<total {
            guard let path = string(), let kind = byte() else { return nil }
            var n = Node()
            n.isDataset = kind == 1
            guard let m = count(8) else { return nil }
            for _ in 0..<m { guard let s = string() else { return nil }; n.members.append(s) }
            guard let a = count(1) else { return nil }
            for _ in 0..<a {
                guard let k = string(), let tag = byte() else { return nil }
                switch tag {
                case 0:
                    guard let c = count(8) else { return nil }
                    var s: [String] = []
                    for _ in 0..<c { guard let x = string() else { return nil }; s.append(x) }
                    n.attributes[k] = .strings(s)
                case 1: n.attributes[k] = .notStrings
                default: guard let msg = string() else { return nil }; n.attributes[k] = .failure(msg)
                }
            }
            guard let r = count(8) else { return nil }
            for _ in 0..<r { guard let d = int() else { return nil }; n.shape.append(d) }
            guard let v = count(4) else { return nil }
            n.values = [Float](repeating: 0, count: v)
            n.values.withUnsafeMutableBytes { dst in b.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[pos..<(pos + 4 * v)])) } }
            pos += 4 * v
            guard let hasFailure = byte() else { return nil }
            if hasFailure == 1 { guard let f = string() else { return nil }; n.failure = f }
            nodes[path] = n
        }
        return nodes
    }
}
