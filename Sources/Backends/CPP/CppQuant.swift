import Foundation
import SofieIR

/// Linear quantization ops, with ONNX's reference arithmetic: QuantizeLinear divides in the
/// scale's precision (float32 unless both are float16/double), rounds half to even and
/// saturates; DequantizeLinear computes (x - zero point) * scale in float32 (double for a
/// double scale); the integer products accumulate in int32 and QLinearMatMul requantizes with
/// a_scale * b_scale / y_scale.
enum CppQuant {
    /// The element as a number of type `compute` (float or double).
    static func value(_ t: CTensor, _ index: String, _ compute: String) -> String {
        CppNumberTypes.name(t.dtype) != nil ? "static_cast<\(compute)>(sofie::to_double(\(t.ptr)[\(index)]))" : "static_cast<\(compute)>(\(t.ptr)[\(index)])"
    }

    /// Loops over x's elements as (outer, axis, inner) with `si` the scale's index.
    static func granularLoops(_ e: EmitContext, _ g: QuantOps.Granularity, _ body: () -> Void) {
        e.line("for (int64_t o = 0; o < \(g.outer); ++o) for (int64_t a = 0; a < \(g.axisLen); ++a) for (int64_t k = 0; k < \(g.inner); ++k) {")
        e.line("    const int64_t i = (o * \(g.axisLen) + a) * \(g.inner) + k;")
        e.line("    const int64_t si = o * \(g.outerStride) + (a / \(g.block)) * \(g.axisStride) + k * \(g.innerStride);")
        e.line("    (void)si;")
        body()
        e.line("}")
    }

    /// The values of the sub-byte integer types (stored one per byte).
    static func subByteRange(_ t: DataType) -> (Int, Int)? {
        switch t {
        case .int4: return (-8, 7)
        case .uint4: return (0, 15)
        case .int2: return (-2, 1)
        case .uint2: return (0, 3)
        default: return nil
        }
    }

    static func range(_ t: DataType) -> (Int, Int)? {
        if let r = subByteRange(t) { return r }
        switch t {
        case .int8: return (-128, 127)
        case .uint8: return (0, 255)
        case .int16: return (-32768, 32767)
        case .uint16: return (0, 65535)
        default: return nil
        }
    }

    /// C++ batched integer matrix product over broadcast leading axes: calls `body(aBase,
    /// bBase, yBase)` lines inside loops with `M`, `N`, `K`.
    static func batchedMatmul(_ e: EmitContext, a: [Int], b: [Int], y: [Int], _ body: (String, String, String, Int, Int, Int) -> Void) {
        let a2 = a.count == 1 ? [1] + a : a, b2 = b.count == 1 ? b + [1] : b
        let M = a2[a2.count - 2], K = a2[a2.count - 1], N = b2[b2.count - 1]
        let batch = broadcastShapes(Array(a2.dropLast(2)), Array(b2.dropLast(2))) ?? []
        let stA = EmitContext.broadcastStrides(Array(a2.dropLast(2)), batch).map { $0 * M * K }
        let stB = EmitContext.broadcastStrides(Array(b2.dropLast(2)), batch).map { $0 * K * N }
        let ost = NDArray.strides(batch).map { $0 * M * N }
        e.loops(batch, prefix: "b") { v in
            body(EmitContext.offset(v, stA), EmitContext.offset(v, stB), EmitContext.offset(v, ost), M, N, K)
        }
    }

    /// The C++ lines summing (a - za)(b - zb) over k into `acc` in 64 bits (wrapped to int32 by
    /// the caller: the spec lets int32 accumulation overflow, C++ signed overflow may not).
    static func integerDot(_ e: EmitContext, a: String, b: String, k: Int) {
        e.line("    int64_t acc = 0;")
        e.line("    for (int64_t k = 0; k < \(k); ++k) acc += (static_cast<int64_t>(\(a)) - za) * (static_cast<int64_t>(\(b)) - zb);")
    }

