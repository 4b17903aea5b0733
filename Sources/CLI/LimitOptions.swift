import ArgumentParser
import SofieIR

/// Size limits for untrusted models, shared by the commands that read them.
struct LimitOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Refuse any tensor, weight file, fill or arena larger than this many bytes (default 17179869184 = 16 GiB).",
        discussion: "Every size in a model file is untrusted: a few-KB file can declare terabytes. Raise the limit for a model that truly needs more.",
        valueName: "BYTES"))
    var maxTensorBytes: Int?

    func validate() throws {
        if let b = maxTensorBytes, b < 1 { throw ValidationError("--max-tensor-bytes must be positive (got \(b))") }
    }

    /// Makes the limit take effect for this process.
    func apply() {
        if let b = maxTensorBytes { Limits.maxTensorBytes = b }
    }
}
