import CFuzz
import FuzzSupport
import SofieFrontends

/// An ONNX file through the whole compile pipeline: reader, verifier, shape inference, every
/// default pass, memory planning and the C++ emitter.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCompile(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let b = FuzzSupport.bytes(data, count)
    guard let model = try? b.withUnsafeBytes({ try ONNXReader.read(bytes: $0, file: "fuzz.onnx", baseDirectory: nil) }) else { return 0 }
    FuzzSupport.exercise(model, compile: true)
    return 0
}

@_cdecl("FuzzCompile_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    sofie_fuzz_main(argc, argv, { data, count in fuzzCompile(data!, count) })
}
