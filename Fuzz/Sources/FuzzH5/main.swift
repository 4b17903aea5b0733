import CFuzz
import Foundation
import FuzzSupport
import SofieFrontends

/// A whole-model .h5 file (Keras 2 or 3), lowered, then the passes run on the result. By default
/// the input is the file's HDF5 snapshot (what the child running libhdf5 hands to sofie: target
/// `h5`); with SOFIE_FUZZ_LIBHDF5=1 it is the HDF5 file, opened from memory by libhdf5
/// in-process (target `h5-libhdf5`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzH5(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard let model = try? KerasReader.readH5(bytes: FuzzSupport.bytes(data, count), file: "fuzz.h5") else { return 0 }
    FuzzSupport.exercise(model, compile: false)
    return 0
}

@_cdecl("FuzzH5_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    if FuzzSupport.convertSeedsIfAsked(parts: 1) { return 0 }
    FuzzSupport.chooseHDF5Input()
    return sofie_fuzz_main(argc, argv, { data, count in fuzzH5(data!, count) })
}
