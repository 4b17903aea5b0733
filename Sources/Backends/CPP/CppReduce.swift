import Foundation
import SofieIR

/// Reduce*, ArgMax/ArgMin, Softmax/LogSoftmax/Hardmax.
enum CppReduce {
    static var table: [String: CppOps.Emit] {
        var t: [String: CppOps.Emit] = [:]
        for op in ReductionOps.reduceOps { t[op] = { e, n in try reduce(e, n, op) } }
        for op in ["ArgMax", "ArgMin"] {
            t[op] = { e, n in
                let x = try e.input(n, 0), y = try e.output(n, 0)
                let axis = try OpContext(node: n, opset: e.opset).axis(n.int("axis") ?? 0, rank: x.shape.count)
                let outer = x.shape[..<axis].reduce(1, *), inner = x.shape[(axis + 1)...].reduce(1, *), dim = x.shape[axis]
                let last = (n.int("select_last_index") ?? 0) == 1
                let cmp = op == "ArgMax" ? (last ? ">=" : ">") : (last ? "<=" : "<")
                e.line("for (int64_t o = 0; o < \(outer); ++o) for (int64_t i = 0; i < \(inner); ++i) {")
                e.line("    const \(x.ctype)* x = \(x.ptr) + o * \(dim * inner) + i;")
                e.line("    int64_t best = 0;")
                e.line("    for (int64_t k = 1; k < \(dim); ++k) if (x[k * \(inner)] \(cmp) x[best * \(inner)]) best = k;")
                e.line("    \(y.ptr)[o * \(inner) + i] = best;")
                e.line("}")
            }
        }
        for op in ["Softmax", "LogSoftmax", "Hardmax"] {
            t[op] = { e, n in
                let x = try e.input(n, 0), y = try e.output(n, 0)
                let r = x.shape.count
                let axis = try OpContext(node: n, opset: e.opset).axis(n.int("axis") ?? (e.opset < 13 ? 1 : -1), rank: r)
                // Before opset 13 the input is coerced to 2-D at `axis`; from 13 on, one axis.
                let xd = x.dims
                let outerExpr = xd[..<axis].reduce(DimExpr(1), *)
                let dimExpr = e.opset < 13 ? xd[axis...].reduce(DimExpr(1), *) : xd[axis]
                let innerExpr = e.opset < 13 ? DimExpr(1) : xd[(axis + 1)...].reduce(DimExpr(1), *)
                let outer = e.cpp(outerExpr), dim = e.factor(dimExpr), inner = e.factor(innerExpr)
                let dimInner = e.factor(dimExpr * innerExpr)
                let T = x.ctype
                guard x.dtype.isFloatingPoint else { throw CompileError(node: n, "\(op) needs float32 or float64 input") }
                if op == "Softmax" && innerExpr == 1 && x.dtype == .float {
                    // Rows contiguous (the usual last axis): maximum, exponentials and sum in the
                    // target's vectors (sofie_rt::softmax_rows).
                    e.line("sofie_rt::softmax_rows(\(x.ptr), \(y.ptr), \(outer), \(dim));")
                    return
                }
                e.line("for (int64_t o = 0; o < \(outer); ++o) for (int64_t i = 0; i < \(inner); ++i) {")
                e.line("    const \(T)* x = \(x.ptr) + o * \(dimInner) + i;")
                e.line("    \(T)* y = \(y.ptr) + o * \(dimInner) + i;")
                e.line("    \(T) m = x[0];")
                e.line("    int64_t arg = 0;")
                e.line("    for (int64_t k = 1; k < \(dim); ++k) if (x[k * \(inner)] > m) { m = x[k * \(inner)]; arg = k; }")
                switch op {
                case "Hardmax":
                    e.line("    for (int64_t k = 0; k < \(dim); ++k) y[k * \(inner)] = k == arg ? \(T)(1) : \(T)(0);")
                case "LogSoftmax":
                    e.line("    (void)arg;")
                    e.line("    \(T) s = 0;")
                    e.line("    for (int64_t k = 0; k < \(dim); ++k) s += std::exp(x[k * \(inner)] - m);")
                    e.line("    const \(T) ls = std::log(s);")
                    e.line("    for (int64_t k = 0; k < \(dim); ++k) y[k * \(inner)] = x[k * \(inner)] - m - ls;")
                default:
                    e.line("    (void)arg;")
                    e.line("    \(T) s = 0;")
                    e.line("    for (int64_t k = 0; k < \(dim); ++k) { const \(T) v = std::exp(x[k * \(inner)] - m); y[k * \(inner)] = v; s += v; }")
                    e.line("    const \(T) inv = \(T)(1) / s;")
                    e.line("    for (int64_t k = 0; k < \(dim); ++k) y[k * \(inner)] *= inv;")
                }
                e.line("}")
            }
        }
        return t
    }

