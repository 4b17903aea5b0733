import Foundation
import SofieDriver
import SofieIR
import SofiePasses
@testable import SofieFrontends
import XCTest

/// The HDF5 snapshot is what sofie's process receives from the child that runs libhdf5 on an
/// untrusted file, so it is untrusted too: everything read from it is checked before the layers
/// index weights with it (the `keras` and `h5` fuzz targets feed snapshots directly).
final class HDF5SnapshotTests: XCTestCase {
    private func withSnapshotInput<T>(_ body: () throws -> T) rethrows -> T {
        let saved = HDF5Input.mode
        HDF5Input.mode = .snapshotBytes
        defer { HDF5Input.mode = saved }
        return try body()
    }

    private func mlpSnapshot() throws -> [UInt8] {
        let path = TestSupport.repoRoot + "/Tests/Fixtures/keras/mlp/model_k3.h5"
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        return try HDF5Input.snapshot(ofHDF5: bytes, name: "model_k3.h5")
    }

    func testSnapshotRoundTripsAndReadsAsTheFile() throws {
        let snap = try mlpSnapshot()
        let nodes = try XCTUnwrap(HDF5Snapshot.decode(snap))
        XCTAssertEqual(HDF5Snapshot.encode(nodes), snap)
        let model = try withSnapshotInput { try KerasReader.readH5(bytes: snap, file: "mlp.h5") }
        XCTAssertEqual(model.graph.nodes.filter { $0.opType == "MatMul" }.count, 3)
    }

    func testDatasetWhoseShapeDisagreesWithItsValuesIsAnError() throws {
        var nodes = try XCTUnwrap(HDF5Snapshot.decode(try mlpSnapshot()))
        let kernel = try XCTUnwrap(nodes.keys.sorted().first { nodes[$0]!.isDataset && nodes[$0]!.shape.count == 2 })
        nodes[kernel]!.values.removeLast()
        let bad = HDF5Snapshot.encode(nodes)
        XCTAssertThrowsError(try withSnapshotInput { try KerasReader.readH5(bytes: bad, file: "mlp.h5") }) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("does not match its"), text)
            XCTAssertTrue(text.contains("mlp.h5"), text)
        }
        nodes[kernel]!.shape = [-1, -1]
        nodes[kernel]!.values = [0]
        XCTAssertThrowsError(try withSnapshotInput { try KerasReader.readH5(bytes: HDF5Snapshot.encode(nodes), file: "mlp.h5") })
    }

    func testTruncatedSnapshotsAreRejected() throws {
        let snap = try mlpSnapshot()
        for cut in stride(from: 0, to: snap.count, by: max(1, snap.count / 97)) {
            XCTAssertNil(HDF5Snapshot.decode(Array(snap.prefix(cut))), "a snapshot cut at \(cut) bytes decoded")
        }
    }

    /// Fuzz findings of the `keras` target (weights given as a snapshot): a kernel whose values
    /// did not match its shape was permuted by unchecked loops (heap-buffer-overflow under ASan);
    /// UpSampling on a tensor of the wrong rank indexed past its scales; a Permute whose dims
    /// are not a permutation reached fold-transposes' new unit-axis rule. Each must be an error
    /// from the reader or the passes, run as the fuzz target runs them.
    func testSnapshotFuzzFindingsStayFixed() throws {
        let dir = TestSupport.repoRoot + "/Tests/Fixtures/fuzz-regressions/snapshot"
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("keras_") }.sorted()
        XCTAssertFalse(files.isEmpty)
        for f in files {
            let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f)))
            // The fuzz input: [4-byte little-endian length][config.json][weights snapshot].
            let n = Int(b[0]) | Int(b[1]) << 8 | Int(b[2]) << 16 | Int(b[3]) << 24
            let config = Array(b[4..<min(b.count, 4 + n)]), weights = Array(b[min(b.count, 4 + n)...])
            XCTAssertThrowsError(try withSnapshotInput {
                let model = try KerasReader.readKeras3(config: config, weights: weights, metadata: nil, file: f)
                try Verifier.verify(model)
                try Compiler.optimize(model, passes: nil)
                try ShapeInference(strict: true).run(model)
            }, f)
        }
    }
}
