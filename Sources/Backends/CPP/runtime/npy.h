// swift-sofie: NumPy .npy reading and writing (namespace sofie_npy), compiled when the including
// program defines SOFIE_NPY. Needs <cstring>, <fstream>, <stdexcept>, <string>, <vector>.
#if defined(SOFIE_NPY) && !defined(SOFIE_NPY_V1)
#define SOFIE_NPY_V1
namespace sofie_npy {

template <class T> inline const char* code() {
    if constexpr (std::is_same<T, float>::value) return "f4";
    else if constexpr (std::is_same<T, double>::value) return "f8";
    else if constexpr (std::is_integral<T>::value && std::is_signed<T>::value)
        return sizeof(T) == 1 ? "i1" : sizeof(T) == 2 ? "i2" : sizeof(T) == 4 ? "i4" : "i8";
    else return sizeof(T) == 1 ? "u1" : sizeof(T) == 2 ? "u2" : sizeof(T) == 4 ? "u4" : "u8";
}

// Reads a .npy file whose dtype is T's; shape (if given) receives its dimensions.
template <class T>
std::vector<T> load_npy(const std::string& path, std::vector<std::size_t>* shape = nullptr) {
    static_assert(std::is_arithmetic<T>::value && !std::is_same<T, bool>::value,
                  "load_npy reads numeric arrays (bool arrays as std::uint8_t)");
    auto fail = [&](const std::string& why) { return std::runtime_error(path + ": " + why); };
    std::ifstream f(path, std::ios::binary);
    if (!f) throw fail("cannot open the file");
    unsigned char pre[10];
    if (!f.read(reinterpret_cast<char*>(pre), 10) || std::memcmp(pre, "\x93NUMPY", 6) != 0) throw fail("not a .npy file");
    std::size_t hlen = std::size_t(pre[8]) | std::size_t(pre[9]) << 8;
    if (pre[6] == 2 || pre[6] == 3) {
        unsigned char more[2];
        if (!f.read(reinterpret_cast<char*>(more), 2)) throw fail("the file ends inside its header");
        hlen |= std::size_t(more[0]) << 16 | std::size_t(more[1]) << 24;
    } else if (pre[6] != 1) {
        throw fail("unknown .npy format version");
    }
    if (hlen > 65536) throw fail("header longer than 64 KiB");
    std::string h(hlen, ' ');
    if (!f.read(&h[0], static_cast<std::streamsize>(hlen))) throw fail("the file ends inside its header");
    auto value = [&](const char* key) {
        std::size_t k = h.find(std::string("'") + key + "'");
        if (k == std::string::npos) throw fail(std::string("no '") + key + "' in the header");
        k = h.find(':', k);
        if (k == std::string::npos) throw fail("malformed header");
        std::size_t b = h.find_first_not_of(' ', k + 1);
        if (b == std::string::npos) throw fail("malformed header");
        return b;
    };
    std::size_t d = value("descr");
    if (h[d] != '\'' || d + 4 >= h.size()) throw fail("dtype is not a plain numeric type");
    char order = h[d + 1];
    std::string dt = h.substr(d + 2, h.find('\'', d + 2) - (d + 2));
    bool boolean = dt == "b1" && std::is_same<T, std::uint8_t>::value;
    if (dt != code<T>() && !boolean) throw fail("dtype " + dt + " does not match the requested " + code<T>());
    bool big = order == '>' && sizeof(T) > 1;
    bool fortran = h.compare(value("fortran_order"), 4, "True") == 0;
    std::size_t s = value("shape");
    if (h[s] != '(') throw fail("malformed shape");
    std::vector<std::size_t> dims;
    std::size_t count = 1;
    for (std::size_t i = s + 1; i < h.size() && h[i] != ')';) {
        if (h[i] >= '0' && h[i] <= '9') {
            std::size_t v = 0;
            for (; i < h.size() && h[i] >= '0' && h[i] <= '9'; ++i) {
                if (v > (std::size_t(1) << 40)) throw fail("dimension too large");
                v = v * 10 + std::size_t(h[i] - '0');
            }
            if (v != 0 && count > (std::size_t(1) << 40) / v) throw fail("too many elements");
            dims.push_back(v);
            count *= v;
        } else if (h[i] == ',' || h[i] == ' ' || h[i] == 'L') {
            ++i;
        } else {
            throw fail("malformed shape");
        }
    }
    std::vector<T> raw(count);
    if (count && !f.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(count * sizeof(T))))
        throw fail("the file holds fewer elements than its shape says");
    if (f.peek() != std::char_traits<char>::eof()) throw fail("the file holds more data than its shape says");
    if (big) {
        for (T& v : raw) {
            unsigned char* p = reinterpret_cast<unsigned char*>(&v);
            std::reverse(p, p + sizeof(T));
        }
    }
    if (boolean) for (T& v : raw) v = v != 0;
    if (shape) *shape = dims;
    if (!fortran || dims.size() < 2) return raw;
    // Fortran order: element (i0, i1, ...) at i0 + n0*(i1 + n1*(...)); reorder to C order.
    std::vector<T> out(count);
    std::vector<std::size_t> idx(dims.size(), 0);
    for (std::size_t e = 0; e < count; ++e) {
        std::size_t c = 0;
        for (std::size_t k = 0; k < dims.size(); ++k) c = c * dims[k] + idx[k];
        out[c] = raw[e];
        for (std::size_t k = 0; k < dims.size(); ++k) {
            if (++idx[k] < dims[k]) break;
            idx[k] = 0;
        }
    }
    return out;
}

// Writes count = product(shape) elements as a .npy file (version 1.0, C order, little-endian).
template <class T>
void save_npy(const std::string& path, const T* data, const std::vector<std::size_t>& shape) {
    static_assert(std::is_arithmetic<T>::value && !std::is_same<T, bool>::value, "save_npy writes numeric arrays");
    std::size_t count = 1;
    std::string dims;
    for (std::size_t v : shape) { count *= v; dims += std::to_string(v) + ", "; }
    if (shape.size() > 1) dims.resize(dims.size() - 2);
    else if (shape.size() == 1) dims.resize(dims.size() - 1);
    std::string h = std::string("{'descr': '") + (sizeof(T) == 1 ? '|' : '<') + code<T>() + "', 'fortran_order': False, 'shape': (" + dims + "), }";
    h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
    h += '\n';
    std::ofstream f(path, std::ios::binary);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<unsigned char>(h.size() & 0xff), static_cast<unsigned char>(h.size() >> 8)};
    f.write(reinterpret_cast<const char*>(pre), 10);
    f.write(h.data(), static_cast<std::streamsize>(h.size()));
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count * sizeof(T)));
    if (!f) throw std::runtime_error(path + ": cannot write the file");
}
template <class T>
void save_npy(const std::string& path, const std::vector<T>& data, const std::vector<std::size_t>& shape) {
    std::size_t count = 1;
    for (std::size_t v : shape) count *= v;
    if (count != data.size()) throw std::runtime_error(path + ": the shape does not match the number of elements");
    save_npy(path, data.data(), shape);
}

}  // namespace sofie_npy
#endif
