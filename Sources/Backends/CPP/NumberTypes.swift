import SofieIR

/// The storage types of the reduced-precision floats ONNX models carry (float16, bfloat16 and
/// the four float8 formats), emitted into headers whose model has such a tensor. They sit
/// outside the versioned runtime, in `namespace sofie`, because they appear in `infer`'s
/// signature: a user's code names them (`sofie::float16_t`) and converts with
/// `sofie::to_float` / `sofie::from_double<T>`. Their layout is only the bits, so headers
/// from different sofie versions can share one definition (guard SOFIE_NUMBER_TYPES_V1;
/// bump it if the text ever changes meaning).
///
/// Arithmetic is not defined on them on purpose: the backend computes in float32 and rounds
/// on store (the `widen-reduced-floats` pass), as ONNX Runtime's CPU kernels do; an emitter
/// that tried to compute on the storage type would not compile rather than compute wrongly.
public enum CppNumberTypes {
    public static func name(_ t: DataType) -> String? {
        switch t {
        case .float16: return "sofie::float16_t"
        case .bfloat16: return "sofie::bfloat16_t"
        case .float8e4m3fn: return "sofie::float8e4m3fn_t"
        case .float8e4m3fnuz: return "sofie::float8e4m3fnuz_t"
        case .float8e5m2: return "sofie::float8e5m2_t"
        case .float8e5m2fnuz: return "sofie::float8e5m2fnuz_t"
        case .float4e2m1: return "sofie::float4e2m1_t"
        case .float8e8m0: return "sofie::float8e8m0_t"
        default: return nil
        }
    }

    /// The same type as C (the C API and ctypes) sees it: the raw bits.
    public static func cName(_ t: DataType) -> String? {
        switch t {
        case .float16, .bfloat16: return "uint16_t"
        case .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .float4e2m1, .float8e8m0: return "uint8_t"
        default: return nil
        }
    }

    public static let source = EmbeddedCpp.numberTypes  // runtime/number_types.h
}
