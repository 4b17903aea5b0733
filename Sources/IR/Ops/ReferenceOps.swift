import Foundation

/// Reference semantics of the compute-heavy ops that constant folding does not evaluate (it
/// would only cost compile time), for `sofie verify` without Python: straightforward loops in
/// double precision over NDArray, written from ONNX's operator documentation and independent
/// of the emitted C++ kernels. They read output shapes from shape inference (the node's
/// output types), so run it first. `definitions` falls back to OpRegistry's evaluators.
public enum ReferenceOps {
    public typealias Evaluate = OpDef.Evaluate

    /// The evaluator for a node: a reference op here, else constant folding's.
    public static func evaluator(for node: Node) -> Evaluate? {
        if node.isStandard, let e = table[node.opType] { return e }
        return OpRegistry.definition(for: node)?.evaluate
    }

    static func outShape(_ c: OpContext, _ k: Int = 0) throws -> [Int] {
        guard let s = c.node.output(k)?.tensorType?.staticShape else { throw c.fail("output \(k) has no static shape (run shape inference first)") }
        return s
    }

    static func float(_ dt: DataType, _ shape: [Int], _ v: [Double]) -> NDArray { NDArray.make(dt, shape: shape, v) }

    static let table: [String: Evaluate] = {
        var t: [String: Evaluate] = [:]
        t["MatMul"] = { c, a in [try matmul(a[0]!, a[1]!, c)] }
        t["Gemm"] = { c, a in
            let (x, w) = (a[0]!, a[1]!)
            let ta = c.int("transA", 0) == 1, tb = c.int("transB", 0) == 1
            let m = ta ? x.shape[1] : x.shape[0], k = ta ? x.shape[0] : x.shape[1], n = tb ? w.shape[0] : w.shape[1]
            let alpha = Double(c.float("alpha", 1)), beta = Double(c.float("beta", 1))
            var y = [Double](repeating: 0, count: m * n)
            for i in 0..<m {
                for j in 0..<n {
                    var s = 0.0
                    for p in 0..<k { s += x.double(ta ? p * m + i : i * k + p) * w.double(tb ? j * k + p : p * n + j) }
                    y[i * n + j] = alpha * s
                }
            }
            if a.count > 2, let bias = a[2] {
                let b = try broadcastTo(bias, [m, n], c)
                for i in y.indices { y[i] += beta * b[i] }
            }
            return [float(x.dataType, [m, n], y)]
        }
        t["Conv"] = { c, a in [try conv(c, a[0]!, a[1]!, a.count > 2 ? a[2] : nil)] }
        t["ConvTranspose"] = { c, a in [try convTranspose(c, a[0]!, a[1]!, a.count > 2 ? a[2] : nil)] }
        t["MaxPool"] = { c, a in [try pool(c, a[0]!, max: true)] }
        t["AveragePool"] = { c, a in [try pool(c, a[0]!, max: false)] }
        t["GlobalAveragePool"] = { c, a in [global(a[0]!, max: false)] }
        t["GlobalMaxPool"] = { c, a in [global(a[0]!, max: true)] }
        t["BatchNormalization"] = { c, a in
            let (x, s, b, mean, v) = (a[0]!, a[1]!, a[2]!, a[3]!, a[4]!)
            let eps = Double(c.float("epsilon", 1e-5))
            let ch = x.shape.count > 1 ? x.shape[1] : 1, inner = x.shape.count > 2 ? x.shape[2...].reduce(1, *) : 1
            var y = [Double](repeating: 0, count: x.count)
            for i in 0..<x.count {
                let k = (i / inner) % ch
                y[i] = (x.double(i) - mean.double(k)) / (v.double(k) + eps).squareRoot() * s.double(k) + b.double(k)
            }
            return [float(x.dataType, x.shape, y)]
        }
        t["LayerNormalization"] = { c, a in
            let x = a[0]!
            let axis = try c.axis(c.int("axis", -1), rank: x.shape.count)
            let inner = x.shape[axis...].reduce(1, *), eps = Double(c.float("epsilon", 1e-5))
            let scale = try broadcastTo(a[1]!, Array(x.shape[axis...]), c)
            let bias = a.count > 2 && a[2] != nil ? try broadcastTo(a[2]!, Array(x.shape[axis...]), c) : [Double](repeating: 0, count: inner)
            var y = [Double](repeating: 0, count: x.count)
            for r in 0..<(x.count / max(inner, 1)) {
                let base = r * inner
                let mean = (0..<inner).reduce(0.0) { $0 + x.double(base + $1) } / Double(inner)
                let variance = (0..<inner).reduce(0.0) { let d = x.double(base + $1) - mean; return $0 + d * d } / Double(inner)
                for i in 0..<inner { y[base + i] = (x.double(base + i) - mean) / (variance + eps).squareRoot() * scale[i] + bias[i] }
            }
            return [float(x.dataType, x.shape, y)]
        }
        t["GroupNormalization"] = { c, a in
            let (x, scale, bias) = (a[0]!, a[1]!, a[2]!)
            let groups = c.int("num_groups", 1), eps = Double(c.float("epsilon", 1e-5))
            let n = x.shape[0], ch = x.shape[1], inner = x.shape[2...].reduce(1, *)
            guard groups >= 1, ch % groups == 0 else { throw c.fail("num_groups \(groups) does not divide the channels \(ch)") }
            let per = ch / groups * inner
            var y = [Double](repeating: 0, count: x.count)
            for b in 0..<n {
                for g in 0..<groups {
                    let base = (b * ch + g * (ch / groups)) * inner
                    let mean = (0..<per).reduce(0.0) { $0 + x.double(base + $1) } / Double(per)
                    let variance = (0..<per).reduce(0.0) { let d = x.double(base + $1) - mean; return $0 + d * d } / Double(per)
                    for i in 0..<per {
                        let channel = g * (ch / groups) + i / inner
                        // Opset 18 scales per group, opset 21 per channel.
                        let k = scale.count == ch ? channel : g
                        y[base + i] = (x.double(base + i) - mean) / (variance + eps).squareRoot() * scale.double(k) + bias.double(k)
                    }
                }
            }
            return [float(x.dataType, x.shape, y)]
        }
        for op in ["Softmax", "LogSoftmax"] {
            t[op] = { c, a in
                let x = a[0]!
                let r = x.shape.count
                let axis = try c.axis(c.int("axis", c.opset >= 13 ? -1 : 1), rank: r)
                // Opset 13+: along one axis; before: over the flattened trailing axes.
                let len = c.opset >= 13 ? x.shape[axis] : x.shape[axis...].reduce(1, *)
                let inner = c.opset >= 13 ? x.shape[(axis + 1)...].reduce(1, *) : 1
                let outer = x.count / max(len * inner, 1)
                var y = [Double](repeating: 0, count: x.count)
                for o in 0..<outer {
                    for i in 0..<inner {
                        let idx = (0..<len).map { o * len * inner + $0 * inner + i }
                        let m = idx.map { x.double($0) }.max() ?? 0
                        let s = idx.reduce(0.0) { $0 + exp(x.double($1) - m) }
                        for j in idx { y[j] = op == "Softmax" ? exp(x.double(j) - m) / s : x.double(j) - m - log(s) }
                    }
                }
                return [float(x.dataType, x.shape, y)]
            }
        }
        for op in ["ReduceMean", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"] {
            t[op] = { c, a in
                let x = a[0]!
                let (axes, out) = try ReductionOps.reduceAxes(c)
                let targets = ReductionOps.targets(x.shape, axes: axes)
                var sums = [Double](repeating: 0, count: out.reduce(1, *))
                var maxima = [Double](repeating: -.infinity, count: sums.count)
                for (i, o) in targets.enumerated() {
                    let v = x.double(i)
                    switch op {
                    case "ReduceL1": sums[o] += abs(v)
                    case "ReduceL2", "ReduceSumSquare": sums[o] += v * v
                    case "ReduceLogSumExp": maxima[o] = max(maxima[o], v)
                    default: sums[o] += v
                    }
                }
                if op == "ReduceLogSumExp" {
                    for (i, o) in targets.enumerated() { sums[o] += exp(x.double(i) - maxima[o]) }
                }
                let n = Double(axes.reduce(1) { $0 * x.shape[$1] })
                let y: [Double] = sums.indices.map { k in
                    switch op {
                    case "ReduceMean": return sums[k] / n
                    case "ReduceL2": return sums[k].squareRoot()
                    case "ReduceLogSum": return log(sums[k])
                    case "ReduceLogSumExp": return maxima[k] + log(sums[k])
                    default: return sums[k]
                    }
                }
                return [float(x.dataType, out, y)]
            }
        }
        t["Pad"] = { c, a in
            let x = a[0]!
            let p = try ShapeOps.padParams(c)
            let value = a.count > 2 && a[2] != nil ? a[2]!.double(0) : 0
            let xs = NDArray.strides(x.shape)
            var y: [Double] = []
            y.reserveCapacity(p.shape.reduce(1, *))
            forEachIndex(p.shape) { idx in
                var off = 0, inside = true
                for d in idx.indices {
                    var j = idx[d] - p.begins[d]
                    let n = x.shape[d]
                    if j < 0 || j >= n {
                        switch p.mode {
                        case "edge": j = min(max(j, 0), n - 1)
                        case "reflect": while j < 0 || j >= n { j = j < 0 ? -j : 2 * (n - 1) - j }
                        case "wrap": j = ((j % n) + n) % n
                        default: inside = false
                        }
                    }
                    off += j * xs[d]
                }
                y.append(inside ? x.double(off) : value)
            }
            return [float(x.dataType, p.shape, y)]
        }
        t["Resize"] = { c, a in [try resize(c, a[0]!)] }
        t["GatherElements"] = { c, a in
            let (x, ind) = (a[0]!, a[1]!)
            let axis = try c.axis(c.int("axis", 0), rank: x.shape.count)
            let xs = NDArray.strides(x.shape)
            var idx: [Int] = []
            var k = 0
            var bad: Int64? = nil
            forEachIndex(ind.shape) { i in
                var j = ind.int(k)
                if j < 0 { j += Int64(x.shape[axis]) }
                if j < 0 || j >= Int64(x.shape[axis]) { bad = ind.int(k); j = 0 }
                var off = 0
                for d in i.indices { off += (d == axis ? Int(j) : i[d]) * xs[d] }
                idx.append(off)
                k += 1
            }
            if let bad { throw c.fail("index \(bad) is out of range for axis \(axis) of size \(x.shape[axis])") }
            return [x.gathered(idx, shape: ind.shape)]
        }
        t["ScatterElements"] = { c, a in
            let (x, ind, upd) = (a[0]!, a[1]!, a[2]!)
            let axis = try c.axis(c.int("axis", 0), rank: x.shape.count)
            let reduction = c.node.string("reduction") ?? "none"
            let xs = NDArray.strides(x.shape)
            var y = (0..<x.count).map { x.double($0) }
            var k = 0
            var bad: Int64? = nil
            forEachIndex(ind.shape) { i in
                var j = ind.int(k)
                if j < 0 { j += Int64(x.shape[axis]) }
                if j < 0 || j >= Int64(x.shape[axis]) { bad = ind.int(k); k += 1; return }
                var off = 0
                for d in i.indices { off += (d == axis ? Int(j) : i[d]) * xs[d] }
                let u = upd.double(k)
                switch reduction {
                case "add": y[off] += u
                case "mul": y[off] *= u
                case "max": y[off] = max(y[off], u)
                case "min": y[off] = min(y[off], u)
                default: y[off] = u
                }
                k += 1
            }
            if let bad { throw c.fail("index \(bad) is out of range for axis \(axis) of size \(x.shape[axis])") }
            return [x.isFloat ? float(x.dataType, x.shape, y) : NDArray(x.dataType, shape: x.shape, ints: y.map { Int64($0) })]
        }
        t["PRelu"] = { c, a in
            let x = a[0]!
            let slope = try broadcastTo(a[1]!, x.shape, c)
            return [float(x.dataType, x.shape, (0..<x.count).map { x.double($0) >= 0 ? x.double($0) : x.double($0) * slope[$0] })]
        }
        for op in ["LSTM", "GRU", "RNN"] { t[op] = { c, a in try recurrent(op, c, a) } }
        t["Scatter"] = t["ScatterElements"]
        return t
    }()