    /// The accumulator type of a reduction over `x` (double for floats, 64-bit integers otherwise)
    /// and its starting value; integers start from the input type's own extremes (an empty int8
    /// max is -128, an empty bool max false).
    static func accumulator(_ op: String, _ x: CTensor) -> (type: String, initial: String) {
        let isFloat = x.dtype.isFloatingPoint
        let A = isFloat ? "double" : (x.dtype == .uint64 ? "uint64_t" : "int64_t")
        switch op {
        case "ReduceProd": return (A, "\(A)(1)")
        case "ReduceMax": return (A, isFloat ? "-std::numeric_limits<double>::infinity()" : "static_cast<\(A)>(std::numeric_limits<\(x.ctype)>::lowest())")
        case "ReduceMin": return (A, isFloat ? "std::numeric_limits<double>::infinity()" : "static_cast<\(A)>(std::numeric_limits<\(x.ctype)>::max())")
        default: return (A, "\(A)(0)")
        }
    }

    /// Output i of a reduction from its accumulator `acc[i]`: `count` elements per output, `max` the
    /// expression of output i's maximum (ReduceLogSumExp's shift).
    static func finish(_ op: String, _ A: String, count: String, max: String) -> String {
        switch op {
        case "ReduceMean": return "acc[i] / \(A)(\(count))"
        case "ReduceL2": return "std::sqrt(double(acc[i]))"
        case "ReduceLogSum": return "std::log(double(acc[i]))"
        case "ReduceLogSumExp": return "\(max) + std::log(acc[i])"
        default: return "acc[i]"
        }
    }

    /// A reduction whose axes arrive at run time (the output shape declared in the model):
    /// sofie_rt::reduce_axes checks them against the declared shape and accumulates.
    static func reduceRuntimeAxes(_ e: EmitContext, _ n: Node, _ op: String) throws {
        let x = try e.input(n, 0), axes = try e.input(n, 1), y = try e.output(n, 0)
        guard axes.dtype == .int64, axes.shape.count <= 1, !x.hasRuntimeExtents else { throw CompileError(node: n, "its axes must be a 1-D int64 tensor") }
        let isFloat = x.dtype.isFloatingPoint
        let (A, initial) = accumulator(op, x)
        let step: String
        switch op {
        case "ReduceProd": step = "a * v"
        case "ReduceMax": step = "std::max(a, v)"
        case "ReduceMin": step = "std::min(a, v)"
        case "ReduceL1": step = "a + (v < 0 ? -v : v)"
        case "ReduceL2", "ReduceSumSquare": step = "a + v * v"
        case "ReduceSum", "ReduceMean", "ReduceLogSum": step = "a + v"
        // Stable: each output's maximum first (a pass of its own), then the sum of exp(x - max).
        case "ReduceLogSumExp": step = "a + std::exp(v - mx[at])"
        default: throw CompileError(node: n, "\(op) with axes given at run time is not supported")
        }
        let fin = finish(op, A, count: "count", max: "mx[i]")
        let lse = op == "ReduceLogSumExp"
        guard !lse || isFloat else { throw CompileError(node: n, "ReduceLogSumExp with axes given at run time needs a float input") }
        e.workspace((lse ? 2 : 1) * max(y.count, 1) + 16)
        func array(_ a: [Int]) -> String { "{" + (a + [0]).map(String.init).joined(separator: ", ") + "}" }
        e.block {
            e.line("static constexpr int64_t in_shape[] = \(array(x.shape)), out_shape[] = \(array(y.shape));")
            e.line("\(A)* const acc = static_cast<\(A)*>(work);")
            e.line("int64_t count = 0;")
            let args = "\(x.ptr), in_shape, \(x.shape.count), \(axes.ptr), \(axes.count), \((n.int("keepdims") ?? 1) != 0), \((n.int("noop_with_empty_axes") ?? 0) != 0), out_shape, \(y.shape.count)"
            if lse {
                e.line("\(A)* const mx = acc + \(max(y.count, 1) + 8);")
                e.line("bool ok = sofie_rt::reduce_axes<\(x.ctype), \(A)>(\(args), -std::numeric_limits<double>::infinity(), [](\(A) a, \(A) v, int64_t) { return std::max(a, v); }, mx, &count);")
                e.line("if (ok) for (int64_t i = 0; i < \(y.count); ++i) if (!std::isfinite(mx[i])) mx[i] = 0;  // all -inf (or empty): exp(x - 0)")
                e.line("if (!ok || !sofie_rt::reduce_axes<\(x.ctype), \(A)>(\(args), \(initial), [mx](\(A) a, \(A) v, int64_t at) { return \(step); }, acc, &count))")
            } else {
                e.line("if (!sofie_rt::reduce_axes<\(x.ctype), \(A)>(\(args), \(initial), [](\(A) a, \(A) v, int64_t) { return \(step); }, acc, &count))")
            }
            e.line("    throw std::invalid_argument(\"\(e.ns): node '\(CppNames.comment(n.name, limit: 60))' (\(op)): its axes (input 1) do not give the output shape [\(y.shape.map(String.init).joined(separator: "x"))] the model declares\");")
            e.line("(void)count;")
            e.line("for (int64_t i = 0; i < \(y.count); ++i) \(y.ptr)[i] = static_cast<\(y.ctype)>(\(fin));")
        }
    }

