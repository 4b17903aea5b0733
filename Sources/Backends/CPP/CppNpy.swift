/// NumPy `.npy` reading and writing for the emitted header, compiled only when the including
/// program defines SOFIE_NPY (so the default header stays as it was): NAME::load_npy<T>(path,
/// &shape) and NAME::save_npy(path, data, shape). Shared by every model header in a program
/// (one guarded definition in namespace sofie_npy). Reads little- and big-endian data in C or
/// Fortran order whose dtype is T's (bool arrays as std::uint8_t); anything else (another dtype, object arrays, a truncated
/// file) throws std::runtime_error naming the file.
enum CppNpy {
    static let source = EmbeddedCpp.npy  // runtime/npy.h
}
