/// Why a Keras model could not be read or lowered: names the file and, where there is one,
/// the layer (name and class) at fault.
public struct KerasError: Error, CustomStringConvertible {
    public let file: String
    public let message: String

    public init(file: String, _ message: String) {
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}