    /// `b` broadcast to `shape` (numpy rules), as Doubles in row-major order.
    static func broadcastTo(_ b: NDArray, _ shape: [Int], _ c: OpContext) throws -> [Double] {
        guard b.shape.count <= shape.count, broadcastShapes(b.shape, shape) == shape else { throw c.fail("cannot broadcast \(b.shape) to \(shape)") }
        return broadcastIndices(b.shape, to: shape).map { b.double($0) }
    }

    static func matmul(_ x: NDArray, _ w: NDArray, _ c: OpContext) throws -> NDArray {
        let xs = x.shape.count == 1 ? [1] + x.shape : x.shape, ws = w.shape.count == 1 ? w.shape + [1] : w.shape
        let m = xs[xs.count - 2], k = xs[xs.count - 1], n = ws[ws.count - 1]
        guard ws[ws.count - 2] == k else { throw c.fail("inner dimensions \(k) and \(ws[ws.count - 2]) differ") }
        let out = try outShape(c)
        let batchShape = Array(out.prefix(max(0, out.count - (x.shape.count == 1 || w.shape.count == 1 ? 1 : 2))))
        let lead = max(xs.count, ws.count) - 2
        let bshape = x.shape.count == 1 || w.shape.count == 1 ? Array(batchShape.prefix(lead)) : batchShape
        func offsets(_ s: [Int]) -> [Int] {
            let own = Array(s.dropLast(2)), strides = NDArray.strides(own)
            var st = [Int](repeating: 0, count: bshape.count)
            for q in 0..<own.count where own[own.count - 1 - q] != 1 { st[bshape.count - 1 - q] = strides[own.count - 1 - q] }
            return indexGrid(bshape, st)
        }
        let xo = offsets(xs), wo = offsets(ws)
        var y = [Double](repeating: 0, count: bshape.reduce(1, *) * m * n)
        for b in 0..<bshape.reduce(1, *) {
            for i in 0..<m {
                for j in 0..<n {
                    var s = 0.0
                    for p in 0..<k { s += x.double((xo[b] * m + i) * k + p) * w.double((wo[b] * k + p) * n + j) }
                    y[(b * m + i) * n + j] = s
                }
            }
        }
        return float(x.dataType, out, y)
    }

