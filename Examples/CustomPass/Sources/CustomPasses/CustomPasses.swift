// The example's passes, shared by the demo program (custom-pass-demo) and the pass plugin
// (libCustomPassPlugin.so, loaded by `sofie ... --load-pass-plugin`).
import SofieIR
import SofiePasses

/// Relu(Relu(x)) is Relu(x): the outer Relu reads the inner one's input instead.
public let collapseRelu = RewriteRule(
    name: "collapse-double-relu",
    summary: "Relu(Relu(x)) becomes Relu(x)",
    pattern: .op("Relu", [.op("Relu", [.any("x")], bind: "inner")], bind: "outer"),
    replacement: { match, builder in
        builder.node("Relu", [match.value("x")], name: match.node("outer").name + "_collapsed")
    }
)

/// A hand-written pass works too: it counts what it sees and changes nothing.
public struct ReportOps: GraphPass {
    public let name = "report-ops"
    public let summary = "print the op histogram"
    public init() {}
    public func run(_ model: Model) throws -> Bool {
        let hist = model.graph.opHistogram().sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        print("ops: " + hist.joined(separator: " "))
        return false
    }
}
