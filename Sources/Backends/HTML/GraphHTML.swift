import SofieIR

/// A self-contained HTML page showing a graph before and after the optimization pipeline side by
/// side (`sofie inspect MODEL --html out.html`): one SVG per graph with a layered layout of our
/// own (no Graphviz, no scripts, no external files), operators coloured by family, each edge
/// labelled with its tensor's shape, nodes the pipeline removed (folded, fused away) dashed on the
/// left, nodes it created (fused, rewritten) outlined on the right, and a table of operator
/// counts before and after. Every name from the model is escaped.
public enum GraphHTML {
    /// Operator families and their colours (also the legend).
    static let families: [(name: String, color: String, ops: Set<String>)] = [
        ("convolution / matrix product", "#9ecae1", ["Conv", "ConvTranspose", "Gemm", "MatMul", "FusedConv", "FusedGemm", "FusedMatMul", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "Einsum"]),
        ("activation", "#fdd49e", ["Relu", "Sigmoid", "Tanh", "LeakyRelu", "Elu", "Selu", "Gelu", "HardSigmoid", "HardSwish", "Softplus", "Softsign", "Mish", "PRelu", "Clip", "ThresholdedRelu", "Celu", "Softmax", "LogSoftmax", "Hardmax", "Swish"]),
        ("normalization", "#dadaeb", ["BatchNormalization", "LayerNormalization", "GroupNormalization", "InstanceNormalization", "LpNormalization", "RMSNormalization", "MeanVarianceNormalization", "LRN"]),
        ("pooling / resizing", "#fdae6b", ["MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool", "Resize", "Upsample", "MaxUnpool"]),
        ("recurrent / attention", "#fc9272", ["LSTM", "GRU", "RNN", "Attention", "MultiHeadAttention"]),
        ("reduction", "#a1d99b", ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSumExp", "ReduceSumSquare", "ReduceLogSum", "ArgMax", "ArgMin", "TopK", "CumSum"]),
        ("layout / shape", "#d9d9d9", ["Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice", "Gather", "GatherElements", "GatherND", "Shape", "Size", "Expand", "Tile", "Pad", "Identity", "DepthToSpace", "SpaceToDepth", "Constant", "ConstantOfShape", "Cast", "ScatterND", "ScatterElements", "Range", "Where", "NonZero", "Trilu", "OneHot"]),
        ("elementwise", "#c7e9c0", ["Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Abs", "Neg", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Min", "Max", "Sum", "Mean", "Erf", "Sin", "Cos", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Not", "Xor", "Mod"]),
    ]
    static let otherColor = "#ffffff"

    static func color(_ n: Node) -> String {
        if !n.isStandard { return "#e7cb94" }  // a custom domain (sofie's fused ops among them)
        return families.first { $0.ops.contains(n.opType) }?.color ?? otherColor
    }

    public static func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                if c.value < 0x20 || (0x7f..<0xa0).contains(c.value) { out += "?" } else { out.unicodeScalars.append(c) }
            }
        }
        return out
    }

    static func shape(_ v: Value) -> String {
        guard let t = v.tensorType else { return "?" }
        return t.description
    }

    /// Identity of a node across the two graphs: its name, or for unnamed nodes its op and its
    /// first output's name.
    static func key(_ n: Node) -> String {
        n.name.isEmpty ? "\(n.opType)|\(n.output(0)?.name ?? "")" : n.name
    }

    struct Layout {
        var width = 0, height = 0
        var svg = ""
    }

    static let boxW = 150, boxH = 38, gapX = 24, gapY = 46

    /// Layered layout: a node sits one layer below the deepest producer of its inputs; within a
    /// layer nodes are ordered by the mean position of their producers (fewer crossings).
    static func layout(_ g: Graph, marked: Set<String>, markClass: String, title: String) -> Layout {
        var producerLayer: [ObjectIdentifier: Int] = [:]
        var position: [ObjectIdentifier: Double] = [:]  // of values: x of their producer's slot
        var layers: [[Node]] = []
        let realInputs = g.inputs.filter { $0.initializer == nil }
        for (i, v) in realInputs.enumerated() {
            producerLayer[ObjectIdentifier(v)] = 0
            position[ObjectIdentifier(v)] = Double(i)
        }
        var nodeLayer: [ObjectIdentifier: Int] = [:]
        for n in g.nodes {
            var l = 1
            for case let v? in n.inputs { if let pl = producerLayer[ObjectIdentifier(v)] { l = max(l, pl + 1) } }
            nodeLayer[ObjectIdentifier(n)] = l
            for case let v? in n.outputs { producerLayer[ObjectIdentifier(v)] = l }
            while layers.count <= l { layers.append([]) }
            layers[l].append(n)
        }
        var slot: [ObjectIdentifier: Int] = [:]
        for l in layers.indices where l > 0 {
            let keyed = layers[l].enumerated().map { (i, n) -> (Double, Int, Node) in
                let xs = n.inputs.compactMap { $0.flatMap { position[ObjectIdentifier($0)] } }
                return (xs.isEmpty ? Double(i) : xs.reduce(0, +) / Double(xs.count), i, n)
            }.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            layers[l] = keyed.map(\.2)
            for (i, n) in layers[l].enumerated() {
                slot[ObjectIdentifier(n)] = i
                for case let v? in n.outputs { position[ObjectIdentifier(v)] = Double(i) }
            }
        }
        let columns = max(realInputs.count, layers.map(\.count).max() ?? 0, 1)
        var out = Layout()
        out.width = columns * (boxW + gapX) + gapX + 110  // room for the last column's edge labels
        out.height = (layers.count + 1) * (boxH + gapY) + gapY
        func x(_ slot: Int) -> Int { gapX + slot * (boxW + gapX) }
        func y(_ layer: Int) -> Int { gapY + layer * (boxH + gapY) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(out.width)\" height=\"\(out.height)\" role=\"img\" aria-label=\"\(escape(title))\">\n"
        // Where each value comes from: (x, y) of the bottom centre of its producer (or input box).
        var source: [ObjectIdentifier: (Int, Int)] = [:]
        for (i, v) in realInputs.enumerated() {
            source[ObjectIdentifier(v)] = (x(i) + boxW / 2, y(0) + boxH)
            s += "<g class=\"input\"><title>\(escape(v.name)): \(escape(shape(v)))</title>"
            s += "<rect x=\"\(x(i))\" y=\"\(y(0))\" width=\"\(boxW)\" height=\"\(boxH)\" rx=\"18\" fill=\"#f7f7f7\" stroke=\"#555\"/>"
            s += "<text x=\"\(x(i) + boxW / 2)\" y=\"\(y(0) + 16)\" class=\"op\">input</text>"
            s += "<text x=\"\(x(i) + boxW / 2)\" y=\"\(y(0) + 30)\" class=\"name\">\(escape(short(v.name)))</text></g>\n"
        }
        for n in g.nodes {
            let id = ObjectIdentifier(n)
            let l = nodeLayer[id]!, sl = slot[id]!
            for case let v? in n.outputs { source[ObjectIdentifier(v)] = (x(sl) + boxW / 2, y(l) + boxH) }
        }
        // Edges first (under the boxes), each with its tensor's shape.
        var edges = ""
        for n in g.nodes {
            let id = ObjectIdentifier(n)
            let tx = x(slot[id]!) + boxW / 2, ty = y(nodeLayer[id]!)
            for case let v? in n.inputs {
                guard let (sx, sy) = source[ObjectIdentifier(v)] else { continue }  // weights are not drawn
                let my = (sy + ty) / 2
                // An edge that skips layers bows out to the right so that the boxes between do
                // not hide it (a residual connection beside its branch).
                let dx = ty - sy > boxH + gapY ? boxW / 2 + 14 : 0
                edges += "<g class=\"edge\"><title>\(escape(v.name)): \(escape(shape(v)))</title>"
                edges += dx == 0 ? "<path d=\"M\(sx),\(sy) C\(sx),\(my) \(tx),\(my) \(tx),\(ty)\"/>"
                    : "<path d=\"M\(sx),\(sy) C\(sx + dx * 4 / 3),\(sy + gapY) \(tx + dx * 4 / 3),\(ty - gapY) \(tx),\(ty)\"/>"
                edges += "<text x=\"\((sx + tx) / 2 + 4 + dx)\" y=\"\(my)\">\(escape(shape(v)))</text></g>\n"
            }
        }
        s += edges
        for n in g.nodes {
            let id = ObjectIdentifier(n)
            let bx = x(slot[id]!), by = y(nodeLayer[id]!)
            let weights = n.inputs.compactMap { $0 }.filter { $0.initializer != nil }.count
            let isMarked = marked.contains(key(n))
            let cls = "node" + (isMarked ? " " + markClass : "")
            var tip = "\(n.opType)\(n.isStandard ? "" : " (\(n.domain))") \(n.name)"
            if weights > 0 { tip += "\n\(weights) weight input\(weights == 1 ? "" : "s")" }
            for a in n.attributes.prefix(8) { tip += "\n\(a.name)" }
            s += "<g class=\"\(cls)\" data-op=\"\(escape(n.opType))\"><title>\(escape(tip))</title>"
            s += "<rect x=\"\(bx)\" y=\"\(by)\" width=\"\(boxW)\" height=\"\(boxH)\" rx=\"4\" fill=\"\(color(n))\"/>"
            s += "<text x=\"\(bx + boxW / 2)\" y=\"\(by + 16)\" class=\"op\">\(escape(short(n.opType, 20)))\(weights > 0 ? " +\(weights)w" : "")</text>"
            s += "<text x=\"\(bx + boxW / 2)\" y=\"\(by + 30)\" class=\"name\">\(escape(short(n.name)))</text></g>\n"
        }
        // Graph outputs, under their producers.
        for v in g.outputs {
            guard let (sx, sy) = source[ObjectIdentifier(v)] else { continue }
            s += "<g class=\"output\"><title>output \(escape(v.name)): \(escape(shape(v)))</title>"
            s += "<path d=\"M\(sx),\(sy) L\(sx),\(sy + 16)\"/><text x=\"\(sx)\" y=\"\(sy + 28)\" class=\"name\">→ \(escape(short(v.name))) \(escape(shape(v)))</text></g>\n"
        }
        s += "</svg>"
        out.svg = s
        return out
    }

    static func short(_ s: String, _ limit: Int = 22) -> String {
        s.count <= limit ? s : String(s.prefix(limit - 1)) + "…"
    }

    /// The page for `before` (as read) and `after` (as optimized) of the model from `file`.
    public static func render(before: Model, after: Model, file: String, pipeline: String) -> String {
        let beforeKeys = Set(before.graph.nodes.map(key)), afterKeys = Set(after.graph.nodes.map(key))
        let removed = beforeKeys.subtracting(afterKeys), created = afterKeys.subtracting(beforeKeys)
        let left = layout(before.graph, marked: removed, markClass: "removed", title: "graph as read")
        let right = layout(after.graph, marked: created, markClass: "created", title: "graph after the pipeline")
        let hb = before.graph.opHistogram(), ha = after.graph.opHistogram()
        var rows = ""
        for op in Set(hb.keys).union(ha.keys).sorted(by: { (hb[$0] ?? 0, ha[$0] ?? 0, $1) > (hb[$1] ?? 0, ha[$1] ?? 0, $0) }) {
            let b = hb[op] ?? 0, a = ha[op] ?? 0
            rows += "<tr><td>\(escape(op))</td><td>\(b)</td><td>\(a)</td><td>\(a - b > 0 ? "+" : "")\(a == b ? "" : String(a - b))</td></tr>\n"
        }
        var legend = families.map { "<span class=\"key\" style=\"background:\($0.color)\">\(escape($0.name))</span>" }.joined(separator: " ")
        legend += " <span class=\"key\" style=\"background:#e7cb94\">custom domain (fused)</span> <span class=\"key\">other</span>"
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>sofie: \(escape(file))</title>
        <style>
        body { font: 13px system-ui, sans-serif; margin: 12px; color: #222; }
        h1 { font-size: 16px; margin: 0 0 6px; } h2 { font-size: 14px; margin: 4px 0; }
        .cols { display: flex; gap: 12px; align-items: flex-start; }
        .col { flex: 1; min-width: 0; overflow: auto; max-height: 85vh; border: 1px solid #ccc; }
        .col h2 { position: sticky; top: 0; left: 0; background: #fff; padding: 4px; }
        svg text { font: 10px monospace; text-anchor: middle; }
        svg text.op { font-weight: bold; font-size: 11px; }
        .edge path, .output path { fill: none; stroke: #888; stroke-width: 1; }
        .edge text { fill: #666; font-size: 9px; text-anchor: start; }
        .node rect { stroke: #333; stroke-width: 1; }
        .node.removed rect { stroke: #c00; stroke-dasharray: 4 3; stroke-width: 2; opacity: 0.75; }
        .node.created rect { stroke: #1a7f37; stroke-width: 3; }
        .key { display: inline-block; padding: 1px 6px; border: 1px solid #999; margin: 2px; }
        table { border-collapse: collapse; margin-top: 10px; } td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
        td:first-child, th:first-child { text-align: left; }
        </style></head><body>
        <h1>\(escape(file))</h1>
        <p>Pipeline: \(escape(pipeline)). Nodes: \(before.graph.nodes.count) as read, \(after.graph.nodes.count) after.
        Red dashed: removed by the pipeline (\(removed.count): folded, fused away, or eliminated). Green: created by it (\(created.count): fused or rewritten). Hover a box or an edge for names and shapes.</p>
        <p>\(legend)</p>
        <div class="cols">
        <div class="col" id="before"><h2>as read: \(before.graph.nodes.count) nodes</h2>
        \(left.svg)
        </div>
        <div class="col" id="after"><h2>after the pipeline: \(after.graph.nodes.count) nodes</h2>
        \(right.svg)
        </div>
        </div>
        <table id="counts"><tr><th>operator</th><th>as read</th><th>after</th><th>change</th></tr>
        \(rows)</table>
        </body></html>

        """
    }
}
