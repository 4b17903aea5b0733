import CFuzz
import Foundation
import FuzzSupport
import SofieFrontends

/// A .keras model, structure-aware: the input is [len][config.json][weights], so byte mutations
/// land in the JSON and the weights (a zip's CRC would reject nearly all of them); the reader
/// lowers what it parses, then the passes run on the result.
///
/// The weights part is, by default, an HDF5 snapshot: what sofie's parent process receives from
/// the child that runs libhdf5 (scripts/fuzz.sh target `keras`). This fuzzes all of sofie's own
/// code at full speed. With SOFIE_FUZZ_LIBHDF5=1 it is the HDF5 file itself, read by libhdf5
/// in-process (target `keras-libhdf5`), which finds libhdf5's own crashes and hangs.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKeras(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let parts = FuzzSupport.split(FuzzSupport.bytes(data, count), parts: 2)
    guard let model = try? KerasReader.readKeras3(config: parts[0], weights: parts[1], metadata: nil, file: "fuzz.keras") else { return 0 }
    FuzzSupport.exercise(model, compile: false)
    return 0
}

@_cdecl("FuzzKeras_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    if FuzzSupport.convertSeedsIfAsked(parts: 2) { return 0 }
    FuzzSupport.chooseHDF5Input()
    return sofie_fuzz_main(argc, argv, { data, count in fuzzKeras(data!, count) })
}
