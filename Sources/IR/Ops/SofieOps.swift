import Foundation

/// swift-sofie's own operators, in the domain `org.sofie`: fused forms that the passes create
/// and the C++ emitter consumes. They reach an ONNX file only when asked for
/// (`sofie convert --sofie-ops`); otherwise `SofieOps.expand` turns them back into ONNX ops.
///
/// - `FusedConv(X, W, B?, Z?)`: Conv's attributes plus `activation` and `activation_params`;
///   Y = activation(Conv(X, W, B) + Z). Z (the residual) has Y's shape.
/// - `FusedGemm(A, B, C?, Z?)`: Gemm's attributes plus the same two;
///   Y = activation(alpha A'B' + beta C + Z).
/// - `Gelu(X)`: ONNX's Gelu (opset 20) for models of an older opset.
///
/// The blocked channel layout (the `block-channels` pass; the C++ runtime's blocked.h): an image
/// [N, C, S...] (S: 1 or 2 spatial dims) held as [N, ceil(C/16), S..., 16], channel c at block
/// c / 16, lane c % 16; lanes past C hold finite values no real channel reads.
/// - `ToBlocked(X)`: [N, C, S...] float -> [N, ceil(C/16), S..., 16], zero past C.
/// - `FromBlocked(X)`, attribute `channels` = C: the inverse.
/// - `BlockedConv(X, W, B?, Z?)`: FusedConv on blocked X, Z and Y, with explicit `pads` (no
///   auto_pad); W and B are Conv's own ([M, C/group, k...], [M]); one group, depthwise
///   (group = C = M), or groups of whole blocks (C/group and M/group multiples of 16). Y: [N, ceil(M/16), O..., 16].
///   With one group, X may also be planar ([N, C, S...], the rank of W; [N, S..., C] with
///   `channels_last` = 1): a stem of a few channels writing a blocked image.
/// - `BlockedGlobalAveragePool(X)`: GlobalAveragePool on blocked X ([N, CB, 1..., 16]).
/// - `BlockedMaxPool(X)`: MaxPool (one output) on blocked X, with explicit `pads` (ceil_mode
///   written as the end pads that give its output size).
public enum SofieOps {
    /// A channels-last shape [N, S..., C] in NCHW order, [N, C, S...] (the shape itself when
    /// not channelsLast).
    public static func nchwOrder(_ shape: [Int], channelsLast: Bool) -> [Int] {
        guard channelsLast, shape.count >= 3 else { return shape }
        return [shape[0], shape[shape.count - 1]] + shape[1..<(shape.count - 1)]
    }

    public static let domain = "org.sofie"
    public static let version = 1
    /// Channels per block of the blocked layout (sofie_rt::kBlock).
    public static let blockLanes = 16

    /// The activations an epilogue applies, with the parameters `activation_params` holds.
    public static let activations: [String: [String]] = [
        "Relu": [], "LeakyRelu": ["alpha"], "Sigmoid": [], "Tanh": [], "Clip": ["min", "max"],
        "HardSigmoid": ["alpha", "beta"], "HardSwish": [], "Swish": [], "Gelu": [],
    ]

    public static func isSofie(_ n: Node) -> Bool { n.domain == domain }

