import CHDF5
import Foundation

/// A failure while reading an HDF5 file (Keras weights and .h5 models).
public struct HDF5Error: Error, CustomStringConvertible {
    public let file: String
    public let message: String
    public var description: String { "\(file): \(message)" }
}

/// Debian's HDF5 is not thread-safe: every call into it goes through this lock.
let hdf5Lock = NSRecursiveLock()

/// A read-only HDF5 file, opened from a path or from bytes in memory (the weights inside a
/// .keras archive). Closed when released.
final class LiveHDF5File {
    let id: hid_t
    let name: String
    /// Bytes of the file (or image): no dataset can store more than this uncompressed.
    let byteSize: Int
    private let image: UnsafeMutableRawPointer?

    init(path: String) throws {
        hdf5Lock.lock(); defer { hdf5Lock.unlock() }
        sofie_H5_silence()
        guard H5Fis_hdf5(path) > 0 else { throw HDF5Error(file: path, message: "not an HDF5 file") }
        let f = H5Fopen(path, sofie_H5F_ACC_RDONLY(), sofie_H5P_DEFAULT())
        guard f >= 0 else { throw HDF5Error(file: path, message: "HDF5 cannot open the file (corrupt or truncated?)") }
        id = f
        name = path
        var st = stat()
        byteSize = stat(path, &st) == 0 ? Int(st.st_size) : 0
        image = nil
    }

    init(bytes: [UInt8], name: String) throws {
        hdf5Lock.lock(); defer { hdf5Lock.unlock() }
        sofie_H5_silence()
        let fapl = H5Pcreate(sofie_H5P_FILE_ACCESS())
        defer { H5Pclose(fapl) }
        H5Pset_fapl_core(fapl, 1 << 16, false)
        // HDF5 copies the image into its own memory when the file is opened.
        let f = bytes.withUnsafeBytes { buf -> hid_t in
            H5Pset_file_image(fapl, UnsafeMutableRawPointer(mutating: buf.baseAddress), buf.count)
            return H5Fopen(name, sofie_H5F_ACC_RDONLY(), fapl)
        }
        guard f >= 0 else { throw HDF5Error(file: name, message: "not a readable HDF5 image") }
        id = f
        self.name = name
        byteSize = bytes.count
        image = nil
    }

    deinit {
        hdf5Lock.lock(); defer { hdf5Lock.unlock() }
        H5Fclose(id)
        image?.deallocate()
    }

    var root: LiveHDF5Group { LiveHDF5Group(file: self, path: "/") }
}

/// A group (or the root) of an HDF5 file, addressed by path.
struct LiveHDF5Group {
    let file: LiveHDF5File
    let path: String

    func fail(_ message: String) -> HDF5Error { HDF5Error(file: file.name, message: message) }

    func child(_ name: String) -> LiveHDF5Group { LiveHDF5Group(file: file, path: path == "/" ? "/" + name : path + "/" + name) }

    /// Whether `relative` (a/b/c) exists below this group, checking each link in turn.
    func exists(_ relative: String) -> Bool {
        hdf5Lock.lock(); defer { hdf5Lock.unlock() }
        var p = path == "/" ? "" : path
        for part in relative.split(separator: "/") {
            p += "/" + part
            guard H5Lexists(file.id, p, sofie_H5P_DEFAULT()) > 0 else { return false }
        }
        return true
    }

