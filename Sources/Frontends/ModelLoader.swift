import Foundation
import SofieIR

/// The model formats the frontends read, chosen by file extension.
public enum ModelFormat: String, CaseIterable, Sendable {
    case onnx, keras, h5

    public init?(path: String) {
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "onnx": self = .onnx
        case "keras": self = .keras
        case "h5", "hdf5": self = .h5
        default: return nil
        }
    }
}

public struct UnsupportedFormatError: Error, CustomStringConvertible {
    public let file: String
    public let reason: String
    public var description: String { "\(file): \(reason)" }
}

/// Reads a model file of any supported format into the IR.
public enum ModelLoader {
    public static func load(path: String) throws -> Model {
        guard FileManager.default.fileExists(atPath: path) else {
            throw UnsupportedFormatError(file: path, reason: "no such file")
        }
        guard let format = ModelFormat(path: path) else {
            throw UnsupportedFormatError(file: path, reason: "unknown model format; sofie reads .onnx (ONNX), .keras (Keras 3) and .h5 (Keras 2/3) files")
        }
        switch format {
        case .onnx:
            return try ONNXReader.read(path: path)
        case .keras, .h5:
            return try KerasReader.read(path: path)
        }
    }
}