    /// The epilogue activation a single standard node applies to its input 0, with its
    /// `activation_params`; nil for any other node. The one mapping from ONNX ops to these
    /// activations: fuse-epilogues reads it to fuse the node into a product, the C++ backend
    /// runs a node it maps (on float tensors) through the same runtime function as a fused
    /// one, and `activationNodes` (the expansion) is its inverse. Clip maps only with constant
    /// bounds; Gelu only in its exact (erf) form; Swish (two nodes, x * Sigmoid(x)) is
    /// recognized by the fusion pass itself, ONNX's Swish op with alpha 1 here.
    public static func activation(of a: Node) -> (name: String, params: [Float])? {
        guard a.isStandard || (isSofie(a) && a.opType == "Gelu") else { return nil }
        switch a.opType {
        case "Relu", "Tanh", "HardSwish", "Sigmoid":
            return (a.opType, [])
        case "Gelu":
            return (a.string("approximate") ?? "none") == "none" ? ("Gelu", []) : nil
        case "Swish":
            return (a.float("alpha") ?? 1) == 1 ? ("Swish", []) : nil
        case "LeakyRelu":
            return ("LeakyRelu", [a.float("alpha") ?? 0.01])
        case "HardSigmoid":
            return ("HardSigmoid", [a.float("alpha") ?? 0.2, a.float("beta") ?? 0.5])
        case "Clip":
            func bound(_ i: Int, _ attr: String, _ def: Float) -> Float? {
                if a.inputs.count > i {
                    guard let v = a.input(i) else { return def }
                    return v.initializer.flatMap(NDArray.init).flatMap { $0.count == 1 ? Float($0.double(0)) : nil }
                }
                return a.float(attr) ?? def
            }
            guard let lo = bound(1, "min", -Float.infinity), let hi = bound(2, "max", Float.infinity) else { return nil }
            return ("Clip", [lo, hi])
        default:
            return nil
        }
    }

