import Foundation

/// Writes files so that a reader never sees half of one: the bytes go to a temporary
/// file in the same folder, which is renamed over the destination only when complete.
public enum AtomicFile {
    public struct WriteError: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "cannot write '\(path)': \(reason)" }
    }

    /// Streams bytes into `path` through `body`, which receives a FILE*-like writer.
    public static func write(to path: String, _ body: (FileHandleWriter) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.isEmpty ? "." : dir, isDirectory: &isDir), isDir.boolValue else {
            throw WriteError(path: path, reason: "the folder '\(dir)' does not exist")
        }
        let template = (dir.isEmpty ? "." : dir) + "/.\(url.lastPathComponent).tmp-XXXXXX"
        var chars = Array(template.utf8CString)
        let fd = mkstemp(&chars)
        guard fd >= 0 else { throw WriteError(path: path, reason: String(cString: strerror(errno))) }
        let tmpPath = String(cString: chars)
        let writer = FileHandleWriter(fd: fd, path: path)
        do {
            try body(writer)
            try writer.flush()
            fchmod(fd, 0o644)
            if fsync(fd) != 0 { throw WriteError(path: path, reason: String(cString: strerror(errno))) }
            close(fd)
            if rename(tmpPath, path) != 0 {
                let reason = String(cString: strerror(errno))
                unlink(tmpPath)
                throw WriteError(path: path, reason: reason)
            }
        } catch {
            close(fd)
            unlink(tmpPath)
            throw error
        }
    }

    public static func write(_ bytes: UnsafeRawBufferPointer, to path: String) throws {
        try write(to: path) { try $0.write(bytes) }
    }

    public static func write(_ text: String, to path: String) throws {
        try write(to: path) { w in
            var t = text
            try t.withUTF8 { try w.write(UnsafeRawBufferPointer($0)) }
        }
    }
}

/// A buffered writer on a file descriptor.
public final class FileHandleWriter {
    private let fd: Int32
    private let path: String
    private var buffer: [UInt8] = []
    public private(set) var bytesWritten: Int = 0

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
        buffer.reserveCapacity(1 << 16)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        bytesWritten += bytes.count
        if buffer.count + bytes.count <= 1 << 16 {
            buffer.append(contentsOf: bytes)
            return
        }
        try flush()
        try writeAll(bytes)
    }

    public func write(_ text: String) throws {
        var t = text
        try t.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    func flush() throws {
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Foundation.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw AtomicFile.WriteError(path: path, reason: String(cString: strerror(errno)))
            }
            offset += n
        }
    }
}
