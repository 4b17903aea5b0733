import SofieIR

/// Puts chains of float convolutions into the blocked channel layout (NCHW16c, see `SofieOps`):
/// each one-group convolution of at least 16 input channels and each depthwise convolution
/// (multiplier 1) becomes an `org.sofie.BlockedConv` that reads and writes blocked images, and
/// what follows it stays blocked as long as it can: the activations and Add/Sub/Mul that run
/// elementwise on images of the same channels (the squeeze-and-excitation product included),
/// MaxPool, GlobalAveragePool, zero Pad of the spatial axes, Concat of channels (when all but
/// the last input are whole blocks), and the next convolutions. A one-group convolution of
/// fewer than 16 channels (a stem) with at least 16 outputs reads its planar input directly
/// (channels-last when it is a Transpose of one, as Keras models' inputs are) and writes a
/// blocked image. Grouped convolutions are taken when each group is
/// whole blocks. A `ToBlocked` enters a chain and a
/// `FromBlocked` leaves it, once per value whatever the number of readers; a value read both
/// inside and outside a chain is kept in both layouts.
///
/// The lanes past the last real channel of a block hold finite values: zero after ToBlocked,
/// activations of zero after a convolution. Only ops that keep finite values finite are taken
/// into a chain (no Div, Log, Reciprocal), and every blocked weight is zero for those lanes,
/// so they never reach a real channel.
///
/// Run it after fuse-epilogues (activations and residual Adds then travel inside the
/// convolution). It needs static shapes; the C++ backend alone consumes its result.
public struct BlockChannels: GraphPass {
    public let name = "block-channels"
    public let summary = "run chains of float convolutions in the blocked channel layout NCHW16c (org.sofie.BlockedConv, ToBlocked, FromBlocked)"
    public init() {}

    static let lanes = SofieOps.blockLanes
    /// Ops taken into a chain when every image operand is blocked: they map finite values to finite values.
    static let unary: Set<String> = ["Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Identity"]
    static let binary: Set<String> = ["Add", "Sub", "Mul"]

    /// The blocked shape of an image shape [N, C, S...] (S: 1 or 2 dims).
    static func blockedShape(_ s: [Int]) -> [Int] {
        [s[0], (s[1] + lanes - 1) / lanes] + s[2...] + [lanes]
    }

    /// A float image value of static shape [N, C, S...] with 1 or 2 spatial dims.
    static func image(_ v: Value?) -> [Int]? {
        guard let t = v?.tensorType, t.elementType == .float, let s = t.staticShape, s.count == 3 || s.count == 4,
              s.allSatisfy({ $0 > 0 }), v?.runtimeShape == nil else { return nil }
        return s
    }

    /// Whether a Conv or FusedConv becomes a BlockedConv, with its geometry.
    static func convertible(_ n: Node, opset: Int, inputBlocked: Bool = false) -> NNOps.Geometry? {
        guard (n.opType == "Conv" && n.isStandard) || (n.opType == "FusedConv" && SofieOps.isSofie(n)),
              let xs = image(n.input(0)), image(n.output(0)) != nil, let w = n.input(1)?.initializer, w.dataType == .float,
              n.input(2).map({ $0.initializer != nil }) ?? true, n.outputs.count == 1,
              let g = try? NNOps.convGeometry(OpContext(node: n, opset: opset)) else { return nil }
        let C = xs[1], M = g.outputShape[1]
        if g.group == 1 {
            // A few input channels would mostly be zero lanes (the stem's 3): read planar
            // (stem(_:)) when the output has a block's worth of channels, else left to the NCHW
            // kernels, unless the input is blocked already (a squeeze-and-excitation's expansion).
            return C >= lanes || inputBlocked || M >= lanes ? g : nil
        }
        // Depthwise, or groups of whole blocks.
        return (g.group == C && M == C) || ((C / g.group) % lanes == 0 && (M / g.group) % lanes == 0) ? g : nil
    }