    public static var table: [String: OpDef] {
        var t: [String: OpDef] = [:]
        func checkEpilogue(_ c: OpContext, _ out: [Int], zInput: Int) throws {
            let act = c.node.string("activation") ?? ""
            if !act.isEmpty {
                guard let names = activations[act] else {
                    throw c.fail("unknown epilogue activation '\(act)' (known: \(activations.keys.sorted().joined(separator: ", ")))")
                }
                guard (c.node.floats("activation_params") ?? []).count == names.count else {
                    throw c.fail("activation \(act) needs \(names.count) activation_params (\(names.joined(separator: ", ")))")
                }
            }
            if c.has(zInput), try c.shape(zInput) != out {
                throw c.fail("the residual Z has the shape \(try c.shape(zInput)); it must be the output's, \(out)")
            }
        }
        t["FusedConv"] = OpDef(infer: { c in
            let out = try NNOps.convGeometry(c).outputShape
            try checkEpilogue(c, out, zInput: 3)
            return [tt(try c.dtype(0), out)]
        })
        t["FusedGemm"] = OpDef(infer: { c in
            guard let gemm = NNOps.table["Gemm"] else { throw c.fail("internal: no Gemm rule") }
            let types = try gemm.infer(c)
            try checkEpilogue(c, types[0].staticShape ?? [], zInput: 3)
            return types
        })
        t["Gelu"] = ElementwiseOps.table["Gelu"]
        // The blocked layout's ops (see the type's documentation).
        func blockedShape(_ c: OpContext, _ i: Int) throws -> [Int] {
            let x = try c.shape(i)
            guard x.count == 4 || x.count == 5, x.last == blockLanes else { throw c.fail("input \(i) has the shape \(x); a blocked image is [N, blocks, 1 or 2 spatial dims, \(blockLanes)]") }
            return x
        }
        func blocks(_ channels: Int) -> Int { channels / blockLanes + (channels % blockLanes == 0 ? 0 : 1) }
        /// Strides, dilations and explicit pads of an n-D blocked window (no auto_pad).
        func window(_ c: OpContext, _ n: Int) throws -> ([Int], [Int], [Int]) {
            let strides = c.node.ints("strides") ?? [Int](repeating: 1, count: n)
            let dil = c.node.ints("dilations") ?? [Int](repeating: 1, count: n)
            let pads = c.node.ints("pads") ?? [Int](repeating: 0, count: 2 * n)
            guard strides.count == n, dil.count == n, pads.count == 2 * n, strides.allSatisfy({ $0 > 0 }), dil.allSatisfy({ $0 > 0 }),
                  pads.allSatisfy({ $0 >= 0 }), (c.node.string("auto_pad") ?? "NOTSET") == "NOTSET" else {
                throw c.invalid("strides, dilations and pads (explicit, no auto_pad) do not fit a \(n)-D blocked window")
            }
            return (strides, dil, pads)
        }
        t["ToBlocked"] = OpDef(infer: { c in
            let x = try c.shape(0)
            guard try c.dtype(0) == .float, x.count == 3 || x.count == 4 else { throw c.fail("ToBlocked takes a float image [N, C, 1 or 2 spatial dims], not \(x)") }
            return [tt(.float, [x[0], blocks(x[1])] + x[2...] + [blockLanes])]
        }, traits: [.rowIndependent])
        t["FromBlocked"] = OpDef(infer: { c in
            let x = try blockedShape(c, 0), channels = c.int("channels", -1)
            guard channels > 0, blocks(channels) == x[1] else { throw c.fail("channels = \(channels) does not fit \(x[1]) blocks of \(blockLanes)") }
            return [tt(.float, [x[0], channels] + x[2..<(x.count - 1)])]
        }, traits: [.rowIndependent])
        t["BlockedGlobalAveragePool"] = OpDef(infer: { c in
            let x = try blockedShape(c, 0)
            return [tt(.float, [x[0], x[1]] + [Int](repeating: 1, count: x.count - 3) + [blockLanes])]
        }, traits: [.rowIndependent])
        t["BlockedMaxPool"] = OpDef(infer: { c in
            let x = try blockedShape(c, 0), n = x.count - 3
            guard let kernel = c.node.ints("kernel_shape"), kernel.count == n, kernel.allSatisfy({ $0 > 0 }) else { throw c.invalid("BlockedMaxPool needs kernel_shape for \(n) spatial dims") }
            let (strides, dil, pads) = try window(c, n)
            var out = [x[0], x[1]]
            for i in 0..<n {
                let reach = try Checked.add(try Checked.mul(kernel[i] - 1, dil[i], "the dilated kernel"), 1, "the dilated kernel")
                let span = try Checked.sub(try Checked.sum([x[2 + i], pads[i], pads[n + i]], "the padded input"), reach, "the output size")
                guard span >= 0 else { throw c.fail("the window reaches past the padded input") }
                out.append(span / strides[i] + 1)
            }
            return [tt(.float, out + [blockLanes])]
        }, traits: [.rowIndependent])
        t["BlockedConv"] = OpDef(infer: { c in
            // X is blocked, or planar ([N, C, S...], rank of W) for a one-group convolution of a
            // few channels (a network's stem).
            let w = try c.shape(1), planar = try c.shape(0).count == w.count, channelsLast = c.int("channels_last", 0) != 0
            if channelsLast, !planar { throw c.fail("channels_last describes a planar input, and this one is blocked") }
            // A channels-last planar input [N, S..., C] in NCHW order for the checks below.
            let x = planar ? SofieOps.nchwOrder(try c.shape(0), channelsLast: channelsLast) : try blockedShape(c, 0)
            let n = planar ? x.count - 2 : x.count - 3, group = c.int("group", 1)
            guard n == 1 || n == 2, w.count == n + 2, w[0] > 0, w[1] > 0 else { throw c.fail("the weight \(w) does not fit a \(n)-D convolution") }
            let depthwise = group > 1 && w[1] == 1 && group == w[0]
            if planar, group != 1 || w[1] != x[1] { throw c.fail("a planar input \(x) needs one group of its \(x[1]) channels; the weight is \(w) with group \(group)") }
            // One group; depthwise (group = channels); or groups of whole blocks.
            let fits = planar ? true
                : group == 1 ? blocks(w[1]) == x[1]
                : depthwise ? blocks(group) == x[1]
                : group > 1 && w[1] % blockLanes == 0 && w[0] % (group * blockLanes) == 0 && (try? Checked.mul(group, w[1] / blockLanes)) == x[1]
            guard fits else {
                throw c.fail("the weight \(w) with group \(group) does not fit \(x[1]) input blocks (one group, depthwise with group = channels, or groups of whole blocks)")
            }
            let kernel = c.node.ints("kernel_shape") ?? Array(w[2...])
            let (strides, dil, pads) = try window(c, n)
            guard kernel == Array(w[2...]) else { throw c.fail("kernel_shape \(kernel) disagrees with the weight shape \(w)") }
            if c.has(2), try c.shape(2) != [w[0]] { throw c.fail("bias should have shape [\(w[0])]") }
            var out = [x[0], blocks(w[0])]
            for i in 0..<n {
                let reach = try Checked.add(try Checked.mul(kernel[i] - 1, dil[i], "the dilated kernel"), 1, "the dilated kernel")
                let span = try Checked.sub(try Checked.sum([x[2 + i], pads[i], pads[n + i]], "the padded input"), reach, "the output size")
                guard span >= 0 else { throw c.fail("the kernel reaches past the padded input") }
                out.append(span / strides[i] + 1)
            }
            out.append(blockLanes)
            try checkEpilogue(c, out, zInput: 3)
            return [tt(.float, out)]
        })
        t["BlockedConv"]?.traits = NNOps.table["Conv"]?.traits ?? []
        t["FusedConv"]?.traits = NNOps.table["Conv"]?.traits ?? []
        t["FusedGemm"]?.traits = NNOps.table["Gemm"]?.traits ?? []
        return t
    }

