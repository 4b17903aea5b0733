import Foundation
import SofieIR

/// Data movement: reshapes (copies), transposes, concatenation, slicing, gathering, padding...
enum CppShape {
    static var table: [String: CppOps.Emit] {
        var t: [String: CppOps.Emit] = [:]
        // Reshapes (OpTraits.aliasesInput): a copy, which is none when the memory plan aliased them.
        for (op, def) in OpRegistry.definitions where def.traits.contains(.aliasesInput) {
            t[op] = { e, n in e.copy(try e.output(n, 0), try e.input(n, 0)) }
        }
        // ConstantOfShape becomes a fill done when the Session is created (EmitContext.placeFill).
        t["ConstantOfShape"] = { _, _ in }
        t["Constant"] = { e, n in
            throw CompileError(node: n, "internal: Constant nodes are folded before emission")
        }
        for op in ["Shape", "Size"] {
            t[op] = { e, n in
                let c = OpContext(node: n, opset: e.opset)
                let vals: [Int] = op == "Size" ? [try c.shape(0).reduce(1, *)] : try ShapeOps.table["Shape"]!.evaluate!(c, [nil])[0].ints.map { Int($0) }
                let y = try e.output(n, 0)
                for (i, v) in vals.enumerated() { e.line("\(y.ptr)[\(i)] = \(v);") }
            }
        }
        t["Transpose"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            let perm = n.ints("perm") ?? Array((0..<x.shape.count).reversed())
            let st = EmitContext.strides(x.dims)
            if !x.hasRuntimeExtents, !y.hasRuntimeExtents, y.count > 0, perm.count == y.shape.count, perm.allSatisfy({ x.shape.indices.contains($0) }) {
                // Static shapes: output axes that are consecutive in the input too merge into one
                // (extent-1 axes drop out); when the last merged axis is contiguous in the input,
                // the transpose copies runs of it (a memcpy of constant size, which the compiler
                // expands into vector moves even at -O2, where the element loop stays scalar: it
                // cannot rule out that x and y overlap).
                let xs = NDArray.strides(x.shape)
                var dims: [Int] = [], strides: [Int] = []
                for (a, d) in y.shape.enumerated() where d != 1 {
                    let s = xs[perm[a]]
                    if let last = strides.last, last == s * d { dims[dims.count - 1] *= d; strides[strides.count - 1] = s } else { dims.append(d); strides.append(s) }
                }
                if let run = dims.last, strides.last == 1, run >= 4 {
                    let bytes = "sizeof(\(y.ctype)) * \(run)"
                    e.block {
                        e.line("const \(x.ctype)* const x = \(x.ptr);")
                        e.line("\(y.ctype)* y = \(y.ptr);")
                        if dims.count == 1 {
                            e.line("std::memmove(y, x, \(bytes));  // the same order: a copy")
                        } else {
                            e.loops(Array(dims.dropLast())) { v in
                                e.line("std::memcpy(y, \(EmitContext.at("x", EmitContext.offset(v, Array(strides.dropLast())))), \(bytes));")
                                e.line("y += \(run);")
                            }
                        }
                    }
                    return
                }
            }
            e.block {
                e.line("const \(x.ctype)* const x = \(x.ptr);")
                e.line("\(y.ctype)* y = \(y.ptr);")
                e.loops(y.dims) { v in e.line("*y++ = x[\(e.offset(v, perm.map { st[$0] }))];") }
            }
        }
        t["Concat"] = { e, n in
            let y = try e.output(n, 0)
            let axis = try OpContext(node: n, opset: e.opset).axis(n.int("axis") ?? 0, rank: y.shape.count)
            let yd = y.dims
            let outer = yd[..<axis].reduce(DimExpr(1), *)
            let outBlock = yd[axis...].reduce(DimExpr(1), *)
            var pos = DimExpr(0)
            let p = e.factor
            for i in 0..<n.inputs.count {
                guard let v = n.input(i) else { continue }
                let x = try e.tensor(v)
                let blockSize = x.dims[axis...].reduce(DimExpr(1), *)
                if blockSize != 0 {
                    e.line("for (int64_t o = 0; o < \(e.cpp(outer)); ++o) std::memcpy(\(y.ptr) + o * \(p(outBlock)) + \(p(pos)), \(x.ptr) + o * \(p(blockSize)), sizeof(\(y.ctype)) * \(p(blockSize)));")
                }
                pos = pos + blockSize
            }
        }
        t["Split"] = { e, n in
            let x = try e.input(n, 0)
            let axis = try OpContext(node: n, opset: e.opset).axis(n.int("axis") ?? 0, rank: x.shape.count)
            let outer = x.shape[..<axis].reduce(1, *)
            let inBlock = x.shape[axis...].reduce(1, *)
            var pos = 0
            for i in 0..<n.outputs.count {
                guard let v = n.output(i) else { continue }
                let y = try e.tensor(v)
                let blockSize = y.shape[axis...].reduce(1, *)
                if blockSize > 0 {
                    e.line("for (int64_t o = 0; o < \(outer); ++o) std::memcpy(\(y.ptr) + o * \(blockSize), \(x.ptr) + o * \(inBlock) + \(pos), sizeof(\(y.ctype)) * \(blockSize));")
                }
                pos += blockSize
            }
        }
        t["Slice"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            if (1...4).contains(where: { DeclaredShapes.isRuntime(n, $0) }) { try runtimeSlice(e, n, x, y); return }
            let p = try ShapeOps.sliceParams(OpContext(node: n, opset: e.opset))
            let st = NDArray.strides(x.shape)
            let base = zip(p.starts, st).map { $0 * $1 }.reduce(0, +)
            guard y.count > 0 else { return }
            if x.hasRuntimeExtents || y.hasRuntimeExtents {
                // Run-time extents: the output's extents come from its run-time shape (the ends
                // only set them); a start on an axis of run-time extent is clamped at run time.
                let xd = x.dims, rst = EmitContext.strides(xd)
                var starts: [String] = []
                for a in xd.indices {
                    if xd[a].isConstant { starts.append(String(p.starts[a])); continue }
                    guard p.steps[a] > 0 else { throw CompileError(node: n, "Slice with a negative step over an axis of run-time extent is not supported") }
                    let g = p.givenStarts[a], d = e.cpp(xd[a])
                    starts.append(g == 0 ? "0" : g > 0 ? "std::min<int64_t>(\(g), \(d))" : "std::max<int64_t>(\(d) - \(-g), 0)")
                }
                e.block {
                    e.line("const \(x.ctype)* const x = \(EmitContext.at(x.ptr, e.offset(starts, rst)));")
                    e.line("\(y.ctype)* y = \(y.ptr);")
                    e.loops(y.dims) { v in e.line("*y++ = x[\(e.offset(v, zip(p.steps, rst).map { DimExpr($0) * $1 }))];") }
                }
                return
            }
            e.block {
                e.line("const \(x.ctype)* const x = \(x.ptr);")
                e.line("\(y.ctype)* y = \(y.ptr);")
                e.loops(y.shape) { v in e.line("*y++ = x[\(EmitContext.offset(v, zip(p.steps, st).map { $0 * $1 }, base: base))];") }
            }
        }
        t["Gather"] = { e, n in
            let x = try e.input(n, 0), idx = try e.input(n, 1), y = try e.output(n, 0)
            let axis = try OpContext(node: n, opset: e.opset).axis(n.int("axis") ?? 0, rank: x.shape.count)
            let xd = x.dims
            let outer = e.cpp(xd[..<axis].reduce(DimExpr(1), *)), innerExpr = xd[(axis + 1)...].reduce(DimExpr(1), *), dimExpr = xd[axis]
            let inner = e.factor(innerExpr), dim = e.factor(dimExpr)
            guard y.count > 0 else { return }
            e.block {
                e.line("const \(x.ctype)* const x = \(x.ptr);")
                e.line("const \(idx.ctype)* const idx = \(idx.ptr);")
                e.line("\(y.ctype)* y = \(y.ptr);")
                e.line("for (int64_t o = 0; o < \(outer); ++o)")
                e.line("    for (int64_t k = 0; k < \(e.count(idx)); ++k) {")
                e.line("        int64_t j = static_cast<int64_t>(idx[k]);")
                e.line("        if (j < 0) j += \(dim);")
                e.line("        if (j < 0 || j >= \(dim)) j = 0;  // out-of-range index: defined behaviour instead of a wild read")
                e.line("        std::memcpy(y, x + (o * \(dim) + j) * \(inner), sizeof(\(y.ctype)) * \(inner));")
                e.line("        y += \(inner);")
                e.line("    }")
            }
        }
        t["GatherElements"] = { e, n in
            let x = try e.input(n, 0), idx = try e.input(n, 1), y = try e.output(n, 0)
            let axis = try OpContext(node: n, opset: e.opset).axis(n.int("axis") ?? 0, rank: x.shape.count)
            let st = NDArray.strides(x.shape)
            e.block {
                e.line("const \(x.ctype)* const x = \(x.ptr);")
                e.line("const \(idx.ctype)* idx = \(idx.ptr);")
                e.line("\(y.ctype)* y = \(y.ptr);")
                e.loops(idx.shape) { v in
                    e.line("int64_t j = static_cast<int64_t>(*idx++);")
                    e.line("if (j < 0) j += \(x.shape[axis]);")
                    e.line("if (j < 0 || j >= \(x.shape[axis])) j = 0;")
                    var terms = v
                    terms[axis] = "j"
                    e.line("*y++ = x[\(EmitContext.offset(terms, st))];")
                }
            }
        }
        t["TensorScatter"] = { e, n in
            let past = try e.input(n, 0), upd = try e.input(n, 1), w = try e.optionalInput(n, 2), y = try e.output(n, 0)
            let axis = try OpContext(node: n, opset: e.opset).axis(n.int("axis") ?? -2, rank: past.shape.count)
            let outer = past.shape[..<axis].reduce(1, *), perBatch = past.shape[1..<axis].reduce(1, *)
            let inner = past.shape[(axis + 1)...].reduce(1, *), maxLen = past.shape[axis], len = upd.shape[axis]
            let circular = n.string("mode") == "circular"
            e.copy(y, past)
            if maxLen == 0 || len == 0 || inner == 0 { return }
            // A write index outside the cache (a run-time value) skips the row in linear mode: defined, never out of bounds.
            e.line("for (int64_t o = 0; o < \(outer); ++o) {")
            e.line("    int64_t start = \(w.map { "static_cast<int64_t>(\($0.ptr)[o / \(perBatch)])" } ?? "0");")
            // Reduced before any addition, so a hostile index cannot overflow.
            e.line(circular ? "    start %= \(maxLen); if (start < 0) start += \(maxLen);" : "    if (start < 0 || start > \(maxLen)) start = \(maxLen);")
            e.line("    for (int64_t s = 0; s < \(len); ++s) {")
            e.line(circular ? "        const int64_t at = (start + s) % \(maxLen);"
                            : "        const int64_t at = start + s; if (at >= \(maxLen)) break;")
            e.line("        std::memcpy(\(y.ptr) + (o * \(maxLen) + at) * \(inner), \(upd.ptr) + (o * \(len) + s) * \(inner), sizeof(\(y.ctype)) * \(inner));")
            e.line("    }")
            e.line("}")
        }
        t["ReverseSequence"] = { e, n in
            let x = try e.input(n, 0), lens = try e.input(n, 1), y = try e.output(n, 0)
            let time = n.int("time_axis") ?? 0, batch = n.int("batch_axis") ?? 1
            let T = x.shape[time], B = x.shape[batch], inner = x.shape[2...].reduce(1, *)
            let (tStride, bStride) = time == 0 ? (B * inner, inner) : (inner, T * inner)
            // A length outside [0, T] (a run-time value) is clamped: defined, never out of bounds.
            e.line("for (int64_t b = 0; b < \(B); ++b) {")
            e.line("    int64_t len = static_cast<int64_t>(\(lens.ptr)[b]); len = len < 0 ? 0 : (len > \(T) ? \(T) : len);")
            e.line("    for (int64_t t = 0; t < \(T); ++t) {")
            e.line("        const int64_t src = t < len ? len - 1 - t : t;")
            e.line("        std::memcpy(\(y.ptr) + b * \(bStride) + t * \(tStride), \(x.ptr) + b * \(bStride) + src * \(tStride), sizeof(\(y.ctype)) * \(inner));")
            e.line("    }")
            e.line("}")
        }
        t["ScatterElements"] = { e, n in
            let x = try e.input(n, 0), idx = try e.input(n, 1), upd = try e.input(n, 2), y = try e.output(n, 0)
            let axis = try OpContext(node: n, opset: e.opset).axis(n.int("axis") ?? 0, rank: x.shape.count)
            let st = EmitContext.strides(x.dims), dim = e.factor(x.dims[axis])
            let red = n.string("reduction") ?? "none"
            e.copy(y, x)
            e.block {
                e.line("const \(idx.ctype)* idx = \(idx.ptr);")
                e.line("const \(upd.ctype)* u = \(upd.ptr);")
                e.line("\(y.ctype)* const y = \(y.ptr);")
                e.loops(idx.dims) { v in
                    e.line("int64_t j = static_cast<int64_t>(*idx++);")
                    e.line("if (j < 0) j += \(dim);")
                    e.line("if (j < 0 || j >= \(dim)) { ++u; continue; }")
                    var terms = v
                    terms[axis] = "j"
                    let dst = "y[\(e.offset(terms, st))]"
                    switch red {
                    case "add": e.line("\(dst) += *u++;")
                    case "mul": e.line("\(dst) *= *u++;")
                    case "max": e.line("\(dst) = std::max(\(dst), *u++);")
                    case "min": e.line("\(dst) = std::min(\(dst), *u++);")
                    default: e.line("\(dst) = *u++;")
                    }
                }
            }
        }
        t["Expand"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            e.elementwise(y, [x]) { $0[0] }
        }
        t["Tile"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            let st = NDArray.strides(x.shape)
            e.block {
                e.line("const \(x.ctype)* const x = \(x.ptr);")
                e.line("\(y.ctype)* y = \(y.ptr);")
                e.loops(y.shape) { v in
                    let terms = zip(v.indices, v).filter { x.shape[$0.0] > 0 && st[$0.0] != 0 }.map { "(\($0.1) % \(x.shape[$0.0])) * \(st[$0.0])" }
                    e.line("*y++ = x[\(terms.isEmpty ? "0" : terms.joined(separator: " + "))];")
                }
            }
        }
        t["Compress"] = { e, n in
            let x = try e.input(n, 0), cond = try e.input(n, 1), y = try e.output(n, 0)
            guard !x.hasRuntimeExtents, !cond.hasRuntimeExtents else { throw CompileError(node: n, "Compress over a tensor with run-time extents is not supported") }
            let (shape, axis, dim, conditions) = try ShapeOps.compressGeometry(OpContext(node: n, opset: e.opset))
            let outer = axis.map { shape[..<$0].reduce(1, *) } ?? 1, inner = axis.map { shape[($0 + 1)...].reduce(1, *) } ?? 1
            let truth = cond.dtype == .bool ? "c[j]" : "c[j] != \(cond.ctype)(0)"
            // The selected count: its static extent when the condition is a constant, else
            // computed at run time (bounded or declared, EmitContext.valueLength).
            let declared = axis.map { y.shape[$0] } ?? y.shape[0]
            var count = String(declared)
            if DeclaredShapes.isRuntime(n, 1) || y.hasRuntimeExtents {
                count = try e.valueLength(n, declared: declared, made: "selects", [
                    "const \(cond.ctype)* const c = \(cond.ptr);",
                    "int64_t count = 0;",
                    "for (int64_t j = 0; j < \(conditions); ++j) count += (\(truth)) ? 1 : 0;",
                ])
            }
            e.block {
                e.line("const \(x.ctype)* const x = \(x.ptr);")
                e.line("const \(cond.ctype)* const c = \(cond.ptr);")
                e.line("\(y.ctype)* const y = \(y.ptr);")
                e.line("for (int64_t o = 0; o < \(outer); ++o) {")
                e.line("    int64_t k = 0;")
                e.line("    for (int64_t j = 0; j < \(conditions); ++j)")
                e.line("        if (\(truth)) std::memcpy(y + (o * \(count) + k++) * \(inner), x + (o * \(dim) + j) * \(inner), sizeof(\(y.ctype)) * \(inner));")
                e.line("}")
            }
        }
        t["NonZero"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            guard y.shape.count == 2 else { throw CompileError(node: n, "its output must be [rank, count]") }
            // Count the nonzero elements (bounded or declared, EmitContext.valueLength), then write
            // their coordinates as [rank, count] rows, in the input's order.
            let T = x.ctype, rank = x.shape.count
            let v = try e.valueLength(n, declared: y.shape[1], made: "finds", [
                "const \(T)* const x = \(x.ptr);",
                "int64_t count = 0;",
                "for (int64_t i = 0; i < \(e.count(x)); ++i) count += (\(x.dtype == .bool ? "x[i]" : "!(x[i] == \(T)(0))")) ? 1 : 0;",
            ])
            e.block {
                e.line("const \(T)* x = \(x.ptr);")
                e.line("int64_t* const y = \(y.ptr);")
                e.line("int64_t k = 0;")
                e.loops(x.dims) { idx in
                    let writes = (0..<rank).map { d in "y[\(d == 0 ? "" : "\(d) * \(v) + ")k] = \(idx[d]);" }.joined(separator: " ")
                    e.line("if (\(x.dtype == .bool ? "*x" : "!(*x == \(T)(0))")) { \(writes) ++k; }")
                    e.line("++x;")
                }
            }
        }
        t["Unique"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            let (_, axis, _, _, _) = try ShapeOps.uniqueGeometry(OpContext(node: n, opset: e.opset))
            // The input as outer x A x inner, extents at run time when they follow a symbol.
            let dims = x.dims
            let outer = axis.map { dims[..<$0].reduce(DimExpr(1), *) } ?? 1
            let slices = axis.map { dims[$0] } ?? x.countExpr
            let inner = axis.map { dims[($0 + 1)...].reduce(DimExpr(1), *) } ?? 1
            let A = try e.bound(slices)
            e.workspace(try Checked.mul(5, A, "Unique's workspace"))
            let T = x.ctype, key = x.dtype.isReducedFloat ? "sofie::to_float(v)" : "v"
            let (o, a, i) = (e.cpp(outer), e.factor(slices), e.factor(inner))
            // Sort and group (sofie_rt::unique_slices, into the workspace), then check the count
            // (bounded or declared, EmitContext.valueLength) and write the outputs.
            let len = try e.valueLength(n, declared: axis.map { y.shape[$0] } ?? y.shape[0], made: "finds", [
                "int64_t* const w = static_cast<int64_t*>(work);",
                "const int64_t count = sofie_rt::unique_slices(\(x.ptr), \(o), \(a), \(i), \((n.int("sorted") ?? 1) != 0), w, w + \(A), w + \(2 * A), w + \(3 * A), w + \(4 * A), [](\(T) v) { return \(key); });",
            ], unit: axis == nil ? "distinct elements" : "distinct slices")
            try e.block {
                e.line("const int64_t* const first = static_cast<const int64_t*>(work) + \(A);")
                e.line("const int64_t* const cnt = first + \(A);")
                e.line("const int64_t* const inv = first + \(2 * A);")
                e.line("const \(T)* const x = \(x.ptr);")
                e.line("\(y.ctype)* const y = \(y.ptr);")
                e.line("for (int64_t o = 0; o < \(o); ++o)")
                e.line("    for (int64_t t = 0; t < \(len); ++t)")
                e.line("        std::memcpy(y + (o * \(len) + t) * \(i), x + (o * \(a) + first[t]) * \(i), sizeof(\(T)) * \(i));")
                if let out = try e.optionalOutput(n, 1) { e.line("for (int64_t t = 0; t < \(len); ++t) \(out.ptr)[t] = first[t];") }
                if let out = try e.optionalOutput(n, 2) { e.line("for (int64_t j = 0; j < \(a); ++j) \(out.ptr)[j] = inv[j];") }
                if let out = try e.optionalOutput(n, 3) { e.line("for (int64_t t = 0; t < \(len); ++t) \(out.ptr)[t] = cnt[t];") }
            }
        }
        t["NonMaxSuppression"] = { e, n in
            let boxes = try e.input(n, 0), scores = try e.input(n, 1), y = try e.output(n, 0)
            let (B, S, C) = try ShapeOps.nmsGeometry(OpContext(node: n, opset: e.opset))
            guard boxes.dtype == .float || boxes.dtype == .double, scores.dtype == boxes.dtype else {
                throw CompileError(node: n, "NonMaxSuppression on \(boxes.dtype) boxes is not supported (float32 and float64 are, scores the same)")
            }
            guard !boxes.hasRuntimeExtents, !scores.hasRuntimeExtents else { throw CompileError(node: n, "NonMaxSuppression over boxes with run-time extents is not supported") }
            let T = boxes.ctype
            let maxOut = try e.optionalInput(n, 2), iou = try e.optionalInput(n, 3), th = try e.optionalInput(n, 4)
            // Selected triples go to the workspace first; the count is checked (bounded or
            // declared, EmitContext.valueLength) before they are copied out.
            let room = try Checked.product([B, C, S, 3])
            e.workspace(try Checked.add(room, 2 * S, "NonMaxSuppression's workspace"))
            let len = try e.valueLength(n, declared: y.shape[0], made: "selects", [
                "int64_t* const w = static_cast<int64_t*>(work);",
                "const int64_t count = sofie_rt::non_max_suppression<\(T)>(\(boxes.ptr), \(scores.ptr), \(B), \(S), \(C), "
                    + "\(maxOut.map { "static_cast<int64_t>(\($0.ptr)[0])" } ?? "0"), \(th != nil), \(th.map { "static_cast<\(T)>(\($0.ptr)[0])" } ?? "\(T)(0)"), "
                    + "\(iou.map { "static_cast<\(T)>(\($0.ptr)[0])" } ?? "\(T)(0)"), \((n.int("center_point_box") ?? 0) == 1), w, w + \(room), w + \(room + S));",
            ], unit: "boxes")
            e.line("std::memcpy(\(y.ptr), work, sizeof(int64_t) * 3 * static_cast<std::size_t>(\(len)));")
        }
        t["Range"] = { e, n in
            let s = try e.input(n, 0), d = try e.input(n, 2), y = try e.output(n, 0)
            var length = String(y.count)
            if (0..<3).contains(where: { DeclaredShapes.isRuntime(n, $0) }) || y.hasRuntimeExtents {
                // Bounds known only at run time: the length computed (bounded or declared,
                // EmitContext.valueLength).
                guard y.value.runtimeShape.map({ $0 == [DimExpr(symbol: RuntimeDimension.lengthSymbol(of: n))] }) ?? true else {
                    throw CompileError(node: n, "its length is not the run-time dimension '\(RuntimeDimension.lengthSymbol(of: n))' itself")
                }
                let l = try e.input(n, 1), T = s.ctype
                var count = [
                    "const \(T) start = \(s.ptr)[0], limit = \(l.ptr)[0], delta = \(d.ptr)[0];",
                    "if (delta == \(T)(0)) throw std::invalid_argument(\"\(e.ns): Range '\(CppNames.comment(n.name, limit: 60))' has delta 0\");",
                ]
                if s.dtype.isFloatingPoint {
                    count.append("const double steps = std::ceil((double(limit) - double(start)) / double(delta));")
                    count.append("const int64_t count = steps > 0 ? (steps < 9.0e18 ? static_cast<int64_t>(steps) : std::numeric_limits<int64_t>::max()) : 0;  // NaN -> 0")
                } else {
                    count.append("const long double span = (static_cast<long double>(limit) - static_cast<long double>(start)) / static_cast<long double>(delta);")
                    count.append("const int64_t count = span > 0 ? (span < 9.0e18L ? static_cast<int64_t>(std::ceil(span)) : std::numeric_limits<int64_t>::max()) : 0;")
                }
                length = try e.valueLength(n, declared: y.count, made: "makes", count)
            }
            e.line("for (int64_t i = 0; i < \(length); ++i) \(y.ptr)[i] = static_cast<\(y.ctype)>(\(s.ptr)[0] + static_cast<\(y.ctype)>(i) * \(d.ptr)[0]);")
        }
        // A window whose size arrives at run time, its length declared: the size is checked
        // against it and the points computed (in double, as the folded constant is).
        for op in ["HannWindow", "HammingWindow", "BlackmanWindow"] {
            t[op] = { e, n in
                let s = try e.input(n, 0), y = try e.output(n, 0)
                guard y.shape.count == 1, let size = y.shape.first else { throw CompileError(node: n, "its output must be 1-D") }
                let periodic = (n.int("periodic") ?? 1) != 0
                let formula = op == "HannWindow" ? "0.5 - 0.5 * std::cos(a)" : op == "HammingWindow" ? "25.0 / 46.0 - (21.0 / 46.0) * std::cos(a)" : "0.42 - 0.5 * std::cos(a) + 0.08 * std::cos(2.0 * a)"
                e.block {
                    e.line("const int64_t size = static_cast<int64_t>(\(s.ptr)[0]);")
                    e.line("if (size != \(size))")
                    e.line("    throw std::invalid_argument(\"\(e.ns): \(op) '\(CppNames.comment(n.name, limit: 60))' has size \" + std::to_string(size) + \", not the \(size) the model declares\");")
                    e.line("\(y.ctype)* const y = \(y.ptr);")
                    e.line("for (int64_t i = 0; i < \(size); ++i) {")
                    e.line("    const double a = 6.283185307179586476925 * static_cast<double>(i) / \(periodic ? size : size - 1).0;")
                    e.line("    y[i] = static_cast<\(y.ctype)>(\(formula));")
                    e.line("}")
                }
            }
        }
        t["Pad"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            let runtimePads = DeclaredShapes.isRuntime(n, 1) || DeclaredShapes.isRuntime(n, 3)
            // Pads (or axes) given at run time, the output shape declared: the begins are read at
            // run time (sofie_rt::pad_params checks the declared extents), every axis padded.
            let p: (begins: [Int], ends: [Int], mode: String)
            if runtimePads {
                let mode = n.string("mode") ?? "constant"
                guard !x.hasRuntimeExtents, x.shape.count == y.shape.count, x.shape.count <= 16 else { throw CompileError(node: n, "Pad with run-time pads needs a declared output of the input's rank") }
                guard ["constant", "edge", "wrap", "reflect"].contains(mode) else { throw CompileError(node: n, "unknown mode '\(mode)'") }
                let ones = [Int](repeating: 1, count: x.shape.count)  // stand-ins: every axis takes the padded path
                p = (ones, ones, mode)
            } else {
                let q = try ShapeOps.padParams(OpContext(node: n, opset: e.opset))
                p = (q.begins, q.ends, q.mode)
            }
            let st = NDArray.strides(x.shape)
            var constant = CppOps.literal(Double(n.float("value") ?? 0), y.dtype)
            if n.inputs.count > 2, let v = n.input(2) { constant = "\(try e.tensor(v).ptr)[0]" }
            guard y.count > 0 else { return }
            try e.block {
                if runtimePads {
                    let pads = try e.input(n, 1), axes = try e.optionalInput(n, 3)
                    func array(_ a: [Int]) -> String { "{" + (a + [0]).map(String.init).joined(separator: ", ") + "}" }
                    e.line("static constexpr int64_t in_shape[] = \(array(x.shape)), out_shape[] = \(array(y.shape));")
                    e.line("int64_t pb[\(x.shape.count + 1)];")
                    e.line("if (!sofie_rt::pad_params<\(pads.ctype), \(axes?.ctype ?? "int64_t")>(in_shape, \(x.shape.count), \(pads.ptr), \(pads.count), \(axes?.ptr ?? "nullptr"), \(axes?.count ?? 0), out_shape, pb))")
                    e.line("    throw std::invalid_argument(\"\(e.ns): node '\(CppNames.comment(n.name, limit: 60))' (Pad): its pads and axes do not give the output shape [\(y.shape.map(String.init).joined(separator: "x"))] the model declares\");")
                }
                e.line("const \(x.ctype)* const x = \(x.ptr);")
                e.line("\(y.ctype)* y = \(y.ptr);")
                e.loops(y.shape) { v in
                    var conds: [String] = []
                    var terms: [String] = []
                    for d in v.indices {
                        let dim = x.shape[d], b = p.begins[d]
                        let src = runtimePads ? "(\(v[d]) - pb[\(d)])" : b == 0 ? v[d] : "(\(v[d]) - \(b))"
                        if p.begins[d] == 0 && p.ends[d] == 0 { terms.append(st[d] == 1 ? v[d] : "\(v[d]) * \(st[d])"); continue }
                        switch p.mode {
                        case "constant":
                            conds.append("\(src) >= 0 && \(src) < \(dim)")
                            terms.append("\(src) * \(st[d])")
                        case "edge":
                            terms.append("std::min<int64_t>(std::max<int64_t>(\(src), 0), \(dim - 1)) * \(st[d])")
                        case "wrap":
                            terms.append("((\(src) % \(dim) + \(dim)) % \(dim)) * \(st[d])")
                        default:  // reflect
                            let period = max(2 * (dim - 1), 1)
                            terms.append("(\(dim) == 1 ? 0 : [](int64_t i) { i = ((i % \(period)) + \(period)) % \(period); return i < \(dim) ? i : \(period) - i; }(\(src))) * \(st[d])")
                        }
                    }
                    let read = "x[\(terms.isEmpty ? "0" : terms.joined(separator: " + "))]"
                    e.line(conds.isEmpty ? "*y++ = \(read);" : "*y++ = (\(conds.joined(separator: " && "))) ? \(read) : \(constant);")
                }
            }
        }
        t["Trilu"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            // k may be a run-time input: it changes values, not the shape.
            var k = "int64_t(0)"
            if n.inputs.count > 1, let kv = n.input(1) { k = "static_cast<int64_t>(\(try e.tensor(kv).ptr)[0])" }
            let upper = (n.int("upper") ?? 1) == 1
            let r = x.shape.count
            guard y.count > 0 else { return }
            let rows = x.shape[r - 2], cols = x.shape[r - 1]
            e.line("for (int64_t b = 0; b < \(x.count / max(rows * cols, 1)); ++b)")
            e.line("    for (int64_t i = 0; i < \(rows); ++i)")
            e.line("        for (int64_t j = 0; j < \(cols); ++j) {")
            e.line("            const int64_t o = (b * \(rows) + i) * \(cols) + j;")
            e.line("            \(y.ptr)[o] = (j - i \(upper ? ">=" : "<=") \(k)) ? \(x.ptr)[o] : \(y.ctype)(0);")
            e.line("        }")
        }
        t["DepthToSpace"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            let b = n.int("blocksize") ?? 1
            let (N, C, H, W) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let c = C / (b * b)
            let crd = n.string("mode") == "CRD"
            e.line("for (int64_t n = 0; n < \(N); ++n) for (int64_t c = 0; c < \(c); ++c) for (int64_t h = 0; h < \(H * b); ++h) for (int64_t w = 0; w < \(W * b); ++w) {")
            e.line("    const int64_t bh = h % \(b), bw = w % \(b);")
            e.line("    const int64_t ic = \(crd ? "c * \(b * b) + bh * \(b) + bw" : "(bh * \(b) + bw) * \(c) + c");")
            e.line("    \(y.ptr)[((n * \(c) + c) * \(H * b) + h) * \(W * b) + w] = \(x.ptr)[((n * \(C) + ic) * \(H) + h / \(b)) * \(W) + w / \(b)];")
            e.line("}")
        }
        t["SpaceToDepth"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            let b = n.int("blocksize") ?? 1
            let (N, C, H, W) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            e.line("for (int64_t n = 0; n < \(N); ++n) for (int64_t c = 0; c < \(C); ++c) for (int64_t h = 0; h < \(H); ++h) for (int64_t w = 0; w < \(W); ++w) {")
            let crd = n.string("mode") == "CRD"
            e.line("    const int64_t oc = \(crd ? "c * \(b * b) + (h % \(b)) * \(b) + (w % \(b))" : "((h % \(b)) * \(b) + (w % \(b))) * \(C) + c");")
            e.line("    \(y.ptr)[((n * \(C * b * b) + oc) * \(H / b) + h / \(b)) * \(W / b) + w / \(b)] = \(x.ptr)[((n * \(C) + c) * \(H) + h) * \(W) + w];")
            e.line("}")
        }
        t["Scatter"] = t["ScatterElements"]
        return t
    }