    static func reduce(_ e: EmitContext, _ n: Node, _ op: String) throws {
        if DeclaredShapes.isRuntime(n, 1) { try reduceRuntimeAxes(e, n, op); return }
        let x = try e.input(n, 0), y = try e.output(n, 0)
        let (axes, _) = try ReductionOps.reduceAxes(OpContext(node: n, opset: e.opset))
        let (A, initial) = accumulator(op, x)
        if axes.isEmpty {
            // noop_with_empty_axes: the input itself (with the elementwise part of the op).
            switch op {
            case "ReduceL1": e.elementwise(y, [x]) { "std::abs(\($0[0]))" }
            case "ReduceSumSquare": e.elementwise(y, [x]) { "\($0[0]) * \($0[0])" }
            case "ReduceL2": e.elementwise(y, [x]) { "std::sqrt(double(\($0[0])) * double(\($0[0])))" }
            case "ReduceLogSum": e.elementwise(y, [x]) { "std::log(double(\($0[0])))" }
            case "ReduceLogSumExp": e.elementwise(y, [x]) { "std::log(std::exp(double(\($0[0]))))" }
            default: e.copy(y, x)
            }
            return
        }
        // Accumulators live in the workspace, one per output element.
        e.workspace(y.count + 8)
        let xd = x.dims
        let kept = xd.enumerated().map { axes.contains($0.offset) ? DimExpr(1) : $0.element }
        let ost = EmitContext.strides(kept).enumerated().map { axes.contains($0.offset) ? DimExpr(0) : $0.element }
        if x.count == 0 {
            e.line("std::fill_n(\(y.ptr), \(y.count), static_cast<\(y.ctype)>(\(op == "ReduceLogSum" || op == "ReduceLogSumExp" ? "-std::numeric_limits<double>::infinity()" : initial)));")
            return
        }
        let yc = e.count(y)
        e.block {
            e.line("\(A)* const acc = static_cast<\(A)*>(work);")
            e.line("std::fill_n(acc, \(yc), \(initial));")
            e.line("const \(x.ctype)* x = \(x.ptr);")
            if op == "ReduceLogSumExp" {
                // Stable: subtract each output's maximum first (held in the output buffer meanwhile).
                e.line("\(x.ctype)* const mx = \(y.ptr);")
                e.line("std::fill_n(mx, \(yc), std::numeric_limits<\(x.ctype)>::lowest());")
                e.loops(xd) { v in e.line("{ \(x.ctype)& m = mx[\(e.offset(v, ost))]; m = std::max(m, *x++); }") }
                e.line("x = \(x.ptr);")
            }
            e.loops(xd) { v in
                let o = "acc[\(e.offset(v, ost))]"
                let xv = "\(A)(*x++)"
                switch op {
                case "ReduceSum", "ReduceMean", "ReduceLogSum": e.line("\(o) += \(xv);")
                case "ReduceProd": e.line("\(o) *= \(xv);")
                case "ReduceMax": e.line("\(o) = std::max(\(o), \(xv));")
                case "ReduceMin": e.line("\(o) = std::min(\(o), \(xv));")
                case "ReduceL1": e.line("{ const \(A) v = \(xv); \(o) += v < 0 ? -v : v; }")
                case "ReduceL2", "ReduceSumSquare": e.line("{ const \(A) v = \(xv); \(o) += v * v; }")
                case "ReduceLogSumExp": e.line("\(o) += std::exp(double(*x++) - double(mx[\(e.offset(v, ost))]));")
                default: break
                }
            }
            // Elements per output (the reduced extents' product).
            let count = Set(axes).sorted().map { xd[$0] }.reduce(DimExpr(1), *)
            let fin = finish(op, A, count: e.cpp(count), max: "double(\(y.ptr)[i])")
            e.line("for (int64_t i = 0; i < \(yc); ++i) \(y.ptr)[i] = static_cast<\(y.ctype)>(\(fin));")
        }
    }
}