    nonisolated(unsafe) static let definitions: [String: OpDef] = table

    /// The standard ONNX nodes equivalent to one of our nodes (fresh names from `unique`), in order;
    /// the last one produces `y`, the node's output, which the caller has detached from `n`.
    /// nil for nodes of other domains.
    public static func expand(_ n: Node, output y: Value, opset: Int, unique: (String) -> String,
                              constant: (Tensor) -> Value) -> [Node]? {
        guard isSofie(n) else { return nil }
        let base = n.name.isEmpty ? n.opType : n.name
        switch n.opType {
        case "Gelu":
            if opset >= 20 { return [Node(opType: "Gelu", name: n.name, inputs: n.inputs, outputs: [y], attributes: n.attributes)] }
            // 0.5 x (1 + erf(x / sqrt 2)), or the tanh form.
            guard let x = n.input(0) else { return nil }
            let dtype = x.tensorType?.elementType ?? .float
            var nodes: [Node] = []
            func scalar(_ v: Double) -> Value { constant(NDArray(dtype, shape: [], floats: [v]).tensor(name: unique(base + "_c"))) }
            func op(_ type: String, _ ins: [Value], out: Value? = nil) -> Value {
                let v = out ?? Value(name: unique(base + "_" + type.lowercased()))
                nodes.append(Node(opType: type, name: unique(base + "_" + type.lowercased()), inputs: ins, outputs: [v]))
                return v
            }
            let inner: Value
            if n.string("approximate") == "tanh" {
                let x3 = op("Mul", [op("Mul", [x, x]), x])
                let s = op("Add", [x, op("Mul", [x3, scalar(0.044715)])])
                inner = op("Tanh", [op("Mul", [s, scalar(0.7978845608028654)])])
            } else {
                inner = op("Erf", [op("Div", [x, scalar(2.0.squareRoot())])])
            }
            let half = op("Mul", [x, op("Add", [inner, scalar(1)])])
            _ = op("Mul", [half, scalar(0.5)], out: y)
            return nodes
        case "ToBlocked", "FromBlocked", "BlockedConv", "BlockedGlobalAveragePool", "BlockedMaxPool":
            return expandBlocked(n, output: y, opset: opset, unique: unique, constant: constant)
        case "FusedConv", "FusedGemm":
            let core = n.opType == "FusedConv" ? "Conv" : "Gemm"
            let keep = n.attributes.filter { $0.name != "activation" && $0.name != "activation_params" }
            let act = n.string("activation") ?? ""
            let params = n.floats("activation_params") ?? []
            // An activation we do not know, or the wrong number of parameters, has no expansion.
            if !act.isEmpty { guard let names = activations[act], names.count == params.count else { return nil } }
            let z = n.input(3)
            if z == nil && act.isEmpty {
                return [Node(opType: core, name: n.name, inputs: Array(n.inputs.prefix(3)), outputs: [y], attributes: keep)]
            }
            var nodes: [Node] = []
            var cur = Value(name: unique(base + "_" + core.lowercased()))
            nodes.append(Node(opType: core, name: unique(base + "_" + core.lowercased()), inputs: Array(n.inputs.prefix(3)), outputs: [cur], attributes: keep))
            if let z {
                let out = act.isEmpty ? y : Value(name: unique(base + "_residual"))
                nodes.append(Node(opType: "Add", name: unique(base + "_residual"), inputs: [cur, z], outputs: [out]))
                cur = out
            }
            if !act.isEmpty {
                nodes += activationNodes(act, params, input: cur, output: y, dtype: y.tensorType?.elementType ?? .float, base: base,
                                         opset: opset, unique: unique, constant: constant)
            }
            return nodes
        default:
            return nil
        }
    }