    /// Slice with starts, ends, axes or steps given at run time, the output shape declared:
    /// sofie_rt::slice_params clamps them as ONNX does and checks the declared extents.
    static func runtimeSlice(_ e: EmitContext, _ n: Node, _ x: CTensor, _ y: CTensor) throws {
        guard !x.hasRuntimeExtents, !y.hasRuntimeExtents else { throw CompileError(node: n, "Slice with run-time starts or ends over a tensor with run-time extents is not supported") }
        let starts = try e.input(n, 1), ends = try e.input(n, 2), axes = try e.optionalInput(n, 3), steps = try e.optionalInput(n, 4)
        let V = starts.ctype
        guard [starts, ends, axes, steps].allSatisfy({ $0 == nil || ($0!.ctype == V && $0!.count == starts.count) }) else {
            throw CompileError(node: n, "its starts, ends, axes and steps must be of one integer type and length")
        }
        let r = x.shape.count, st = NDArray.strides(x.shape)
        func array(_ a: [Int]) -> String { "{" + (a + [0]).map(String.init).joined(separator: ", ") + "}" }
        e.block {
            e.line("static constexpr int64_t in_shape[] = \(array(x.shape)), out_shape[] = \(array(y.shape));")
            e.line("int64_t start[\(r + 1)], step[\(r + 1)];")
            e.line("if (!sofie_rt::slice_params<\(V)>(in_shape, \(r), \(starts.ptr), \(ends.ptr), \(starts.count), \(axes?.ptr ?? "nullptr"), \(steps?.ptr ?? "nullptr"), out_shape, start, step))")
            e.line("    throw std::invalid_argument(\"\(e.ns): node '\(CppNames.comment(n.name, limit: 60))' (Slice): its starts, ends, axes and steps do not give the output shape [\(y.shape.map(String.init).joined(separator: "x"))] the model declares\");")
            e.line("const \(x.ctype)* const x = \(x.ptr)\((0..<r).map { " + start[\($0)] * \(st[$0])" }.joined());")
            e.line("\(y.ctype)* y = \(y.ptr);")
            for d in 0..<r where y.shape[d] != 1 { e.line("const int64_t m\(d) = step[\(d)] * \(st[d]);") }
            e.loops(y.shape) { v in
                let terms = v.enumerated().filter { $0.element != "0" }.map { "\($0.element) * m\($0.offset)" }
                e.line("*y++ = x[\(terms.isEmpty ? "0" : terms.joined(separator: " + "))];")
            }
        }
    }
}