    /// Names of the members, in HDF5's name order.
    func members() throws -> [String] {
        hdf5Lock.lock(); defer { hdf5Lock.unlock() }
        let g = H5Gopen2(file.id, path, sofie_H5P_DEFAULT())
        guard g >= 0 else { throw fail("no group '\(path)'") }
        defer { H5Gclose(g) }
        var info = H5G_info_t()
        guard H5Gget_info(g, &info) >= 0 else { throw fail("cannot list '\(path)'") }
        var names: [String] = []
        for i in 0..<info.nlinks {
            let n = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, sofie_H5P_DEFAULT())
            guard n >= 0, n < 1 << 16 else { continue }
            var buf = [CChar](repeating: 0, count: Int(n) + 1)
            H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, buf.count, sofie_H5P_DEFAULT())
            names.append(String(cString: buf))
        }
        return names
    }

    private func withObject<T>(_ body: (hid_t) throws -> T) throws -> T {
        let o = H5Oopen(file.id, path, sofie_H5P_DEFAULT())
        guard o >= 0 else { throw fail("no object '\(path)'") }
        defer { H5Oclose(o) }
        return try body(o)
    }

    func hasAttribute(_ name: String) -> Bool {
        hdf5Lock.lock(); defer { hdf5Lock.unlock() }
        return (try? withObject { H5Aexists($0, name) > 0 }) ?? false
    }

    /// A string attribute, or an array of strings (fixed or variable length); numbers are refused.
    func stringsAttribute(_ name: String) throws -> [String]? {
        hdf5Lock.lock(); defer { hdf5Lock.unlock() }
        return try withObject { o -> [String]? in
            guard H5Aexists(o, name) > 0 else { return nil }
            let a = H5Aopen(o, name, sofie_H5P_DEFAULT())
            guard a >= 0 else { throw fail("cannot open attribute '\(name)' of '\(path)'") }
            defer { H5Aclose(a) }
            let t = H5Aget_type(a)
            defer { H5Tclose(t) }
            let s = H5Aget_space(a)
            defer { H5Sclose(s) }
            let n = Int(H5Sget_simple_extent_npoints(s))
            guard n >= 0, n < 1 << 20 else { throw fail("attribute '\(name)' of '\(path)' has an implausible size") }
            guard H5Tget_class(t) == H5T_STRING else { return n == 0 ? [] : nil }
            if H5Tis_variable_str(t) > 0 {
                let mem = H5Tcopy(sofie_H5T_C_S1())
                defer { H5Tclose(mem) }
                H5Tset_size(mem, sofie_H5T_VARIABLE())
                H5Tset_cset(mem, H5Tget_cset(t))
                var ptrs = [UnsafeMutablePointer<CChar>?](repeating: nil, count: max(n, 1))
                guard H5Aread(a, mem, &ptrs) >= 0 else { throw fail("cannot read attribute '\(name)' of '\(path)'") }
                defer { for p in ptrs { if let p { H5free_memory(p) } } }
                return ptrs.prefix(n).map { $0.map { String(cString: $0) } ?? "" }
            }
            let size = H5Tget_size(t)
            guard size > 0, size < 1 << 24, n * size < 1 << 28 else { throw fail("attribute '\(name)' of '\(path)' is too large") }
            var buf = [UInt8](repeating: 0, count: n * size + 1)
            guard H5Aread(a, t, &buf) >= 0 else { throw fail("cannot read attribute '\(name)' of '\(path)'") }
            return (0..<n).map { i in
                let bytes = buf[(i * size)..<((i + 1) * size)].prefix { $0 != 0 }
                return String(decoding: bytes, as: UTF8.self)
            }
        }
    }

    func stringAttribute(_ name: String) throws -> String? { try stringsAttribute(name)?.first }

    /// Shape and float32 contents of the dataset at this path (any numeric type, converted).
    func readFloats() throws -> (shape: [Int], values: [Float]) {
        hdf5Lock.lock(); defer { hdf5Lock.unlock() }
        let d = H5Dopen2(file.id, path, sofie_H5P_DEFAULT())
        guard d >= 0 else { throw fail("no dataset '\(path)'") }
        defer { H5Dclose(d) }
        let s = H5Dget_space(d)
        defer { H5Sclose(s) }
        let rank = Int(H5Sget_simple_extent_ndims(s))
        guard rank >= 0, rank <= 16 else { throw fail("dataset '\(path)' has an invalid rank") }
        var dims = [hsize_t](repeating: 0, count: max(rank, 1))
        H5Sget_simple_extent_dims(s, &dims, nil)
        let shape = dims.prefix(rank).map { Int($0) }
        var count = 1
        for d in shape {
            let (c, o) = count.multipliedReportingOverflow(by: d)
            guard !o, c <= 1 << 31 else { throw fail("dataset '\(path)' is too large") }
            count = c
        }
        let t = H5Dget_type(d)
        defer { H5Tclose(t) }
        let cls = H5Tget_class(t)
        guard cls == H5T_FLOAT || cls == H5T_INTEGER else { throw fail("dataset '\(path)' is not numeric") }
        // The declared shape is untrusted: a few-KB file can declare 2^31 floats. Before
        // allocating, the data must fit in the file -- uncompressed, or at deflate's best
        // ratio (about 1:1032) when the dataset is stored in filtered chunks.
        let elementSize = H5Tget_size(t)
        guard elementSize >= 1, elementSize <= 16 else { throw fail("dataset '\(path)' has an implausible element size \(elementSize)") }
        let plist = H5Dget_create_plist(d)
        defer { H5Pclose(plist) }
        let filtered = H5Pget_layout(plist) == H5D_CHUNKED && H5Pget_nfilters(plist) > 0
        let stored = count.multipliedReportingOverflow(by: elementSize)
        let room = file.byteSize.multipliedReportingOverflow(by: filtered ? 1100 : 1)
        guard !stored.overflow, stored.partialValue <= (room.overflow ? Int.max : room.partialValue) else {
            throw fail("dataset '\(path)' declares \(shape) elements (\(stored.partialValue) bytes), more than the \(file.byteSize)-byte file can hold")
        }
        var values = [Float](repeating: 0, count: max(count, 1))
        if count > 0 {
            guard H5Dread(d, sofie_H5T_NATIVE_FLOAT(), sofie_H5S_ALL(), sofie_H5S_ALL(), sofie_H5P_DEFAULT(), &values) >= 0 else {
                throw fail("cannot read dataset '\(path)'")
            }
        }
        if count == 0 { values = [] }
        return (shape, values)
    }

    var isDataset: Bool {
        hdf5Lock.lock(); defer { hdf5Lock.unlock() }
        let d = H5Dopen2(file.id, path, sofie_H5P_DEFAULT())
        guard d >= 0 else { return false }
        H5Dclose(d)
        return true
    }
}
