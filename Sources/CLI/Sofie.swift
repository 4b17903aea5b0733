import ArgumentParser
import Foundation
import SofieBackends
import SofieFrontends
import SofieIR
import SofiePasses

@main
struct Sofie: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sofie",
        abstract: "Compile Keras and ONNX models to self-contained C++ for fast batch-1 inference.",
        discussion: """
        sofie reads ONNX (.onnx) and Keras models (Keras 3 .keras archives, and .h5 files from Keras 2 and Keras 3; Sequential, Functional and nested models) without TensorFlow, converts them to ONNX, compiles them to C++, and prints what they contain. Every command exits with a non-zero status and a one-paragraph message naming the file and the node at fault when a model cannot be handled.

        Examples:
          sofie inspect model.keras [--html graph.html]
          sofie convert model.h5 -o model.onnx
          sofie compile model.onnx -o generated/ [--c-api]
          sofie verify model.onnx [--input x=x.npy]
        """,
        version: "0.1.0",
        subcommands: [Inspect.self, Convert.self, Compile.self, Verify.self, Passes.self]
    )
}

/// Prints a failure the way every command reports it, and exits non-zero.
func fail(_ error: Error, file: String? = nil) -> Never {
    var message = "\(error)"
    if let e = error as? LocalizedError, let d = e.errorDescription { message = d }
    // Every error names the file it concerns.
    if let file, !message.hasPrefix(file) { message = "\(file): \(message)" }
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    Foundation.exit(1)
}
