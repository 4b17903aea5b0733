import CFuzz
import FuzzSupport
import SofieFrontends

/// A .keras model, structure-aware: the input is [len][config.json][model.weights.h5], so byte
/// mutations land in the JSON and the HDF5 image (a zip's CRC would reject nearly all of them)
/// and the reader lowers what it parses, then the passes run on the result.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKeras(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let parts = FuzzSupport.split(FuzzSupport.bytes(data, count), parts: 2)
    guard let model = try? KerasReader.readKeras3(config: parts[0], weights: parts[1], metadata: nil, file: "fuzz.keras") else { return 0 }
    FuzzSupport.exercise(model, compile: false)
    return 0
}

@_cdecl("FuzzKeras_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    sofie_fuzz_main(argc, argv, { data, count in fuzzKeras(data!, count) })
}