    /// Whether a convertible one-group convolution reads its planar input directly (a stem of
    /// fewer channels than a block whose input is not blocked): sofie_rt::conv_planar_blocked.
    static func stem(_ g: NNOps.Geometry, inputBlocked: Bool) -> Bool {
        g.group == 1 && g.inputShape[1] < lanes && !inputBlocked
    }

    /// The channels-last image [N, S..., C] that `x` [N, C, S...] transposes (Transpose with
    /// perm [0, r-1, 1, ..., r-2]), or nil.
    static func channelsLastSource(_ x: Value) -> Value? {
        guard let t = x.producer, t.isStandard, t.opType == "Transpose", let xs = image(x), let src = t.input(0), image(src) != nil else { return nil }
        let r = xs.count
        return t.ints("perm") == [0, r - 1] + Array(1..<(r - 1)) ? src : nil
    }

    /// A standard Pad that adds zeros around the spatial axes only (constant mode, value 0,
    /// constant pads, no axes input): the pads [begin..., end...] of its input's rank, or nil.
    static func zeroSpatialPads(_ n: Node, rank: Int, opset: Int) -> [Int]? {
        guard n.isStandard, n.opType == "Pad", (n.string("mode") ?? "constant") == "constant", n.inputs.count <= 3 else { return nil }
        let pads: [Int]
        if opset < 11 {
            guard let p = n.ints("pads"), (n.float("value") ?? 0) == 0 else { return nil }
            pads = p
        } else {
            guard let t = n.input(1)?.initializer, let a = NDArray(t) else { return nil }
            pads = (0..<a.count).map { Int(a.double($0)) }
            if let c = n.input(2) {
                guard let ct = c.initializer, let ca = NDArray(ct), ca.count == 1, ca.double(0) == 0 else { return nil }
            }
        }
        guard pads.count == 2 * rank, pads.allSatisfy({ $0 >= 0 }), pads[0] == 0, pads[1] == 0, pads[rank] == 0, pads[rank + 1] == 0 else { return nil }
        return pads
    }

    /// A MaxPool (one output, float) as a BlockedMaxPool reading `xb` and writing `yb`, with its
    /// padding explicit and ceil_mode as the end pads that give the same output size; nil when
    /// it has none.
    static func maxPool(_ n: Node, _ xb: Value, yb: Value, opset: Int, name: String) -> Node? {
        guard n.outputs.count == 1, let g = try? NNOps.poolGeometry(OpContext(node: n, opset: opset)), g.kernel.count == 1 || g.kernel.count == 2 else { return nil }
        var padsEnd: [Int] = []
        for i in 0..<g.kernel.count {
            let reach = (g.kernel[i] - 1) * g.dilations[i] + 1, input = g.inputShape[2 + i], out = g.outputShape[2 + i]
            let end = max(0, (out - 1) * g.strides[i] + reach - input - g.padsBegin[i])
            // The floor formula must give the same output size with these pads.
            guard (input + g.padsBegin[i] + end - reach) / g.strides[i] + 1 == out else { return nil }
            padsEnd.append(end)
        }
        let attrs = [Attribute("kernel_shape", .ints(g.kernel.map(Int64.init))), Attribute("strides", .ints(g.strides.map(Int64.init))),
                     Attribute("dilations", .ints(g.dilations.map(Int64.init))), Attribute("pads", .ints((g.padsBegin + padsEnd).map(Int64.init)))]
        return Node(opType: "BlockedMaxPool", domain: SofieOps.domain, name: name, inputs: [xb], outputs: [yb], attributes: attrs)
    }