    /// ConvInteger (int32 sums of (x - zx)(w - zw)) and QLinearConv (those sums plus the int32
    /// bias, requantized with x_scale * w_scale / y_scale): direct loops over up to 3 spatial
    /// dimensions; padding contributes nothing, as x - zx = 0 there.
    static func integerConv(_ e: EmitContext, _ n: Node, quantized: Bool) throws {
        let c = OpContext(node: n, opset: e.opset)
        let g = try NNOps.convGeometry(c, weight: quantized ? 3 : 1, bias: quantized ? 8 : nil)
        let x = try e.input(n, 0), w = try e.input(n, quantized ? 3 : 1), y = try e.output(n, 0)
        let xz = try e.optionalInput(n, 2), wz = try e.optionalInput(n, quantized ? 5 : 3)
        let r = g.kernel.count
        guard r <= 3 else { throw CompileError(node: n, "\(n.opType) over \(r) spatial dimensions is not supported (1 to 3 are)") }
        func pad3(_ v: [Int], _ fill: Int) -> [Int] { [Int](repeating: fill, count: 3 - r) + v }
        let inS = pad3(Array(g.inputShape[2...]), 1), outS = pad3(Array(g.outputShape[2...]), 1), k = pad3(g.kernel, 1)
        let st = pad3(g.strides, 1), dl = pad3(g.dilations, 1), pb = pad3(g.padsBegin, 0)
        let N = g.inputShape[0], C = g.inputShape[1], M = g.outputShape[1], G = g.group, cg = C / G, mg = M / G
        let inPlane = inS.reduce(1, *), outPlane = outS.reduce(1, *), kSize = cg * k.reduce(1, *)
        func at(_ t: CTensor?, _ i: String) -> String { t.map { "static_cast<int64_t>(\($0.ptr)[\($0.count == 1 ? "0" : i)])" } ?? "0" }
        var requant: [String]
        if quantized {
            let xs = try e.input(n, 1), ws = try e.input(n, 4), ys = try e.input(n, 6), yz = try e.optionalInput(n, 7)
            let b = try e.optionalInput(n, 8)
            guard let (lo, hi) = range(y.dtype) else { throw CompileError(node: n, "QLinearConv to \(y.dtype) is not supported") }
            requant = b.map { ["        acc += static_cast<int64_t>(\($0.ptr)[m]);"] } ?? []
            requant += [
                "        const float mult = \(value(xs, "0", "float")) * \(value(ws, ws.count == 1 ? "0" : "m", "float")) / \(value(ys, "0", "float"));",
                "        const float r = std::nearbyint(static_cast<float>(static_cast<int32_t>(static_cast<uint32_t>(acc))) * mult + static_cast<float>(\(at(yz, "0"))));",
                "        y[o] = static_cast<\(y.ctype)>(r > \(lo) ? (r < \(hi) ? r : \(hi)) : \(lo));  // NaN -> low end",
            ]
        } else {
            requant = ["        y[o] = static_cast<int32_t>(static_cast<uint32_t>(acc));  // int32 sums may wrap (the spec allows it)"]
        }
        e.block {
            e.line("const \(x.ctype)* const x = \(x.ptr); const \(w.ctype)* const w = \(w.ptr); \(y.ctype)* const y = \(y.ptr);")
            e.line("const int64_t zx = \(at(xz, "0"));")
            e.line("for (int64_t b = 0; b < \(N); ++b) for (int64_t m = 0; m < \(M); ++m) {")
            e.line("    const int64_t gr = m / \(mg), zw = \(at(wz, "m"));")
            e.line("    for (int64_t od = 0; od < \(outS[0]); ++od) for (int64_t oh = 0; oh < \(outS[1]); ++oh) for (int64_t ow = 0; ow < \(outS[2]); ++ow) {")
            e.line("        int64_t acc = 0;")
            e.line("        for (int64_t ci = 0; ci < \(cg); ++ci) {")
            e.line("            const \(x.ctype)* const xp = x + (b * \(C) + gr * \(cg) + ci) * \(inPlane);")
            e.line("            const \(w.ctype)* const wp = w + m * \(kSize) + ci * \(k.reduce(1, *));")
            e.line("            for (int64_t kd = 0; kd < \(k[0]); ++kd) { const int64_t id = od * \(st[0]) - \(pb[0]) + kd * \(dl[0]); if (id < 0 || id >= \(inS[0])) continue;")
            e.line("            for (int64_t kh = 0; kh < \(k[1]); ++kh) { const int64_t ih = oh * \(st[1]) - \(pb[1]) + kh * \(dl[1]); if (ih < 0 || ih >= \(inS[1])) continue;")
            e.line("            for (int64_t kw = 0; kw < \(k[2]); ++kw) { const int64_t iw = ow * \(st[2]) - \(pb[2]) + kw * \(dl[2]); if (iw < 0 || iw >= \(inS[2])) continue;")
            e.line("                acc += (static_cast<int64_t>(xp[(id * \(inS[1]) + ih) * \(inS[2]) + iw]) - zx) * (static_cast<int64_t>(wp[(kd * \(k[1]) + kh) * \(k[2]) + kw]) - zw);")
            e.line("            } } }")
            e.line("        }")
            e.line("        const int64_t o = (b * \(M) + m) * \(outPlane) + (od * \(outS[1]) + oh) * \(outS[2]) + ow;")
            for l in requant { e.line(l) }
            e.line("    }")
            e.line("}")
        }
    }

