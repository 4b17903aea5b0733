import Foundation

/// A read-only memory mapping of a whole file, unmapped when the last tensor that
/// references it goes away.
final class MappedFile {
    let pointer: UnsafeRawPointer?
    let count: Int

    init(path: String) throws {
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
        let fd = open(path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw NotRegularFile() }
        count = Int(st.st_size)
        if count == 0 {
            pointer = nil
            return
        }
        let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        pointer = UnsafeRawPointer(p)
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: pointer, count: count) }

    deinit { if let pointer { munmap(UnsafeMutableRawPointer(mutating: pointer), count) } }
}

/// A path that names a folder, FIFO, socket or device instead of a regular file.
struct NotRegularFile: Error, CustomStringConvertible {
    var description: String { "it is not a regular file (a folder, FIFO, socket or device)" }
}
