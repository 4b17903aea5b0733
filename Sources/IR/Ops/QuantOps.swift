/// Linear quantization: QuantizeLinear and DequantizeLinear (per tensor, per axis, blocked),
/// DynamicQuantizeLinear, MatMulInteger and QLinearMatMul.
public enum QuantOps {
    /// How a scale (and zero point) tensor spreads over x: x's flat index i = (o * axisLen + a)
    /// * inner + k reads the scale at o * outerStride + (a / block) * axisStride + k * innerStride.
    public struct Granularity: Equatable {
        public var axisLen = 1, inner = 1, outer = 1, block = 1
        public var outerStride = 0, axisStride = 0, innerStride = 0
    }

    /// The granularity a scale of `scale` shape gives over an x of `x` shape (per tensor: a
    /// scalar or one element; per axis: 1-D of x's axis length; blocked: x's shape with
    /// ceil(D/block) on the axis).
    public static func granularity(_ c: OpContext, x: [Int], scale: [Int]) throws -> Granularity {
        var g = Granularity()
        let count = scale.reduce(1, *)
        if scale.isEmpty || (scale.count == 1 && count == 1 && c.int("block_size", 0) <= 0) {
            g.outer = x.reduce(1, *)
            return g
        }
        let axis = try c.axis(c.int("axis", 1), rank: x.count)
        g.axisLen = x[axis]
        g.outer = x[..<axis].reduce(1, *)
        g.inner = x[(axis + 1)...].reduce(1, *)
        let block = c.int("block_size", 0)
        if block <= 0 {
            guard scale.count == 1, scale[0] == x[axis] else {
                throw c.invalid("a per-axis scale must be 1-D of length \(x[axis]) (axis \(axis) of \(x)), not \(scale)")
            }
            g.axisStride = 1
            return g
        }
        let blocks = x[axis] / block + (x[axis] % block == 0 ? 0 : 1)  // no overflow for a hostile block_size
        var want = x
        want[axis] = blocks
        guard scale == want else { throw c.invalid("a blocked scale (block_size \(block) on axis \(axis)) must have the shape \(want), not \(scale)") }
        g.block = block
        g.innerStride = 1
        g.axisStride = g.inner
        g.outerStride = blocks * g.inner
        return g
    }

    /// Output element type of QuantizeLinear: output_dtype, else the zero point's, else uint8.
    static func quantizedType(_ c: OpContext) throws -> DataType {
        if c.has(2) {
            let zt = try c.dtype(2)
            if let o = c.node.int("output_dtype"), o != 0, o != Int(zt.rawValue) {
                throw c.invalid("output_dtype \(o) differs from the zero point's type \(zt)")
            }
            return zt
        }
        if let o = c.node.int("output_dtype"), o != 0, let code = Int32(exactly: o), let dt = DataType(rawValue: code) { return dt }
        return .uint8
    }

    /// The zero point has the scale's shape (a one-element one may be [] or [1] either way).
    static func checkZeroPoint(_ c: OpContext) throws {
        guard c.has(2) else { return }
        let z = try c.shape(2), s = try c.shape(1)
        if z != s && !(z.reduce(1, *) == 1 && s.reduce(1, *) == 1 && z.count <= 1 && s.count <= 1) {
            throw c.invalid("the zero point's shape \(z) differs from the scale's \(s)")
        }
    }

    static let quantizable: Set<DataType> = [.int8, .uint8, .int16, .uint16, .int4, .uint4, .int2, .uint2,
                                             .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .float4e2m1]

    static let table: [String: OpDef] = [
        "QuantizeLinear": OpDef(infer: { c in
            let x = try c.shape(0)
            _ = try granularity(c, x: x, scale: try c.shape(1))
            try checkZeroPoint(c)
            let dt = try quantizedType(c)
            guard quantizable.contains(dt) else { throw c.fail("quantizing to \(dt) is not supported (int8/uint8/int16/uint16/int4/uint4/int2/uint2, float8 and float4e2m1 are)") }
            return [tt(dt, x)]
        }),
        "DequantizeLinear": OpDef(infer: { c in
            let x = try c.shape(0)
            _ = try granularity(c, x: x, scale: try c.shape(1))
            try checkZeroPoint(c)
            let xt = try c.dtype(0)
            guard quantizable.contains(xt) || xt == .int32 else { throw c.fail("dequantizing \(xt) is not supported (int8/uint8/int16/uint16/int32/int4/uint4/int2/uint2, float8 and float4e2m1 are)") }
            var out = try c.dtype(1)
            if let o = c.node.int("output_dtype"), o != 0, let code = Int32(exactly: o), let dt = DataType(rawValue: code) { out = dt }
            return [tt(out, x)]
        }, evaluate: { c, a in
            // Constant weights are dequantized once, at compile time (the QDQ format's
            // DequantizeLinear of an int8 initializer), in float32 as the op computes.
            let x = a[0]!, s = a[1]!, z = a.count > 2 ? a[2] : nil
            let g = try granularity(c, x: x.shape, scale: s.shape)
            let out = try c.infer()[0].elementType
            var values = [Double](repeating: 0, count: x.count)
            for o in 0..<g.outer {
                for ax in 0..<g.axisLen {
                    for k in 0..<g.inner {
                        let i = (o * g.axisLen + ax) * g.inner + k
                        let si = o * g.outerStride + (ax / g.block) * g.axisStride + k * g.innerStride
                        let d = Float(x.double(i)) - Float(z?.double(si) ?? 0)
                        values[i] = out == .double ? (x.double(i) - (z?.double(si) ?? 0)) * s.double(si) : Double(d * Float(s.double(si)))
                    }
                }
            }
            return [NDArray.make(out, shape: x.shape, values)]
        }),
        "DynamicQuantizeLinear": OpDef(infer: { c in
            guard try c.dtype(0) == .float else { throw c.fail("x must be float32") }
            return [tt(.uint8, try c.shape(0)), tt(.float, []), tt(.uint8, [])]
        }),
        "MatMulInteger": OpDef(infer: { c in
            [tt(.int32, try NNOps.matmulShape(c, try c.shape(0), try c.shape(1)))]
        }),
        "ConvInteger": OpDef(infer: { c in
            guard c.int("group", 1) >= 1 else { throw c.invalid("group must be positive") }
            return [tt(.int32, try NNOps.convGeometry(c, weight: 1, bias: nil).outputShape)]
        }, traits: .convolution),
        "QLinearConv": OpDef(infer: { c in
            let g = try NNOps.convGeometry(c, weight: 3, bias: 8)
            let oc = g.outputShape[1]
            for (i, what) in [(4, "w_scale"), (5, "w_zero_point")] where c.has(i) {
                let n = try c.shape(i).reduce(1, *)
                guard n == 1 || n == oc else { throw c.invalid("\(what) has \(n) elements; one, or one per output channel (\(oc))") }
            }
            return [tt(try c.dtype(7), g.outputShape)]
        }, traits: .convolution),
        "QLinearMatMul": OpDef(infer: { c in
            [tt(try c.dtype(7), try NNOps.matmulShape(c, try c.shape(0), try c.shape(3)))]
        }),
    ]
}