    static func conv(_ c: OpContext, _ x: NDArray, _ w: NDArray, _ bias: NDArray?) throws -> NDArray {
        // Strides, dilations, padding and output size as shape inference resolved them.
        let g = try NNOps.convGeometry(c)
        let out = g.outputShape, group = g.group
        let (nb, ci) = (x.shape[0], x.shape[1]), co = w.shape[0], cig = w.shape[1], cog = co / group
        let inS = Array(x.shape[2...]), k = g.kernel, outS = Array(out[2...])
        let (st, dl, pb) = (g.strides, g.dilations, g.padsBegin)
        let xs = NDArray.strides(inS), ks = k.reduce(1, *), insz = inS.reduce(1, *), outsz = outS.reduce(1, *)
        var kidx: [[Int]] = []
        forEachIndex(k) { kidx.append($0) }
        var oidx: [[Int]] = []
        forEachIndex(outS) { oidx.append($0) }
        var y = [Double](repeating: 0, count: out.reduce(1, *))
        for b in 0..<nb {
            for oc in 0..<co {
                let g = oc / cog
                for (op, o) in oidx.enumerated() {
                    var s = bias.map { $0.double(oc) } ?? 0
                    for icg in 0..<cig {
                        let ic = g * cig + icg
                        for (kp, kk) in kidx.enumerated() {
                            var off = 0, inside = true
                            for d in 0..<k.count {
                                let p = o[d] * st[d] + kk[d] * dl[d] - pb[d]
                                if p < 0 || p >= inS[d] { inside = false; break }
                                off += p * xs[d]
                            }
                            if inside { s += x.double((b * ci + ic) * insz + off) * w.double((oc * cig + icg) * ks + kp) }
                        }
                    }
                    y[(b * co + oc) * outsz + op] = s
                }
            }
        }
        return float(x.dataType, out, y)
    }