    /// The blocked layout's ops as standard ONNX: ToBlocked is a Concat with zeros (to whole
    /// blocks), a Reshape and a Transpose, FromBlocked their inverse and a Slice; the others run
    /// their standard op between the two. nil for shapes not known statically, or opset < 5.
    static func expandBlocked(_ n: Node, output y: Value, opset: Int, unique: (String) -> String, constant: (Tensor) -> Value) -> [Node]? {
        guard opset >= 5, let x = n.input(0), let xs = x.tensorType?.staticShape else { return nil }
        let base = n.name.isEmpty ? n.opType : n.name
        var nodes: [Node] = []
        func ints(_ v: [Int]) -> Value { constant(Tensor(name: unique(base + "_shape"), dataType: .int64, dims: [v.count], values: v.map(Int64.init))) }
        func op(_ type: String, _ ins: [Value], _ attrs: [Attribute] = [], out: Value? = nil) -> Value {
            let v = out ?? Value(name: unique(base + "_" + type.lowercased()))
            nodes.append(Node(opType: type, name: unique(base + "_" + type.lowercased()), inputs: ins, outputs: [v], attributes: attrs))
            return v
        }
        func toBlocked(_ v: Value, _ s: [Int], out: Value?) -> Value {
            let C = s[1], CB = (C + blockLanes - 1) / blockLanes, spatial = Array(s[2...])
            var padded = v
            if CB * blockLanes != C {
                let fill = [s[0], CB * blockLanes - C] + spatial
                let zeros = constant(Tensor(name: unique(base + "_zeros"), dataType: .float, dims: fill, values: [Float](repeating: 0, count: fill.reduce(1, *))))
                padded = op("Concat", [v, zeros], [Attribute("axis", .int(1))])
            }
            let r = op("Reshape", [padded, ints([s[0], CB, blockLanes] + spatial)])
            return op("Transpose", [r], [Attribute("perm", .ints([0, 1] + (0..<spatial.count).map { Int64($0 + 3) } + [2]))], out: out)
        }
        func fromBlocked(_ v: Value, _ s: [Int], channels C: Int, out: Value?) -> Value {
            let spatial = Array(s[2..<(s.count - 1)]), r = s.count
            let t = op("Transpose", [v], [Attribute("perm", .ints([0, 1, Int64(r - 1)] + (2..<(r - 1)).map(Int64.init)))])
            let full = s[1] * blockLanes
            let flat = op("Reshape", [t, ints([s[0], full] + spatial)], out: C == full ? out : nil)
            guard C != full else { return flat }
            if opset >= 10 { return op("Slice", [flat, ints([0]), ints([C]), ints([1])], out: out) }
            return op("Slice", [flat], [Attribute("starts", .ints([0])), Attribute("ends", .ints([Int64(C)])), Attribute("axes", .ints([1]))], out: out)
        }
        switch n.opType {
        case "ToBlocked":
            guard xs.count == 3 || xs.count == 4 else { return nil }
            _ = toBlocked(x, xs, out: y)
        case "FromBlocked":
            guard let C = n.int("channels"), xs.count >= 4 else { return nil }
            _ = fromBlocked(x, xs, channels: C, out: y)
        case "BlockedGlobalAveragePool", "BlockedMaxPool":
            guard xs.count >= 4 else { return nil }
            let full = xs[1] * blockLanes
            let plain = fromBlocked(x, xs, channels: full, out: nil)
            var attrs = n.attributes
            if n.opType == "BlockedMaxPool", (n.ints("dilations") ?? []).allSatisfy({ $0 == 1 }) { attrs.removeAll { $0.name == "dilations" } }
            let pooled = op(n.opType == "BlockedMaxPool" ? "MaxPool" : "GlobalAveragePool", [plain], attrs)
            let ys = [xs[0], full] + (n.opType == "BlockedMaxPool" ? (y.tensorType?.staticShape.map { Array($0[2..<($0.count - 1)]) } ?? []) : [Int](repeating: 1, count: xs.count - 3))
            guard ys.count == xs.count - 1 else { return nil }
            _ = toBlocked(pooled, ys, out: y)
        case "BlockedConv":
            guard let w = n.input(1)?.tensorType?.staticShape, w.count == xs.count - 1 || w.count == xs.count, let ys = y.tensorType?.staticShape else { return nil }
            let group = n.int("group") ?? 1
            let r = xs.count, channelsLast = (n.int("channels_last") ?? 0) != 0
            let plain = w.count != xs.count ? fromBlocked(x, xs, channels: group * w[1], out: nil)
                : channelsLast ? op("Transpose", [x], [Attribute("perm", .ints([0, Int64(r - 1)] + (1..<(r - 1)).map(Int64.init)))]) : x
            let z = n.input(3).flatMap { zv in zv.tensorType?.staticShape.map { fromBlocked(zv, $0, channels: w[0], out: nil) } }
            if n.input(3) != nil && z == nil { return nil }
            let conv = Value(name: unique(base + "_conv"))
            var ins: [Value?] = [plain, n.input(1), n.input(2)]
            if let z { ins.append(z) }
            let fused = Node(opType: "FusedConv", domain: domain, name: unique(base + "_fused"), inputs: ins, outputs: [],
                             attributes: n.attributes.filter { $0.name != "channels_last" })
            defer { fused.removeAllInputs() }
            guard let inner = expand(fused, output: conv, opset: opset, unique: unique, constant: constant) else { return nil }
            nodes += inner
            _ = toBlocked(conv, [ys[0], w[0]] + ys[2..<(ys.count - 1)], out: y)
        default:
            return nil
        }
        return nodes
    }

