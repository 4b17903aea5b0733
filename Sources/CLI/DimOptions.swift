import ArgumentParser

/// --dim NAME=VALUE, shared by compile and verify: parsed once, in validate().
struct DimOptions: ParsableArguments {
    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp(
        "A symbolic dimension: NAME=VALUE fixes it, NAME=max:BOUND makes it a run-time argument up to BOUND (repeatable).",
        discussion: "With NAME=max:BOUND the code is compiled once and infer takes the value, e.g. session.infer(n, x, y) for --dim n=max:64; tensors are planned at the bound, and a value outside 1...BOUND throws std::out_of_range. NODE_len=max:BOUND bounds the length a node's values choose (a Range over run-time values, NonZero, Unique, ...)."))
    var dim: [String] = []

    /// The fixed values by name; throws the usage error for a malformed entry.
    func values() throws -> [String: Int] { try parsed().values }

    /// The run-time dimensions' bounds by name.
    func bounds() throws -> [String: Int] { try parsed().bounds }

    func parsed() throws -> (values: [String: Int], bounds: [String: Int]) {
        var values: [String: Int] = [:], bounds: [String: Int] = [:]
        for d in dim {
            let parts = d.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("--dim expects NAME=VALUE or NAME=max:BOUND, got '\(d)'") }
            let name = String(parts[0])
            guard values[name] == nil && bounds[name] == nil else { throw ValidationError("--dim gives '\(name)' twice") }
            if parts[1].hasPrefix("max:") {
                guard let b = Int(parts[1].dropFirst(4)), b >= 1 else { throw ValidationError("--dim \(name)=max:BOUND expects a bound of at least 1, got '\(d)'") }
                bounds[name] = b
            } else {
                guard let v = Int(parts[1]), v >= 0 else { throw ValidationError("--dim expects NAME=VALUE with a non-negative integer or NAME=max:BOUND, got '\(d)'") }
                values[name] = v
            }
        }
        return (values, bounds)
    }

    func validate() throws { _ = try parsed() }
}
