import SofieIR

/// A graph transformation: a name for pipelines, one line for `sofie passes`, and `run`,
/// which says whether it changed the model.
public protocol GraphPass {
    var name: String { get }
    var summary: String { get }
    func run(_ model: Model) throws -> Bool
}

/// Runs passes in order, optionally to a fixed point, optionally verifying the IR after each.
public struct PassManager {
    public var passes: [GraphPass]
    public var fixedPoint: Bool
    public var maxIterations: Int
    public var verifyEach: Bool
    /// Called after every pass run (for --print-after / --dump-after), with whether it changed the model.
    public var afterEach: ((GraphPass, Model, Bool) throws -> Void)?

    public init(_ passes: [GraphPass], fixedPoint: Bool = false, maxIterations: Int = 20, verifyEach: Bool = false) {
        self.passes = passes
        self.fixedPoint = fixedPoint
        self.maxIterations = maxIterations
        self.verifyEach = verifyEach
    }

    @discardableResult
    public func run(_ model: Model) throws -> Bool {
        var changedAny = false
        for _ in 0..<(fixedPoint ? maxIterations : 1) {
            var changed = false
            for pass in passes {
                let did = try pass.run(model)
                if did { changed = true }
                try afterEach?(pass, model, did)
                if verifyEach {
                    do { try Verifier.verify(model) } catch {
                        throw PassError(pass: pass.name, message: "left the graph broken: \(error)")
                    }
                }
            }
            changedAny = changedAny || changed
            if !changed { break }
        }
        return changedAny
    }
}

public struct PassError: Error, CustomStringConvertible {
    public let pass: String
    public let message: String
    public var description: String { "pass \(pass): \(message)" }
}