    static let table: [String: CppOps.Emit] = [
        "QuantizeLinear": { e, n in
            let x = try e.input(n, 0), s = try e.input(n, 1), zp = try e.optionalInput(n, 2), y = try e.output(n, 0)
            let g = try QuantOps.granularity(OpContext(node: n, opset: e.opset), x: x.shape, scale: s.shape)
            let compute = x.dtype == .double || s.dtype == .double ? "double" : "float"
            // float16 x over a float16 scale divides in float16 (numpy's float16 / float16).
            let roundQuotient = x.dtype.isReducedFloat && x.dtype == s.dtype && n.int("precision") == nil
            // Per tensor, float in, integer out (the QDQ activations of quantized CNNs): one flat
            // loop the compiler vectorizes; clamping in floating point sends NaN to the low end,
            // as the reference's int32 conversion does.
            if g.outer == x.count, !roundQuotient, CppNumberTypes.name(x.dtype) == nil, CppNumberTypes.name(s.dtype) == nil, let (lo, hi) = range(y.dtype) {
                e.block {
                    e.line("const \(compute) scale = \(value(s, "0", compute)), zero = \(zp.map { value($0, "0", compute) } ?? "0");")
                    e.line("const \(x.ctype)* const x = \(x.ptr); \(y.ctype)* const y = \(y.ptr);")
                    e.line("for (int64_t i = 0; i < \(x.count); ++i) {")
                    e.line("    \(compute) r = std::nearbyint(static_cast<\(compute)>(x[i]) / scale) + zero;")
                    e.line("    r = r > \(lo) ? r : \(lo);")
                    e.line("    r = r < \(hi) ? r : \(hi);")
                    e.line("    y[i] = static_cast<\(y.ctype)>(r);")
                    e.line("}")
                }
                return
            }
            e.block {
                granularLoops(e, g) {
                    var q = "\(value(x, "i", compute)) / \(value(s, "si", compute))"
                    if roundQuotient { q = "static_cast<\(compute)>(sofie::to_double(sofie::from_double<\(x.ctype)>(\(q))))" }
                    e.line("    const \(compute) q = \(q);")
                    if let (lo, hi) = range(y.dtype) {
                        let z = zp.map { " + static_cast<int64_t>(\($0.ptr)[si])" } ?? ""
                        // Bounded before the integer conversion; NaN goes to the low end (the reference's INT_MIN, clipped).
                        e.line("    const \(compute) qc = q > \(compute)(1e9) ? \(compute)(1e9) : (q > \(compute)(-1e9) ? q : \(compute)(-1e9));")
                        e.line("    int64_t r = static_cast<int64_t>(std::nearbyint(qc))\(z);")
                        e.line("    \(y.ptr)[i] = static_cast<\(y.ctype)>(r < \(lo) ? \(lo) : (r > \(hi) ? \(hi) : r));")
                    } else {
                        // float8: the quotient rounded to the type (the zero point, 0 for float8, is not
                        // added); float4e2m1 adds it, as ONNX's reference does (so -0 + 0 is +0).
                        let z = y.dtype == .float4e2m1 ? zp.map { " + \(value($0, "si", compute))" } ?? "" : ""
                        e.line("    \(y.ptr)[i] = sofie::from_double<\(y.ctype)>(static_cast<double>(q\(z)), \((n.int("saturate") ?? 1) != 0));")
                    }
                }
            }
        },
        "DequantizeLinear": { e, n in
            let x = try e.input(n, 0), s = try e.input(n, 1), zp = try e.optionalInput(n, 2), y = try e.output(n, 0)
            let g = try QuantOps.granularity(OpContext(node: n, opset: e.opset), x: x.shape, scale: s.shape)
            let compute = s.dtype == .double || y.dtype == .double ? "double" : "float"
            let float8 = CppNumberTypes.name(x.dtype) != nil
            if g.outer == x.count, !float8, CppNumberTypes.name(y.dtype) == nil, CppNumberTypes.name(s.dtype) == nil {
                e.block {
                    e.line("const \(compute) scale = \(value(s, "0", compute)), zero = \(zp.map { value($0, "0", compute) } ?? "0");")
                    e.line("const \(x.ctype)* const x = \(x.ptr); \(y.ctype)* const y = \(y.ptr);")
                    e.line("for (int64_t i = 0; i < \(x.count); ++i) y[i] = static_cast<\(y.ctype)>((static_cast<\(compute)>(x[i]) - zero) * scale);")
                }
                return
            }
            e.block {
                granularLoops(e, g) {
                    let d = zp != nil && !float8 ? "(\(value(x, "i", compute)) - \(value(zp!, "si", compute)))" : value(x, "i", compute)
                    let v = "\(d) * \(value(s, "si", compute))"
                    if CppNumberTypes.name(y.dtype) != nil {
                        e.line("    \(y.ptr)[i] = sofie::from_double<\(y.ctype)>(static_cast<double>(\(v)));")
                    } else {
                        e.line("    \(y.ptr)[i] = static_cast<\(y.ctype)>(\(v));")
                    }
                }
            }
        },
        "DynamicQuantizeLinear": { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            let scaleOut = n.outputs.count > 1 ? try n.output(1).map { try e.tensor($0) } : nil
            let zpOut = n.outputs.count > 2 ? try n.output(2).map { try e.tensor($0) } : nil
            e.block {
                // The range always includes 0; scale = range / 255, zero point = saturate(rint(-min / scale)).
                e.line("float lo = 0.0f, hi = 0.0f;")
                e.line("for (int64_t i = 0; i < \(x.count); ++i) { lo = std::min(lo, \(x.ptr)[i]); hi = std::max(hi, \(x.ptr)[i]); }")
                e.line("const float scale = (hi - lo) / 255.0f;")
                e.line("const float zf = scale == 0.0f ? 0.0f : std::nearbyint(std::min(255.0f, std::max(0.0f, 0.0f - lo / scale)));")
                e.line("const uint8_t zp = static_cast<uint8_t>(zf);")
                e.line("for (int64_t i = 0; i < \(x.count); ++i) {")
                e.line("    const float q = scale == 0.0f ? 0.0f : std::nearbyint(\(x.ptr)[i] / scale) + zf;")
                e.line("    \(y.ptr)[i] = static_cast<uint8_t>(q > 0.0f ? (q < 255.0f ? q : 255.0f) : 0.0f);  // NaN -> 0")
                e.line("}")
                if let scaleOut { e.line("\(scaleOut.ptr)[0] = scale;") }
                if let zpOut { e.line("\(zpOut.ptr)[0] = zp;") }
            }
        },
        "MatMulInteger": { e, n in
            let a = try e.input(n, 0), b = try e.input(n, 1), y = try e.output(n, 0)
            let az = try e.optionalInput(n, 2), bz = try e.optionalInput(n, 3)
            guard (az?.count ?? 1) == 1, (bz?.count ?? 1) == 1 else {
                throw CompileError(node: n, "per-row/per-column zero points are not supported (scalar zero points are)")
            }
            e.block {
                e.line("const int32_t za = \(az.map { "static_cast<int32_t>(\($0.ptr)[0])" } ?? "0"), zb = \(bz.map { "static_cast<int32_t>(\($0.ptr)[0])" } ?? "0");")
                batchedMatmul(e, a: a.shape, b: b.shape, y: y.shape) { oa, ob, oy, M, N, K in
                    e.line("for (int64_t m = 0; m < \(M); ++m) for (int64_t j = 0; j < \(N); ++j) {")
                    integerDot(e, a: "\(a.ptr)[\(oa) + m * \(K) + k]", b: "\(b.ptr)[\(ob) + k * \(N) + j]", k: K)
                    e.line("    \(y.ptr)[\(oy) + m * \(N) + j] = static_cast<int32_t>(static_cast<uint32_t>(acc));")
                    e.line("}")
                }
            }
        },
        "ConvInteger": { e, n in try integerConv(e, n, quantized: false) },
        "QLinearConv": { e, n in try integerConv(e, n, quantized: true) },
        "QLinearMatMul": { e, n in
            let a = try e.input(n, 0), aS = try e.input(n, 1), aZ = try e.input(n, 2)
            let b = try e.input(n, 3), bS = try e.input(n, 4), bZ = try e.input(n, 5)
            let yS = try e.input(n, 6), yZ = try e.input(n, 7), y = try e.output(n, 0)
            guard let (lo, hi) = range(y.dtype) else { throw CompileError(node: n, "QLinearMatMul to \(y.dtype) is not supported") }
            let M = a.shape.count == 1 ? 1 : a.shape[a.shape.count - 2], N = b.shape.count == 1 ? 1 : b.shape[b.shape.count - 1]
            // Scales and zero points: one, or one per row of a / per column of b.
            for (t, per, what) in [(aS, M, "a_scale"), (aZ, M, "a_zero_point"), (bS, N, "b_scale"), (bZ, N, "b_zero_point"), (yS, 1, "y_scale"), (yZ, 1, "y_zero_point")]
            where t.count != 1 && t.count != per {
                throw CompileError(node: n, "\(what) has \(t.count) elements; one, or one per \(per == M ? "row of a" : "column of b") (\(per)), is supported")
            }
            func at(_ t: CTensor, _ i: String) -> String { t.count == 1 ? "0" : i }
            e.block {
                batchedMatmul(e, a: a.shape, b: b.shape, y: y.shape) { oa, ob, oy, M, N, K in
                    e.line("for (int64_t m = 0; m < \(M); ++m) for (int64_t j = 0; j < \(N); ++j) {")
                    e.line("    const int32_t za = static_cast<int32_t>(\(aZ.ptr)[\(at(aZ, "m"))]), zb = static_cast<int32_t>(\(bZ.ptr)[\(at(bZ, "j"))]);")
                    integerDot(e, a: "\(a.ptr)[\(oa) + m * \(K) + k]", b: "\(b.ptr)[\(ob) + k * \(N) + j]", k: K)
                    e.line("    const float mult = \(value(aS, at(aS, "m"), "float")) * \(value(bS, at(bS, "j"), "float")) / \(value(yS, "0", "float"));")
                    e.line("    const float r = std::nearbyint(static_cast<float>(static_cast<int32_t>(static_cast<uint32_t>(acc))) * mult + static_cast<float>(\(yZ.ptr)[0]));")
                    e.line("    \(y.ptr)[\(oy) + m * \(N) + j] = static_cast<\(y.ctype)>(r > \(lo) ? (r < \(hi) ? r : \(hi)) : \(lo));  // NaN -> low end")
                    e.line("}")
                }
            }
        },
    ]
}