    static func convTranspose(_ c: OpContext, _ x: NDArray, _ w: NDArray, _ bias: NDArray?) throws -> NDArray {
        // Padding (from pads, auto_pad or output_shape) and output size as shape inference resolved them.
        let g = try NNOps.convTransposeGeometry(c)
        let out = g.outputShape, group = g.group
        let (nb, ci) = (x.shape[0], x.shape[1]), cog = w.shape[1], co = cog * group, cig = ci / group
        let inS = Array(x.shape[2...]), k = g.kernel, outS = Array(out[2...])
        let (st, dl, pb) = (g.strides, g.dilations, g.padsBegin)
        let os = NDArray.strides(outS), ks = k.reduce(1, *), insz = inS.reduce(1, *), outsz = outS.reduce(1, *)
        var kidx: [[Int]] = []
        forEachIndex(k) { kidx.append($0) }
        var iidx: [[Int]] = []
        forEachIndex(inS) { iidx.append($0) }
        var y = [Double](repeating: 0, count: out.reduce(1, *))
        for b in 0..<nb {
            for ic in 0..<ci {
                let g = ic / cig
                for (ip, i) in iidx.enumerated() {
                    let v = x.double((b * ci + ic) * insz + ip)
                    for ocg in 0..<cog {
                        let oc = g * cog + ocg
                        for (kp, kk) in kidx.enumerated() {
                            var off = 0, inside = true
                            for d in 0..<k.count {
                                let p = i[d] * st[d] + kk[d] * dl[d] - pb[d]
                                if p < 0 || p >= outS[d] { inside = false; break }
                                off += p * os[d]
                            }
                            if inside { y[(b * co + oc) * outsz + off] += v * w.double((ic * cog + ocg) * ks + kp) }
                        }
                    }
                }
            }
        }
        if let bias { for i in y.indices { y[i] += bias.double((i / outsz) % co) } }
        return float(x.dataType, out, y)
    }

