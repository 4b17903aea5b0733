import CZip
import Foundation

/// Read-only access to a zip archive (a .keras file) through libzip. Declared sizes are
/// untrusted: every read is capped.
final class ZipArchive {
    private let handle: OpaquePointer
    let path: String

    init(path: String) throws {
        var err: Int32 = 0
        guard let z = zip_open(path, ZIP_RDONLY, &err) else {
            throw KerasError(file: path, "not a readable zip archive (a .keras file is a zip archive; libzip error \(err))")
        }
        handle = z
        self.path = path
    }

    deinit { zip_discard(handle) }

    func contains(_ name: String) -> Bool { zip_name_locate(handle, name, 0) >= 0 }

    /// The whole entry, refusing entries larger than `limit` bytes (by header or by content).
    func read(_ name: String, limit: Int) throws -> [UInt8] {
        var st = zip_stat_t()
        zip_stat_init(&st)
        guard zip_stat(handle, name, 0, &st) == 0 else { throw KerasError(file: path, "the archive has no entry '\(name)'") }
        let declared = (st.valid & UInt64(ZIP_STAT_SIZE)) != 0 ? Int(clamping: st.size) : 0
        guard declared <= limit else { throw KerasError(file: path, "entry '\(name)' declares \(declared) bytes, more than the \(limit) allowed") }
        guard let f = zip_fopen(handle, name, 0) else { throw KerasError(file: path, "cannot open entry '\(name)'") }
        defer { zip_fclose(f) }
        var out: [UInt8] = []
        out.reserveCapacity(declared)
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = zip_fread(f, &buf, UInt64(buf.count))
            if n < 0 { throw KerasError(file: path, "entry '\(name)' is corrupt") }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<Int(n)])
            guard out.count <= limit else { throw KerasError(file: path, "entry '\(name)' is larger than the \(limit) bytes allowed") }
        }
        return out
    }
}
