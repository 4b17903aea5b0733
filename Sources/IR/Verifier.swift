/// A broken invariant of the IR, found by `Verifier`.
public struct VerificationError: Error, CustomStringConvertible {
    public let problems: [String]
    public var description: String {
        "the graph is not well-formed:\n" + problems.prefix(20).map { "  - \($0)" }.joined(separator: "\n")
            + (problems.count > 20 ? "\n  ... and \(problems.count - 20) more" : "")
    }
}

/// Checks the IR's invariants: single assignment, topological order, every input defined
/// (in this graph or an enclosing one), use lists consistent with node inputs, types on
/// the main graph's inputs and outputs.
public enum Verifier {
    public static func verify(_ model: Model) throws {
        var problems: [String] = []
        check(model.graph, outer: [], isMain: true, problems: &problems)
        if !problems.isEmpty { throw VerificationError(problems: problems) }
    }

    public static func verify(_ graph: Graph) throws {
        var problems: [String] = []
        check(graph, outer: [], isMain: true, problems: &problems)
        if !problems.isEmpty { throw VerificationError(problems: problems) }
    }

    private static func check(_ graph: Graph, outer: [Set<ObjectIdentifier>], isMain: Bool, problems: inout [String]) {
        var defined = Set<ObjectIdentifier>()
        var names = Set<String>()
        func define(_ v: Value, _ what: String) {
            if !defined.insert(ObjectIdentifier(v)).inserted {
                problems.append("value '\(v.name)' is defined twice (\(what))")
            } else if !names.insert(v.name).inserted {
                problems.append("two values share the name '\(v.name)' (\(what))")
            }
        }
        for v in graph.inputs {
            define(v, "graph input")
            if isMain && v.type == nil { problems.append("graph input '\(v.name)' has no type") }
        }
        for v in graph.initializers where !graph.inputs.contains(where: { $0 === v }) {
            define(v, "initializer")
            if v.initializer == nil { problems.append("initializer '\(v.name)' has no tensor") }
        }
        func isDefined(_ v: Value) -> Bool {
            defined.contains(ObjectIdentifier(v)) || outer.contains { $0.contains(ObjectIdentifier(v)) }
        }
        // Each value's uses as a set, made once: a node reading one value 100,000 times (a Sum)
        // must not make the check quadratic.
        struct UseKey: Hashable { let node: ObjectIdentifier; let index: Int }
        var useSets: [ObjectIdentifier: Set<UseKey>] = [:]
        func records(_ v: Value, _ node: Node, _ i: Int) -> Bool {
            let id = ObjectIdentifier(v)
            if useSets[id] == nil { useSets[id] = Set(v.uses.map { UseKey(node: ObjectIdentifier($0.node), index: $0.index) }) }
            return useSets[id]!.contains(UseKey(node: ObjectIdentifier(node), index: i))
        }
        for node in graph.nodes {
            if node.graph !== graph { problems.append("node \(node.label) does not point back to its graph") }
            for (i, input) in node.inputs.enumerated() {
                guard let input else { continue }
                if !isDefined(input) {
                    problems.append("node \(node.label) reads '\(input.name)' before it is defined (or it is never defined)")
                }
                if !records(input, node, i) {
                    problems.append("value '\(input.name)' does not record its use by node \(node.label)")
                }
            }
            for sub in node.subgraphs {
                check(sub, outer: outer + [defined], isMain: false, problems: &problems)
            }
            for output in node.outputs {
                guard let output else { continue }
                if output.producer !== node {
                    problems.append("value '\(output.name)' does not record node \(node.label) as its producer")
                }
                define(output, "output of node \(node.label)")
            }
        }
        for v in graph.outputs {
            if !isDefined(v) { problems.append("graph output '\(v.name)' is never defined") }
            if isMain && v.type == nil { problems.append("graph output '\(v.name)' has no type") }
        }
        for v in graph.inputs + graph.initializers + graph.nodes.flatMap({ $0.outputs.compactMap { $0 } }) {
            for use in v.uses where use.node.input(use.index) !== v {
                problems.append("value '\(v.name)' records a stale use by node \(use.node.label)")
            }
        }
    }
}