    static func pool(_ c: OpContext, _ x: NDArray, max isMax: Bool) throws -> NDArray {
        let g = try NNOps.poolGeometry(c)
        let out = g.outputShape, k = g.kernel
        let inS = Array(x.shape[2...]), outS = Array(out[2...])
        let (st, dl, pb) = (g.strides, g.dilations, g.padsBegin)
        let countPad = c.int("count_include_pad", 0) == 1
        let xs = NDArray.strides(inS), insz = inS.reduce(1, *), outsz = outS.reduce(1, *)
        var kidx: [[Int]] = []
        forEachIndex(k) { kidx.append($0) }
        var oidx: [[Int]] = []
        forEachIndex(outS) { oidx.append($0) }
        var y = [Double](repeating: 0, count: out.reduce(1, *))
        for plane in 0..<(x.shape[0] * x.shape[1]) {
            for (op, o) in oidx.enumerated() {
                var best = -Double.infinity, sum = 0.0, n = 0, padded = 0
                for kk in kidx {
                    var off = 0, inside = true, inPadded = true
                    for d in 0..<k.count {
                        let p = o[d] * st[d] + kk[d] * dl[d] - pb[d]
                        if p < -g.padsBegin[d] || p >= inS[d] + g.padsEnd[d] { inPadded = false }
                        if p < 0 || p >= inS[d] { inside = false }
                        off += p * xs[d]
                    }
                    if inPadded { padded += 1 }
                    if inside {
                        let v = x.double(plane * insz + off)
                        best = max(best, v)
                        sum += v
                        n += 1
                    }
                }
                y[plane * outsz + op] = isMax ? best : sum / Double(countPad ? padded : max(n, 1))
            }
        }
        return float(x.dataType, out, y)
    }

    static func global(_ x: NDArray, max isMax: Bool) -> NDArray {
        let inner = x.shape[2...].reduce(1, *), planes = x.shape[0] * x.shape[1]
        let y = (0..<planes).map { p -> Double in
            let vals = (0..<inner).map { x.double(p * inner + $0) }
            return isMax ? (vals.max() ?? 0) : vals.reduce(0, +) / Double(inner)
        }
        return float(x.dataType, [x.shape[0], x.shape[1]] + [Int](repeating: 1, count: x.shape.count - 2), y)
    }

