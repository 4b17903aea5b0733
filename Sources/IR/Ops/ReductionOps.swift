import Foundation


/// Reduce* and ArgMax/ArgMin.
public enum ReductionOps {
    public static let reduceOps: Set<String> = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
                                                "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]

    /// The reduced axes (sorted) and output shape of a Reduce* node.
    public static func reduceAxes(_ c: OpContext) throws -> (axes: [Int], shape: [Int]) {
        let s = try c.shape(0)
        var axes: [Int]
        if let a = c.node.ints("axes") {
            axes = a
        } else if c.has(1) {
            axes = try c.requireConstant(1, "axes").ints.map { Int($0) }
        } else {
            axes = []
        }
        if axes.isEmpty {
            if c.int("noop_with_empty_axes", 0) == 1 { return ([], s) }
            axes = Array(0..<s.count)
        }
        let norm = Set(try axes.map { try c.axis($0, rank: s.count) }).sorted()
        let keep = c.int("keepdims", 1) == 1
        var out: [Int] = []
        for (i, d) in s.enumerated() {
            if norm.contains(i) { if keep { out.append(1) } } else { out.append(d) }
        }
        return (norm, out)
    }

    /// For each element of an input of `shape` (row-major), the flat index of the output element
    /// that reducing over `axes` sends it to.
    public static func targets(_ shape: [Int], axes: [Int]) -> [Int] {
        let kept = shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
        let ks = NDArray.strides(kept)
        var out: [Int] = []
        out.reserveCapacity(shape.reduce(1, *))
        forEachIndex(shape) { i in
            var o = 0
            for d in i.indices where !axes.contains(d) { o += i[d] * ks[d] }
            out.append(o)
        }
        return out
    }

    public static var table: [String: OpDef] {
        var t: [String: OpDef] = [:]
        for op in reduceOps {
            t[op] = OpDef(
                infer: { c in [tt(try c.dtype(0), try reduceAxes(c).shape)] },
                evaluate: ["ReduceSum", "ReduceProd", "ReduceMax", "ReduceMin"].contains(op) ? { c, a in
                    let x = a[0]!
                    let (axes, out) = try reduceAxes(c)
                    var acc = [Double](repeating: op == "ReduceProd" ? 1 : (op == "ReduceMax" ? -.infinity : (op == "ReduceMin" ? .infinity : 0)), count: out.reduce(1, *))
                    for (flat, o) in targets(x.shape, axes: axes).enumerated() {
                        let v = x.double(flat)
                        switch op {
                        case "ReduceSum": acc[o] += v
                        case "ReduceProd": acc[o] *= v
                        case "ReduceMax": acc[o] = max(acc[o], v)
                        default: acc[o] = min(acc[o], v)
                        }
                    }
                    // An empty max/min of integers or booleans is the type's lowest/highest value,
                    // which the double accumulator cannot carry (int64's ends, bool's false/true):
                    // left to the run-time kernel (no outputs: constant folding keeps the node).
                    if (op == "ReduceMax" || op == "ReduceMin") && !x.dataType.isFloatingPoint && acc.contains(where: \.isInfinite) { return [] }
                    return [NDArray.make(x.dataType, shape: out, acc)]
                } : nil)
        }
        for op in ["ArgMax", "ArgMin"] {
            t[op] = OpDef(infer: { c in
                let s = try c.shape(0)
                let axis = try c.axis(c.int("axis", 0), rank: s.count)
                var out = s
                if c.int("keepdims", 1) == 1 { out[axis] = 1 } else { out.remove(at: axis) }
                return [tt(.int64, out)]
            })
        }
        return t
    }
}