    /// Standard ONNX nodes computing `act` from `input` into `output`.
    static func activationNodes(_ act: String, _ p: [Float], input x: Value, output y: Value, dtype: DataType, base: String, opset: Int,
                                unique: (String) -> String, constant: (Tensor) -> Value) -> [Node] {
        let name = unique(base + "_" + act.lowercased())
        switch act {
        case "LeakyRelu": return [Node(opType: act, name: name, inputs: [x], outputs: [y], attributes: [Attribute("alpha", .float(p[0]))])]
        case "HardSigmoid":
            return [Node(opType: act, name: name, inputs: [x], outputs: [y], attributes: [Attribute("alpha", .float(p[0])), Attribute("beta", .float(p[1]))])]
        case "Clip":
            // Opset 11 moved Clip's bounds from attributes to inputs.
            if opset < 11 {
                return [Node(opType: "Clip", name: name, inputs: [x], outputs: [y],
                             attributes: [Attribute("min", .float(p[0])), Attribute("max", .float(p[1]))])]
            }
            let bounds = p.map { constant(NDArray(dtype, shape: [], floats: [Double($0)]).tensor(name: unique(base + "_clip_bound"))) }
            return [Node(opType: "Clip", name: name, inputs: [x] + bounds, outputs: [y])]
        case "Gelu":
            let gelu = Node(opType: "Gelu", domain: domain, name: name, inputs: [x], outputs: [])
            defer { gelu.removeAllInputs() }
            return expand(gelu, output: y, opset: opset, unique: unique, constant: constant) ?? []
        case "Swish":
            let s = Value(name: unique(base + "_sigmoid"))
            return [Node(opType: "Sigmoid", name: unique(base + "_sigmoid"), inputs: [x], outputs: [s]),
                    Node(opType: "Mul", name: name, inputs: [x, s], outputs: [y])]
        default:
            return [Node(opType: act, name: name, inputs: [x], outputs: [y])]
        }
    }
}