    /// Resize: nearest (every rounding rule) and linear (N-linear), every coordinate
    /// transformation except tf_crop_and_resize; cubic and antialias are not written.
    static func resize(_ c: OpContext, _ x: NDArray) throws -> NDArray {
        let out = try outShape(c)
        let mode = c.node.string("mode") ?? "nearest"
        guard mode == "nearest" || mode == "linear" else { throw c.fail("the reference Resize has no '\(mode)' mode") }
        guard c.int("antialias", 0) == 0 else { throw c.fail("the reference Resize has no antialias") }
        let ctm = c.node.string("coordinate_transformation_mode") ?? "half_pixel"
        let nearestMode = c.node.string("nearest_mode") ?? "round_prefer_floor"
        var scales = [Double](repeating: 0, count: out.count)
        let given = c.has(2) ? c.constant(2) : nil
        for d in 0..<out.count {
            if let g = given, g.count == out.count, c.node.input(3) == nil || c.constant(3)?.count == 0 { scales[d] = g.double(d) } else { scales[d] = Double(out[d]) / Double(x.shape[d]) }
        }
        func source(_ o: Int, _ d: Int) -> Double {
            let s = scales[d], inLen = Double(x.shape[d]), outLen = Double(out[d])
            switch ctm {
            case "asymmetric": return Double(o) / s
            case "align_corners": return outLen == 1 ? 0 : Double(o) * (inLen - 1) / (outLen - 1)
            case "pytorch_half_pixel": return outLen > 1 ? (Double(o) + 0.5) / s - 0.5 : 0
            case "half_pixel_symmetric":
                let adj = outLen / (s * inLen), center = inLen / 2, offset = center * (1 - adj)
                return offset + (Double(o) + 0.5) / s - 0.5
            default: return (Double(o) + 0.5) / s - 0.5
            }
        }
        let xs = NDArray.strides(x.shape)
        var y: [Double] = []
        y.reserveCapacity(out.reduce(1, *))
        forEachIndex(out) { o in
            if mode == "nearest" {
                var off = 0
                for d in o.indices {
                    let s = source(o[d], d)
                    var i: Int
                    switch nearestMode {
                    case "floor": i = Int(s.rounded(.down))
                    case "ceil": i = Int(s.rounded(.up))
                    case "round_prefer_ceil": i = Int((s).rounded(.toNearestOrAwayFromZero)); if s == s.rounded(.down) + 0.5 { i = Int(s.rounded(.up)) }
                    default: i = s == s.rounded(.down) + 0.5 ? Int(s.rounded(.down)) : Int(s.rounded())
                    }
                    off += min(max(i, 0), x.shape[d] - 1) * xs[d]
                }
                y.append(x.double(off))
            } else {
                // N-linear: the weighted sum over the 2^r corners.
                var lo = [Int](), hi = [Int](), frac = [Double]()
                for d in o.indices {
                    let s = min(max(source(o[d], d), 0), Double(x.shape[d] - 1))
                    let l = Int(s.rounded(.down))
                    lo.append(l); hi.append(min(l + 1, x.shape[d] - 1)); frac.append(s - Double(l))
                }
                var v = 0.0
                for corner in 0..<(1 << o.count) {
                    var w = 1.0, off = 0
                    for d in o.indices {
                        let up = corner >> d & 1 == 1
                        w *= up ? frac[d] : 1 - frac[d]
                        off += (up ? hi[d] : lo[d]) * xs[d]
                    }
                    if w != 0 { v += w * x.double(off) }
                }
                y.append(v)
            }
        }
        return float(x.dataType, out, y)
    }

