/// Why an ONNX file could not be read. The message names the file and, where there is
/// one, the node, tensor or value at fault.
public struct ONNXReadError: Error, CustomStringConvertible {
    public let file: String
    public let message: String

    public init(file: String, _ message: String) {
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}
