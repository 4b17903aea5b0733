import ArgumentParser

/// --dim NAME=VALUE, shared by compile and verify: parsed once, in validate().
struct DimOptions: ParsableArguments {
    @Option(name: .long, parsing: .singleValue, help: "Value of a symbolic dimension, NAME=VALUE (repeatable).")
    var dim: [String] = []

    /// The values by name; throws the usage error for a malformed entry.
    func values() throws -> [String: Int] {
        var out: [String: Int] = [:]
        for d in dim {
            let parts = d.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let v = Int(parts[1]), v >= 0 else { throw ValidationError("--dim expects NAME=VALUE with a non-negative integer, got '\(d)'") }
            out[String(parts[0])] = v
        }
        return out
    }

    func validate() throws { _ = try values() }
}
