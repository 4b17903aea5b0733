import CFuzz
import FuzzSupport
import SofieFrontends

/// The ONNX reader alone: protobuf-c decoding behind the nesting pre-scan, tensors, functions.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNX(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let b = FuzzSupport.bytes(data, count)
    _ = try? b.withUnsafeBytes { try ONNXReader.read(bytes: $0, file: "fuzz.onnx", baseDirectory: nil) }
    return 0
}

@_cdecl("FuzzONNX_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    sofie_fuzz_main(argc, argv, { data, count in fuzzONNX(data!, count) })
}
