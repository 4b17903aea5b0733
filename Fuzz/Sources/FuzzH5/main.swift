import CFuzz
import FuzzSupport
import SofieFrontends

/// A whole-model .h5 file (Keras 2 or 3), opened from memory by libhdf5, lowered, then the
/// passes run on the result.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzH5(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard let model = try? KerasReader.readH5(bytes: FuzzSupport.bytes(data, count), file: "fuzz.h5") else { return 0 }
    FuzzSupport.exercise(model, compile: false)
    return 0
}

@_cdecl("FuzzH5_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    sofie_fuzz_main(argc, argv, { data, count in fuzzH5(data!, count) })
}
