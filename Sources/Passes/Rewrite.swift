import SofieIR

/// A declarative graph pattern: the shape of a small expression tree rooted at a node.
public indirect enum Pattern {
    /// Any value, bound under the name.
    case any(String)
    /// A constant (initializer) value, bound under the name.
    case constant(String)
    /// A node of this op type whose first inputs match the patterns; the node is bound under `bind`.
    case op(String, [Pattern], bind: String)
    /// A node of a commutative op (Add, Mul, ...) whose first two inputs match the two patterns in
    /// either order: one rule instead of two mirrored ones.
    case commutative(String, Pattern, Pattern, bind: String)
}

/// A rule condition's answer: go ahead, or why not (onnxscript's MatchResult.fail). Refusals
/// are counted by reason in the pass report (`--stats` shows them), so a fusion that did not
/// happen says why.
public enum Verdict: Equatable, Sendable {
    case accept
    case refuse(String)

    /// Accept when `condition` holds, else refuse with `reason`.
    public static func require(_ condition: Bool, _ reason: @autoclosure () -> String) -> Verdict {
        condition ? .accept : .refuse(reason())
    }
}

/// What a pattern bound: values and nodes by name.
public struct Match {
    public var values: [String: Value] = [:]
    public var nodes: [String: Node] = [:]

    public func value(_ name: String) -> Value { values[name]! }
    public func node(_ name: String) -> Node { nodes[name]! }
    public func tensor(_ name: String) -> Tensor? { values[name]?.initializer }
}

/// Builds replacement nodes just before the matched root.
public final class RewriteBuilder {
    let graph: Graph
    var index: Int
    /// Names in use: values and nodes apart (ONNX keeps them in separate namespaces), so a node
    /// and its output may share the base name.
    var taken: Set<String>
    var takenNodes: Set<String>

    init(graph: Graph, index: Int) {
        self.graph = graph
        self.index = index
        self.taken = Set(graph.definedValues.map(\.name))
        self.takenNodes = Set(graph.nodes.map(\.name))
    }

    /// Inserts a node and returns its first output.
    @discardableResult
    public func node(_ op: String, _ inputs: [Value?], name: String, attributes: [Attribute] = []) -> Value {
        let out = Value(name: graph.uniqueName(name, taken: &taken))
        graph.insertNode(Node(opType: op, name: graph.uniqueName(name, taken: &takenNodes), inputs: inputs, outputs: [out], attributes: attributes), at: index)
        index += 1
        return out
    }

    public func constant(_ tensor: Tensor, name: String) -> Value {
        graph.addConstant(tensor, name: name, taken: &taken)
    }
}

/// A fusion written as pattern -> replacement, with a condition. `match` never changes the
/// graph; only the replacement does. Interior matched nodes must have no other readers (the
/// root may have many); a root that is a graph output hands its value to the replacement.
public struct RewriteRule: GraphPass {
    public let name: String
    public let summary: String
    public let pattern: Pattern
    public let check: (Match) -> Verdict
    public let replacement: (Match, RewriteBuilder) throws -> Value

    /// A rule whose condition says why it refuses a match.
    public init(name: String, summary: String, pattern: Pattern, check: @escaping (Match) -> Verdict,
                replacement: @escaping (Match, RewriteBuilder) throws -> Value) {
        self.name = name
        self.summary = summary
        self.pattern = pattern
        self.check = check
        self.replacement = replacement
    }

    /// A rule with a yes/no condition (a refusal is reported as "condition not met").
    public init(name: String, summary: String, pattern: Pattern, condition: @escaping (Match) -> Bool = { _ in true },
                replacement: @escaping (Match, RewriteBuilder) throws -> Value) {
        self.init(name: name, summary: summary, pattern: pattern, check: { condition($0) ? .accept : .refuse("condition not met") },
                  replacement: replacement)
    }

    /// Matches `pattern` at `value`; nil when it does not match.
    public static func match(_ pattern: Pattern, _ value: Value, root: Bool = true, into m: inout Match) -> Bool {
        switch pattern {
        case .any(let name):
            if let bound = m.values[name] { return bound === value }
            m.values[name] = value
            return true
        case .constant(let name):
            guard value.initializer != nil else { return false }
            if let bound = m.values[name] { return bound === value }
            m.values[name] = value
            return true
        case .commutative(let op, let a, let b, let bind):
            // Only for ops that are (OpTraits.commutative): else it is the pattern's mistake.
            guard let n = value.producer, n.opType == op, OpRegistry.traits(of: n).contains(.commutative) else { return false }
            let saved = m
            if match(.op(op, [a, b], bind: bind), value, root: root, into: &m) { return true }
            m = saved
            return match(.op(op, [b, a], bind: bind), value, root: root, into: &m)
        case .op(let op, let inputs, let bind):
            guard let n = value.producer, n.opType == op, n.isStandard,
                  n.inputs.count >= inputs.count else { return false }
            if !root && value.uses.count != 1 { return false }
            m.nodes[bind] = n
            m.values[bind] = value
            for (p, v) in zip(inputs, n.inputs) {
                guard let v, match(p, v, root: false, into: &m) else { return false }
            }
            return true
        }
    }

    public func run(_ model: Model) throws -> Bool { try run(model, report: PassReport()) }

    public func run(_ model: Model, report: PassReport) throws -> Bool {
        let g = model.graph
        let outputs = Set(g.outputs.map(ObjectIdentifier.init))
        var changed = false
        var i = 0
        while i < g.nodes.count {
            let n = g.nodes[i]
            i += 1
            guard let out = n.output(0) else { continue }
            var m = Match()
            guard Self.match(pattern, out, into: &m) else { continue }
            if case .refuse(let reason) = check(m) {
                report.refused("\(name): \(reason)")
                continue
            }
            let builder = RewriteBuilder(graph: g, index: i - 1)
            let replacement = try replacement(m, builder)
            replacement.type = out.type
            if outputs.contains(ObjectIdentifier(out)) {
                // A graph output keeps its value (and name): the replacement's node produces it.
                guard let p = replacement.producer, p.outputs.count == 1, replacement.uses.isEmpty else { continue }
                n.removeAllOutputs()
                p.removeAllOutputs()
                p.appendOutput(out)
            } else {
                g.replaceAllUses(of: out, with: replacement)
            }
            i = builder.index + 1
            changed = true
            report.count(name)
        }
        if changed { _ = try DeadCodeElimination().run(model) }
        return changed
    }
}

/// Runs several rules as one named pass.
public struct RuleSet: GraphPass {
    public let name: String
    public let summary: String
    public let rules: [RewriteRule]

    public init(name: String, summary: String, rules: [RewriteRule]) {
        self.name = name
        self.summary = summary
        self.rules = rules
    }

    public func run(_ model: Model) throws -> Bool { try run(model, report: PassReport()) }

    public func run(_ model: Model, report: PassReport) throws -> Bool {
        var changed = false
        for r in rules { if try r.run(model, report: report) { changed = true } }
        return changed
    }
}

/// A pass made of rewrite rules that states its name and summary once and lists its rules
/// (FuseConvBatchNorm, FuseConvAdd): it runs them as a RuleSet, reporting what they did.
public protocol RulePass: GraphPass {
    var rules: [RewriteRule] { get }
}

extension RulePass {
    public func run(_ model: Model) throws -> Bool { try run(model, report: PassReport()) }

    public func run(_ model: Model, report: PassReport) throws -> Bool {
        try RuleSet(name: name, summary: summary, rules: rules).run(model, report: report)
    }
}