    /// ReduceMean over all the spatial axes of an image of rank `rank`, with this keepdims (Keras'
    /// squeeze-and-excitation pooling): a GlobalAveragePool.
    static func isSpatialMean(_ n: Node, rank: Int, keepdims: Int) -> Bool {
        guard n.opType == "ReduceMean", (n.int("keepdims") ?? 1) == keepdims, (n.int("noop_with_empty_axes") ?? 0) == 0 else { return false }
        let axes = n.ints("axes") ?? n.input(1)?.initializer.flatMap(NDArray.init).map { a in (0..<a.count).map { Int(a.double($0)) } }
        guard let axes else { return false }
        return Set(axes.map { $0 < 0 ? $0 + rank : $0 }) == Set(2..<rank)
    }

    /// The producer of `v`, looking through reshapes (which keep the order of the elements).
    static func throughReshapes(_ v: Value?) -> Node? {
        var p = v?.producer
        while let n = p, n.isStandard, ["Reshape", "Flatten", "Squeeze", "Unsqueeze"].contains(n.opType) { p = n.input(0)?.producer }
        return p
    }

    public func run(_ model: Model) throws -> Bool {
        let g = model.graph
        let opset = model.onnxOpset ?? 21
        guard g.nodes.contains(where: { Self.convertible($0, opset: opset) != nil }) else { return false }
        var taken = Set(g.definedValues.map(\.name))
        var twin: [ObjectIdentifier: Value] = [:]  // an image value -> the same image blocked
        var twins = Set<ObjectIdentifier>()        // the blocked values
        let outputs = Set(g.outputs.map(ObjectIdentifier.init))

        func newValue(_ base: String, _ shape: [Int]) -> Value {
            let v = Value(name: g.uniqueName(base, taken: &taken))
            v.tensorType = TensorType(.float, fixed: shape)
            return v
        }
        /// The blocked twin of `v`, made by a ToBlocked inserted before `node` when there is none.
        func blocked(_ v: Value, before node: Node) -> Value {
            if let b = twin[ObjectIdentifier(v)] { return b }
            let b = newValue(v.name + "_blocked", Self.blockedShape(Self.image(v)!))
            let to = Node(opType: "ToBlocked", domain: SofieOps.domain, name: g.uniqueName(v.name + "_to_blocked", taken: &taken), inputs: [v], outputs: [b])
            g.insertNode(to, at: g.nodes.firstIndex { $0 === node }!)
            twin[ObjectIdentifier(v)] = b
            twins.insert(ObjectIdentifier(b))
            return b
        }
        /// Replaces `node` by `blockedNode` (already computing y's twin `yb`) and a FromBlocked
        /// that gives y to its other readers.
        func replace(_ node: Node, with blockedNode: Node, output y: Value, twin yb: Value) {
            let at = g.nodes.firstIndex { $0 === node }!
            node.removeAllOutputs()
            let from = Node(opType: "FromBlocked", domain: SofieOps.domain, name: g.uniqueName(y.name + "_from_blocked", taken: &taken),
                            inputs: [yb], outputs: [y], attributes: [Attribute("channels", .int(Int64(Self.image(y)![1])))])
            g.insertNode(blockedNode, at: at)
            g.insertNode(from, at: at + 1)
            g.removeNodes([ObjectIdentifier(node)])
            twin[ObjectIdentifier(y)] = yb
            twins.insert(ObjectIdentifier(yb))
        }

        var changed = false
        for n in g.nodes {
            guard let y = n.output(0), let ys = Self.image(y) else { continue }
            if let geo = Self.convertible(n, opset: opset, inputBlocked: n.input(0).map { twin[ObjectIdentifier($0)] != nil } ?? false) {
                let planar = Self.stem(geo, inputBlocked: twin[ObjectIdentifier(n.input(0)!)] != nil)
                // A stem reading a channels-last image through a Transpose (Keras) reads it directly.
                let channelsLast = planar ? Self.channelsLastSource(n.input(0)!) : nil
                let xb = channelsLast ?? (planar ? n.input(0)! : blocked(n.input(0)!, before: n))
                let z = SofieOps.isSofie(n) ? n.input(3) : nil
                let zb = z.map { blocked($0, before: n) }
                let yb = newValue(y.name + "_blocked", Self.blockedShape(ys))
                var attrs = n.attributes.filter { !["auto_pad", "pads", "strides", "dilations", "kernel_shape", "group"].contains($0.name) }
                attrs += [Attribute("kernel_shape", .ints(geo.kernel.map(Int64.init))), Attribute("strides", .ints(geo.strides.map(Int64.init))),
                          Attribute("dilations", .ints(geo.dilations.map(Int64.init))),
                          Attribute("pads", .ints((geo.padsBegin + geo.padsEnd).map(Int64.init))), Attribute("group", .int(Int64(geo.group)))]
                if channelsLast != nil { attrs.append(Attribute("channels_last", .int(1))) }
                var inputs: [Value?] = [xb, n.input(1), n.input(2)]
                if let zb { inputs.append(zb) }
                while let l = inputs.last, l == nil { inputs.removeLast() }
                let conv = Node(opType: "BlockedConv", domain: SofieOps.domain, name: g.uniqueName((n.name.isEmpty ? "conv" : n.name) + "_blocked", taken: &taken),
                                inputs: inputs, outputs: [yb], attributes: attrs)
                replace(n, with: conv, output: y, twin: yb)
                changed = true
                continue
            }
            guard n.isStandard, n.outputs.count == 1 else { continue }
            if n.opType == "MaxPool", let x = n.input(0), let xb = twin[ObjectIdentifier(x)], let pool = Self.maxPool(n, xb, yb: newValue(y.name + "_blocked", Self.blockedShape(ys)), opset: opset, name: g.uniqueName((n.name.isEmpty ? "pool" : n.name) + "_blocked", taken: &taken)) {
                replace(n, with: pool, output: y, twin: pool.output(0)!)
                continue
            }
            // Zeros around a blocked image (ResNet's padding before its first pooling): the same
            // Pad on the blocked twin, nothing added on the lane axis.
            if let x = n.input(0), let xb = twin[ObjectIdentifier(x)], let pads = Self.zeroSpatialPads(n, rank: ys.count, opset: opset) {
                let r = ys.count
                let blockedPads = Array(pads[0..<r]) + [0] + Array(pads[r...]) + [0]
                let yb = newValue(y.name + "_blocked", Self.blockedShape(ys))
                let name = g.uniqueName((n.name.isEmpty ? "pad" : n.name) + "_blocked", taken: &taken)
                let pad: Node
                if opset < 11 {
                    pad = Node(opType: "Pad", name: name, inputs: [xb], outputs: [yb], attributes: [Attribute("pads", .ints(blockedPads.map(Int64.init)))])
                } else {
                    let padsValue = g.addConstant(Tensor(dataType: .int64, dims: [2 * (r + 1)], values: blockedPads.map(Int64.init)), name: y.name + "_blocked_pads", taken: &taken)
                    pad = Node(opType: "Pad", name: name, inputs: [xb, padsValue], outputs: [yb])
                }
                replace(n, with: pad, output: y, twin: yb)
                continue
            }
            // Concat of channels: blocked when every input but the last has whole blocks.
            if n.opType == "Concat", let axis = n.int("axis"), axis == 1 || axis == 1 - ys.count, n.inputs.count > 0,
               let xs = n.inputs.map({ $0.flatMap { twin[ObjectIdentifier($0)] } }) as? [Value],
               n.inputs.dropLast().allSatisfy({ Self.image($0).map { $0[1] % Self.lanes == 0 } ?? false }) {
                let yb = newValue(y.name + "_blocked", Self.blockedShape(ys))
                let cat = Node(opType: "Concat", name: g.uniqueName((n.name.isEmpty ? "concat" : n.name) + "_blocked", taken: &taken),
                               inputs: xs, outputs: [yb], attributes: [Attribute("axis", .int(1))])
                replace(n, with: cat, output: y, twin: yb)
                continue
            }
            // ReduceMean without keepdims, reshaped (once or more) to [N, C, 1, 1] (Keras'
            // GlobalAveragePooling2D and Reshape in a squeeze-and-excitation block): one blocked pooling.
            if n.opType == "Reshape", ys[2...].allSatisfy({ $0 == 1 }), let mean = Self.throughReshapes(n.input(0)), mean.opType == "ReduceMean", mean.isStandard,
               let x = mean.input(0), let xs = Self.image(x), xs.count == ys.count, xs[0] == ys[0], xs[1] == ys[1],
               Self.isSpatialMean(mean, rank: xs.count, keepdims: 0), let xb = twin[ObjectIdentifier(x)] {
                let yb = newValue(y.name + "_blocked", Self.blockedShape(ys))
                let pool = Node(opType: "BlockedGlobalAveragePool", domain: SofieOps.domain, name: g.uniqueName((mean.name.isEmpty ? "pool" : mean.name) + "_blocked", taken: &taken),
                                inputs: [xb], outputs: [yb])
                replace(n, with: pool, output: y, twin: yb)
                continue
            }
            if n.opType == "GlobalAveragePool" || Self.isSpatialMean(n, rank: ys.count, keepdims: 1), let x = n.input(0), let xb = twin[ObjectIdentifier(x)] {
                let yb = newValue(y.name + "_blocked", Self.blockedShape(ys))
                let pool = Node(opType: "BlockedGlobalAveragePool", domain: SofieOps.domain, name: g.uniqueName((n.name.isEmpty ? "pool" : n.name) + "_blocked", taken: &taken),
                                inputs: [xb], outputs: [yb])
                replace(n, with: pool, output: y, twin: yb)
                continue
            }
            guard Self.unary.contains(n.opType) || Self.binary.contains(n.opType) else { continue }
            // Image operands (of y's channels, broadcasting to y) must all be blocked already; the
            // others must be single constants (Clip's bounds, a scalar factor).
            var inputs: [Value?] = []
            var ok = true
            for (i, v) in n.inputs.enumerated() {
                guard let v else { inputs.append(nil); continue }
                if let b = twin[ObjectIdentifier(v)], let s = Self.image(v), s.count == ys.count, s[1] == ys[1] {
                    inputs.append(b)
                } else if Self.binary.contains(n.opType), let s = Self.image(v), s.count == ys.count, s[1] == ys[1], s[2...].allSatisfy({ $0 == 1 }) {
                    // One value per channel (a squeeze-and-excitation's scale): cheap to block here.
                    inputs.append(blocked(v, before: n))
                } else if (i > 0 || Self.binary.contains(n.opType)), let t = v.initializer, t.dims.reduce(1, *) == 1, t.dims.count <= 1 {
                    inputs.append(v)
                } else {
                    ok = false
                    break
                }
            }
            guard ok, inputs.contains(where: { v in v.map { twins.contains(ObjectIdentifier($0)) } ?? false }) else { continue }
            let yb = newValue(y.name + "_blocked", Self.blockedShape(ys))
            let op = Node(opType: n.opType, domain: n.domain, name: g.uniqueName((n.name.isEmpty ? n.opType : n.name) + "_blocked", taken: &taken),
                          inputs: inputs, outputs: [yb], attributes: n.attributes)
            replace(n, with: op, output: y, twin: yb)
        }
        // FromBlocked nodes nobody reads (the chain's inner values).
        var dead = Set<ObjectIdentifier>()
        for n in g.nodes where n.opType == "FromBlocked" && SofieOps.isSofie(n) {
            if let y = n.output(0), y.uses.isEmpty, !outputs.contains(ObjectIdentifier(y)) { dead.insert(ObjectIdentifier(n)) }
        }
        g.removeNodes(dead)
        if changed, !model.opsetImports.contains(where: { $0.domain == SofieOps.domain }) {
            model.opsetImports.append(OpsetImport(domain: SofieOps.domain, version: SofieOps.version))
        }
        return changed
    }
}