    /// LSTM, GRU and RNN as ONNX defines them (activations with their alpha/beta; forward,
    /// reverse and bidirectional; optional bias, initial states, peepholes; layout 0 and 1).
    static func recurrent(_ op: String, _ c: OpContext, _ a: [NDArray?]) throws -> [NDArray] {
        // Activations per direction: f (gates), g (candidate), h (output; LSTM only).
        let perDirection = op == "LSTM" ? 3 : (op == "GRU" ? 2 : 1)
        let defaults = op == "LSTM" ? ["Sigmoid", "Tanh", "Tanh"] : (op == "GRU" ? ["Sigmoid", "Tanh"] : ["Tanh"])
        var names = defaults + defaults
        var alphas: [Float?] = [nil, nil, nil, nil, nil, nil], betas = alphas
        if case .strings(let given)? = c.node.attribute("activations") {
            names = given.map { String(decoding: $0, as: UTF8.self) }
            let al = c.node.floats("activation_alpha") ?? [], be = c.node.floats("activation_beta") ?? []
            alphas = names.indices.map { $0 < al.count ? al[$0] : nil }
            betas = names.indices.map { $0 < be.count ? be[$0] : nil }
        }
        func activation(_ k: Int) throws -> (Double) -> Double {
            guard k < names.count else { throw c.fail("activations lists \(names.count) functions, \(op) needs \(perDirection) per direction") }
            let a = alphas.indices.contains(k) ? alphas[k] : nil, b = betas.indices.contains(k) ? betas[k] : nil
            switch names[k] {
            case "Sigmoid": return { 1 / (1 + exp(-$0)) }
            case "Tanh": return { tanh($0) }
            case "Relu": return { max($0, 0) }
            case "HardSigmoid":
                let (al, bt) = (Double(a ?? 0.2), Double(b ?? 0.5))
                return { max(0, min(1, al * $0 + bt)) }
            case "LeakyRelu": let al = Double(a ?? 0.01); return { $0 >= 0 ? $0 : al * $0 }
            case "Elu": let al = Double(a ?? 1); return { $0 >= 0 ? $0 : al * (exp($0) - 1) }
            case "Softsign": return { $0 / (1 + abs($0)) }
            case "Softplus": return { log1p(exp($0)) }
            case "Affine": let (al, bt) = (Double(a ?? 1), Double(b ?? 0)); return { al * $0 + bt }
            case "ScaledTanh": let (al, bt) = (Double(a ?? 1), Double(b ?? 1)); return { al * tanh(bt * $0) }
            case "ThresholdedRelu": let al = Double(a ?? 1); return { $0 > al ? $0 : 0 }
            default: throw c.fail("the reference \(op) has no activation '\(names[k])'")
            }
        }
        guard c.node.float("clip") == nil else { throw c.fail("the reference \(op) has no clip") }
        let layout = c.int("layout", 0)
        var x = a[0]!
        if layout == 1 { x = transpose01(x) }  // [batch, seq, in] -> [seq, batch, in]
        let (seq, batch, input) = (x.shape[0], x.shape[1], x.shape[2])
        let w = a[1]!, r = a[2]!
        let dirs = w.shape[0], gates = op == "LSTM" ? 4 : (op == "GRU" ? 3 : 1), hidden = w.shape[1] / gates
        let bias = a.count > 3 ? a[3] : nil
        guard a.count <= 4 || a[4] == nil else { throw c.fail("the reference \(op) has no sequence_lens") }
        var h0 = a.count > 5 ? a[5] : nil, c0 = op == "LSTM" && a.count > 6 ? a[6] : nil
        let peep = op == "LSTM" && a.count > 7 ? a[7] : nil
        if layout == 1 { h0 = h0.map(transpose01); c0 = c0.map(transpose01) }
        let linearBeforeReset = c.int("linear_before_reset", 0) == 1
        let direction = c.node.string("direction") ?? "forward"
        var ys = [Double](repeating: 0, count: seq * dirs * batch * hidden)
        var yh = [Double](repeating: 0, count: dirs * batch * hidden), yc = yh
        for dir in 0..<dirs {
            let reverse = direction == "reverse" || (direction == "bidirectional" && dir == 1)
            let f = try activation(dir * perDirection), gAct = try activation(dir * perDirection + min(1, perDirection - 1))
            let hAct = perDirection == 3 ? try activation(dir * perDirection + 2) : gAct
            let sig = f
            var h = (0..<(batch * hidden)).map { h0?.double(dir * batch * hidden + $0) ?? 0 }
            var cell = (0..<(batch * hidden)).map { c0?.double(dir * batch * hidden + $0) ?? 0 }
            func W(_ g: Int, _ j: Int, _ i: Int) -> Double { w.double((dir * gates * hidden + g * hidden + j) * input + i) }
            func R(_ g: Int, _ j: Int, _ i: Int) -> Double { r.double((dir * gates * hidden + g * hidden + j) * hidden + i) }
            func Wb(_ g: Int, _ j: Int) -> Double { bias?.double(dir * 2 * gates * hidden + g * hidden + j) ?? 0 }
            func Rb(_ g: Int, _ j: Int) -> Double { bias?.double(dir * 2 * gates * hidden + gates * hidden + g * hidden + j) ?? 0 }
            for step in 0..<seq {
                let t = reverse ? seq - 1 - step : step
                var nh = h, nc = cell
                for b in 0..<batch {
                    // Per gate and unit: x·W + Wb and h·R (without Rb).
                    var xw = [[Double]](repeating: [Double](repeating: 0, count: hidden), count: gates), hr = xw
                    for g in 0..<gates {
                        for j in 0..<hidden {
                            xw[g][j] = (0..<input).reduce(Wb(g, j)) { $0 + x.double((t * batch + b) * input + $1) * W(g, j, $1) }
                            hr[g][j] = (0..<hidden).reduce(0.0) { $0 + h[b * hidden + $1] * R(g, j, $1) }
                        }
                    }
                    switch op {
                    case "LSTM":  // gates i, o, f, c
                        for j in 0..<hidden {
                            let p = { (k: Int) in peep?.double(dir * 3 * hidden + k * hidden + j) ?? 0 }
                            let cPrev = cell[b * hidden + j]
                            let i = sig(xw[0][j] + hr[0][j] + Rb(0, j) + p(0) * cPrev)
                            let f = sig(xw[2][j] + hr[2][j] + Rb(2, j) + p(2) * cPrev)
                            let g = gAct(xw[3][j] + hr[3][j] + Rb(3, j))
                            let cNew = f * cPrev + i * g
                            let o = sig(xw[1][j] + hr[1][j] + Rb(1, j) + p(1) * cNew)
                            nc[b * hidden + j] = cNew
                            nh[b * hidden + j] = o * hAct(cNew)
                        }
                    case "GRU":  // gates z, r, h
                        let z = (0..<hidden).map { sig(xw[0][$0] + hr[0][$0] + Rb(0, $0)) }
                        let rr = (0..<hidden).map { sig(xw[1][$0] + hr[1][$0] + Rb(1, $0)) }
                        for j in 0..<hidden {
                            let cand: Double
                            if linearBeforeReset {
                                cand = gAct(xw[2][j] + rr[j] * (hr[2][j] + Rb(2, j)))
                            } else {
                                let rh = (0..<hidden).reduce(0.0) { $0 + rr[$1] * h[b * hidden + $1] * R(2, j, $1) }
                                cand = gAct(xw[2][j] + rh + Rb(2, j))
                            }
                            nh[b * hidden + j] = (1 - z[j]) * cand + z[j] * h[b * hidden + j]
                        }
                    default:
                        for j in 0..<hidden { nh[b * hidden + j] = f(xw[0][j] + hr[0][j] + Rb(0, j)) }
                    }
                }
                h = nh
                cell = nc
                for i in 0..<(batch * hidden) { ys[(t * dirs + dir) * batch * hidden + i] = h[i] }
            }
            for i in 0..<(batch * hidden) { yh[dir * batch * hidden + i] = h[i]; yc[dir * batch * hidden + i] = cell[i] }
        }
        var results: [NDArray] = []
        let dt = x.dataType
        let yArr = float(dt, [seq, dirs, batch, hidden], ys)
        let hArr = float(dt, [dirs, batch, hidden], yh), cArr = float(dt, [dirs, batch, hidden], yc)
        if layout == 1 {
            // Y [batch, seq, dirs, hidden]; states [batch, dirs, hidden].
            var yl = [Double](repeating: 0, count: ys.count)
            for t in 0..<seq { for d in 0..<dirs { for b in 0..<batch { for j in 0..<hidden {
                yl[((b * seq + t) * dirs + d) * hidden + j] = ys[((t * dirs + d) * batch + b) * hidden + j]
            } } } }
            results = [float(dt, [batch, seq, dirs, hidden], yl), transpose01(hArr), transpose01(cArr)]
        } else {
            results = [yArr, hArr, cArr]
        }
        return Array(results.prefix(c.node.outputs.count))
    }

    static func transpose01(_ x: NDArray) -> NDArray {
        let (p, q) = (x.shape[0], x.shape[1]), inner = x.shape[2...].reduce(1, *)
        var v = [Double](repeating: 0, count: x.count)
        for i in 0..<p { for j in 0..<q { for k in 0..<inner { v[(j * p + i) * inner + k] = x.double((i * q + j) * inner + k) } } }
        return float(x.dataType, [q, p] + x.shape[2...], v)
    }
}
