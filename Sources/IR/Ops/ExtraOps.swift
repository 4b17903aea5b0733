/// Losses, further normalizations, cumulative and index ops: shape and type rules.
public enum ExtraOps {
    public static var table: [String: OpDef] {
        var t: [String: OpDef] = [:]
        t["NegativeLogLikelihoodLoss"] = OpDef(infer: { c in
            let x = try c.shape(0), target = try c.shape(1)
            guard x.count >= 2, target == [x[0]] + Array(x[2...]) else { throw c.fail("target shape \(target) does not fit input \(x)") }
            let red = c.node.string("reduction") ?? "mean"
            return [tt(try c.dtype(0), red == "none" ? target : [])]
        })
        t["SoftmaxCrossEntropyLoss"] = OpDef(infer: { c in
            let x = try c.shape(0), target = try c.shape(1)
            guard x.count >= 2, target == [x[0]] + Array(x[2...]) else { throw c.fail("labels shape \(target) does not fit scores \(x)") }
            let red = c.node.string("reduction") ?? "mean"
            var outs = [tt(try c.dtype(0), red == "none" ? target : [])]
            if c.node.outputs.count > 1 { outs.append(tt(try c.dtype(0), x)) }
            return outs
        })
        for op in ["RMSNormalization", "LpNormalization", "MeanVarianceNormalization", "GroupNormalization"] {
            t[op] = OpDef(infer: { c in [tt(try c.dtype(0), try c.shape(0))] })
        }
        for op in ["CumSum", "CumProd"] {
            t[op] = OpDef(infer: { c in
                _ = try c.requireConstant(1, "axis")
                return [tt(try c.dtype(0), try c.shape(0))]
            })
        }
        t["OneHot"] = OpDef(infer: { c in
            let s = try c.shape(0)
            let depth = Int(try c.requireConstant(1, "depth").double(0))
            guard depth >= 0 else { throw c.fail("depth \(depth) is negative") }
            let axis = try c.axis(c.int("axis", -1), rank: s.count + 1)
            var out = s
            out.insert(depth, at: axis)
            return [tt(try c.dtype(2), out)]
        })
        t["EyeLike"] = OpDef(infer: { c in
            let s = try c.shape(0)
            guard s.count == 2 else { throw c.fail("needs a 2-D input") }
            let input = try c.dtype(0)
            let dt = c.node.int("dtype").flatMap { DataType(rawValue: Int32($0)) } ?? input
            return [tt(dt, s)]
        })
        t["GatherND"] = OpDef(infer: { c in
            let d = try c.shape(0), i = try c.shape(1)
            let b = c.int("batch_dims", 0)
            guard let last = i.last, last <= d.count - b, b < min(d.count, i.count) else { throw c.fail("indices shape \(i) does not fit data \(d)") }
            return [tt(try c.dtype(0), Array(i.dropLast()) + Array(d[(b + last)...]))]
        })
        t["ScatterND"] = OpDef(infer: { c in [tt(try c.dtype(0), try c.shape(0))] })
        return t
    }
}
