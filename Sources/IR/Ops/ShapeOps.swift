

/// Data-movement and shape-computing ops. Their evaluators fold shape subgraphs
/// (Shape -> Gather -> Concat -> Reshape, ...) at compile time.
public enum ShapeOps {
    public static var table: [String: OpDef] {
        var t: [String: OpDef] = [:]
        t["Shape"] = OpDef(
            infer: { c in [tt(.int64, [try shapeRange(c).count])] },
            evaluate: { c, _ in let s = try shapeRange(c); return [NDArray(.int64, shape: [s.count], ints: s.map { Int64($0) })] })
        t["Size"] = OpDef(
            infer: { _ in [tt(.int64, [])] },
            evaluate: { c, _ in [NDArray(.int64, shape: [], ints: [Int64(try Checked.product(try c.shape(0)))])] })
        t["Constant"] = OpDef(
            infer: { c in [try constantValue(c).0] },
            evaluate: { c, _ in [try constantValue(c).1] })
        t["ConstantOfShape"] = OpDef(
            infer: { c in
                let shape = try c.requireConstant(0, "shape").ints.map { Int($0) }
                guard shape.allSatisfy({ $0 >= 0 }) else { throw c.invalid("shape \(shape) has a negative dimension") }
                return [tt(c.node.tensor("value")?.dataType ?? .float, shape)]
            },
            evaluate: { c, a in
                let shape = a[0]!.ints.map { Int($0) }
                let value = c.node.tensor("value").flatMap(NDArray.init)
                let dt = value?.dataType ?? .float
                let v = value.map { $0.double(0) } ?? 0
                return [NDArray.make(dt, shape: shape, [Double](repeating: v, count: shape.reduce(1, *)))]
            })
        t["Reshape"] = OpDef(
            infer: { c in [tt(try c.dtype(0), try reshapeTarget(c))] },
            evaluate: { c, a in var r = a[0]!; r.shape = try reshapeTarget(c); return [r] })
        t["Flatten"] = OpDef(
            infer: { c in [tt(try c.dtype(0), try flattenShape(c))] },
            evaluate: { c, a in var r = a[0]!; r.shape = try flattenShape(c); return [r] })
        t["Squeeze"] = OpDef(
            infer: { c in [tt(try c.dtype(0), try squeezeShape(c))] },
            evaluate: { c, a in var r = a[0]!; r.shape = try squeezeShape(c); return [r] })
        t["Unsqueeze"] = OpDef(
            infer: { c in [tt(try c.dtype(0), try unsqueezeShape(c))] },
            evaluate: { c, a in var r = a[0]!; r.shape = try unsqueezeShape(c); return [r] })
        t["Transpose"] = OpDef(
            infer: { c in let (p, s) = try perm(c); return [tt(try c.dtype(0), p.map { s[$0] })] },
            evaluate: { c, a in
                let (p, s) = try perm(c)
                let out = p.map { s[$0] }
                let st = NDArray.strides(s)
                return [a[0]!.gathered(indexGrid(out, p.map { st[$0] }), shape: out)]
            })
        t["Concat"] = OpDef(
            infer: { c in
                let shapes = try (0..<c.inputCount).filter(c.has).map { try c.shape($0) }
                let rank = shapes[0].count
                let axis = try c.axis(c.int("axis", 0), rank: rank)
                var out = shapes[0]
                out[axis] = 0
                for s in shapes {
                    guard s.count == rank, (0..<rank).allSatisfy({ $0 == axis || s[$0] == shapes[0][$0] }) else {
                        throw c.fail("input shapes \(shapes) cannot be concatenated on axis \(axis)")
                    }
                    out[axis] += s[axis]
                }
                return [tt(try c.dtype(0), out)]
            },
            evaluate: { c, a in
                let arrays = a.compactMap { $0 }
                let rank = arrays[0].shape.count
                let axis = try c.axis(c.int("axis", 0), rank: rank)
                var out = arrays[0].shape
                out[axis] = arrays.map { $0.shape[axis] }.reduce(0, +)
                let outer = out[..<axis].reduce(1, *)
                var r = arrays[0]
                r.shape = out
                r.ints = []
                r.floats = []
                for o in 0..<outer {
                    for x in arrays {
                        let block = x.shape[axis...].reduce(1, *)
                        if x.isFloat { r.floats += x.floats[(o * block)..<((o + 1) * block)] } else { r.ints += x.ints[(o * block)..<((o + 1) * block)] }
                    }
                }
                return [r]
            })
        t["Split"] = OpDef(
            infer: { c in try splitShapes(c).map { tt(try c.dtype(0), $0) } },
            // Folded like Slice: each piece gathered along the axis (shape computations split
            // a constant shape vector into its extents, e.g. AffineGrid's function body).
            evaluate: { c, a in
                let shapes = try splitShapes(c)
                let x = a[0]!
                let axis = try c.axis(c.int("axis", 0), rank: x.shape.count)
                let st = NDArray.strides(x.shape)
                var start = 0
                return shapes.map { shape in
                    let idx = indexGrid(shape, st).map { $0 + start * st[axis] }
                    start += shape[axis]
                    return x.gathered(idx, shape: shape)
                }
            })
        t["Slice"] = OpDef(
            infer: { c in [tt(try c.dtype(0), try sliceParams(c).shape)] },
            evaluate: { c, a in
                let p = try sliceParams(c)
                let st = NDArray.strides(try c.shape(0))
                let base = zip(p.starts, st).map { $0 * $1 }.reduce(0, +)
                let idx = indexGrid(p.shape, zip(p.steps, st).map { $0 * $1 }).map { $0 + base }
                return [a[0]!.gathered(idx, shape: p.shape)]
            })
        t["Gather"] = OpDef(
            infer: { c in
                let s = try c.shape(0)
                // (Checked before the axis for a clearer message; a scalar once sliced past its shape here.)
                guard !s.isEmpty else { throw c.fail("data must have rank 1 or more, it is a scalar") }
                let axis = try c.axis(c.int("axis", 0), rank: s.count)
                return [tt(try c.dtype(0), Array(s[..<axis]) + (try c.shape(1)) + Array(s[(axis + 1)...]))]
            },
            evaluate: { c, a in
                let (x, ind) = (a[0]!, a[1]!)
                guard !x.shape.isEmpty else { throw c.fail("data must have rank 1 or more, it is a scalar") }
                let axis = try c.axis(c.int("axis", 0), rank: x.shape.count)
                let outer = x.shape[..<axis].reduce(1, *), inner = x.shape[(axis + 1)...].reduce(1, *), n = x.shape[axis]
                var idx: [Int] = []
                for o in 0..<outer {
                    for k in ind.ints {
                        let j = Int(k < 0 ? k + Int64(n) : k)
                        guard j >= 0, j < n else { throw c.fail("index \(k) is out of range for dimension \(n)") }
                        for i in 0..<inner { idx.append((o * n + j) * inner + i) }
                    }
                }
                return [x.gathered(idx, shape: Array(x.shape[..<axis]) + ind.shape + Array(x.shape[(axis + 1)...]))]
            })
        t["GatherElements"] = OpDef(infer: { c in [tt(try c.dtype(0), try c.shape(1))] })
        t["ScatterElements"] = OpDef(infer: { c in [tt(try c.dtype(0), try c.shape(0))] })
        // Scatter (opsets 9-10) is ScatterElements under its old name.
        t["Scatter"] = t["ScatterElements"]
        // TensorScatter (opset 24): a KV cache (batch, ..., max_seq, ...) with `update`'s rows written at write_indices.
        t["TensorScatter"] = OpDef(infer: { c in
            let past = try c.shape(0), upd = try c.shape(1)
            let axis = try c.axis(c.int("axis", -2), rank: past.count)
            guard axis != 0 else { throw c.invalid("axis must not be the batch axis 0") }
            var want = past
            want[axis] = upd.count == past.count ? upd[axis] : -1
            guard upd == want, upd[axis] <= past[axis] else {
                throw c.invalid("update \(upd) must match past_cache \(past) except on axis \(axis), where it may be at most \(past[axis])")
            }
            if c.has(2) {
                let (wt, ws) = (try c.dtype(2), try c.shape(2))
                guard wt == .int64, ws == [past[0]] else { throw c.invalid("write_indices must be int64 of shape [\(past[0])]") }
            }
            let mode = c.node.string("mode") ?? "linear"
            guard mode == "linear" || mode == "circular" else { throw c.invalid("mode '\(mode)' is not linear or circular") }
            return [tt(try c.dtype(0), past)]
        }, traits: .movesElements)
        t["ReverseSequence"] = OpDef(infer: { c in
            let x = try c.shape(0)
            let time = c.int("time_axis", 0), batch = c.int("batch_axis", 1)
            guard x.count >= 2, Set([time, batch]) == [0, 1] else {
                throw c.invalid("time_axis \(time) and batch_axis \(batch) must be 0 and 1 (in either order) of a tensor of rank >= 2, here \(x)")
            }
            guard try c.shape(1) == [x[batch]] else { throw c.invalid("sequence_lens must have one entry per batch row (\(x[batch])), not \(try c.shape(1))") }
            return [tt(try c.dtype(0), x)]
        }, traits: .movesElements)
        t["Expand"] = OpDef(
            infer: { c in [tt(try c.dtype(0), try expandShape(c))] },
            evaluate: { c, a in
                let out = try expandShape(c)
                return [a[0]!.gathered(broadcastIndices(a[0]!.shape, to: out), shape: out)]
            })
        t["Tile"] = OpDef(
            infer: { c in
                let s = try c.shape(0), r = try c.requireConstant(1, "repeats").ints.map { Int($0) }
                guard r.count == s.count, r.allSatisfy({ $0 >= 0 }) else { throw c.fail("repeats \(r) do not fit the input rank \(s.count)") }
                return [tt(try c.dtype(0), try zip(s, r).map { try Checked.mul($0, $1, "the tiled size") })]
            },
            evaluate: { c, a in
                let x = a[0]!, out = try c.infer()[0].staticShape!
                let st = NDArray.strides(x.shape)
                var idx: [Int] = []
                idx.reserveCapacity(out.reduce(1, *))
                forEachIndex(out) { i in idx.append(zip(i.indices, st).map { d, s in (i[d] % x.shape[d]) * s }.reduce(0, +)) }
                return [x.gathered(idx, shape: out)]
            })
        t["Range"] = OpDef(
            infer: { c in
                // Bounds computed at run time: the length is a run-time dimension the compiler
                // is preparing at some value (--dim NODE_len=max:BOUND), or an error saying so.
                if c.constant(0) == nil || c.constant(1) == nil || c.constant(2) == nil {
                    let symbol = RuntimeDimension.lengthSymbol(of: c.node)
                    guard let n = c.node.graph?.valueLengths[symbol] else {
                        var e = c.fail("its length depends on run-time values (start, limit or delta is computed at run time); give it a bound with --dim '\(symbol)=max:BOUND' to compute it at run time")
                        e.runtimeInput = (0..<3).first { c.constant($0) == nil }
                        throw e
                    }
                    return [tt(try c.dtype(0), [n])]
                }
                return [tt(try c.dtype(0), [try rangeCount(c)])]
            },
            evaluate: { c, a in
                let n = try rangeCount(c)
                let (s, d) = (a[0]!, a[2]!)
                if !s.isFloat { return [NDArray(s.dataType, shape: [n], ints: (0..<n).map { s.ints[0] + Int64($0) * d.ints[0] })] }
                return [NDArray.make(s.dataType, shape: [n], (0..<n).map { s.floats[0] + Double($0) * d.floats[0] })]
            })
        t["Compress"] = OpDef(
            infer: { c in
                let (x, axis, dim, conditions) = try compressGeometry(c)
                let n: Int
                if let cond = c.constant(1) {
                    n = (0..<cond.count).filter { cond.double($0) != 0 }.count
                } else {
                    // How many slices pass is a run-time dimension (--dim NODE_len=max:BOUND).
                    let symbol = RuntimeDimension.lengthSymbol(of: c.node)
                    guard let v = c.node.graph?.valueLengths[symbol] else {
                        var e = c.fail("its output's length is the number of true conditions, known only at run time; give it a bound with --dim '\(symbol)=max:BOUND' (at most the condition's \(conditions)) to compute it at run time")
                        e.runtimeInput = 1
                        e.lengthBound = (symbol, conditions)
                        throw e
                    }
                    n = v
                }
                _ = dim
                var out = axis.map { _ in x } ?? [n]
                if let a = axis { out[a] = n }
                return [tt(try c.dtype(0), out)]
            },
            evaluate: { c, a in
                let (x, axis, dim, _) = try compressGeometry(c)
                let cond = a[1]!, data = a[0]!
                let picked = (0..<cond.count).filter { cond.double($0) != 0 }
                let outer = axis.map { x[..<$0].reduce(1, *) } ?? 1, inner = axis.map { x[($0 + 1)...].reduce(1, *) } ?? 1
                var idx: [Int] = []
                for o in 0..<outer { for j in picked { for i in 0..<inner { idx.append((o * dim + j) * inner + i) } } }
                var out = axis.map { _ in x } ?? [picked.count]
                if let ax = axis { out[ax] = picked.count }
                return [data.gathered(idx, shape: out)]
            })
        t["NonZero"] = OpDef(
            infer: { c in
                let s = try c.shape(0)
                guard !s.isEmpty else { throw c.fail("NonZero of a scalar is not supported") }
                if let x = c.constant(0) { return [tt(.int64, [s.count, nonZeroIndices(x).count])] }
                // The count of nonzero elements is a run-time dimension (--dim NODE_len=max:BOUND).
                let symbol = RuntimeDimension.lengthSymbol(of: c.node)
                guard let n = c.node.graph?.valueLengths[symbol] else {
                    var e = c.fail("its output's length is the number of nonzero input elements, known only at run time; give it a bound with --dim '\(symbol)=max:BOUND' (at most the input's \(try Checked.product(s)) elements) to compute it at run time")
                    e.runtimeInput = 0
                    e.lengthBound = (symbol, try Checked.product(s))
                    throw e
                }
                return [tt(.int64, [s.count, n])]
            },
            evaluate: { c, a in
                let x = a[0]!, nz = nonZeroIndices(x), r = x.shape.count
                var out = [Int64](repeating: 0, count: r * nz.count)
                let st = NDArray.strides(x.shape)
                for (k, flat) in nz.enumerated() {
                    var rest = flat
                    for d in 0..<r { out[d * nz.count + k] = Int64(rest / max(st[d], 1)); rest %= max(st[d], 1) }
                }
                return [NDArray(.int64, shape: [r, nz.count], ints: out)]
            })
        t["Unique"] = OpDef(
            infer: { c in
                let (x, axis, _, slices, _) = try uniqueGeometry(c)
                let n: Int
                if let a = c.constant(0) {
                    n = uniqueSlices(a, try uniqueGeometry(c), sorted: true).first.count
                } else {
                    // How many distinct slices there are is a run-time dimension (--dim NODE_len=max:BOUND).
                    let symbol = RuntimeDimension.lengthSymbol(of: c.node)
                    guard let v = c.node.graph?.valueLengths[symbol] else {
                        var e = c.fail("its output's length is the number of distinct \(axis == nil ? "elements" : "slices"), known only at run time; give it a bound with --dim '\(symbol)=max:BOUND' (at most the input's \(slices)) to compute it at run time")
                        e.runtimeInput = 0
                        e.lengthBound = (symbol, slices)
                        throw e
                    }
                    guard v <= slices else { throw c.fail("--dim '\(symbol)=max:\(v)' exceeds the \(slices) \(axis == nil ? "elements" : "slices") the input has") }
                    n = v
                }
                var y = axis.map { _ in x } ?? [n]
                if let a = axis { y[a] = n }
                return [tt(try c.dtype(0), y), tt(.int64, [n]), tt(.int64, [slices]), tt(.int64, [n])]
            },
            evaluate: { c, a in
                let x = a[0]!
                let (shape, axis, outer, slices, inner) = try uniqueGeometry(c)
                let (first, inverse, counts) = uniqueSlices(x, (shape, axis, outer, slices, inner), sorted: c.int("sorted", 1) != 0)
                var idx: [Int] = []
                for o in 0..<outer { for j in first { for i in 0..<inner { idx.append((o * slices + j) * inner + i) } } }
                var y = axis.map { _ in shape } ?? [first.count]
                if let ax = axis { y[ax] = first.count }
                let ints = { (v: [Int]) in NDArray(.int64, shape: [v.count], ints: v.map(Int64.init)) }
                return [x.gathered(idx, shape: y), ints(first), ints(inverse), ints(counts)]
            })
        t["NonMaxSuppression"] = OpDef(
            infer: { c in
                let (b, s, k) = try nmsGeometry(c)
                let symbol = RuntimeDimension.lengthSymbol(of: c.node)
                if let v = c.node.graph?.valueLengths[symbol] {
                    guard v <= b * k * s else { throw c.fail("--dim '\(symbol)=max:\(v)' exceeds the \(b * k * s) boxes it can select") }
                    return [tt(.int64, [v, 3])]
                }
                if (0..<5).allSatisfy({ c.node.input($0) == nil || c.constant($0) != nil }) {
                    return [tt(.int64, [try nonMaxSuppression(c).count / 3, 3])]
                }
                // How many boxes pass is a run-time dimension (--dim NODE_len=max:BOUND); at most
                // every box of every class (fewer when max_output_boxes_per_class is a constant).
                let most = c.constant(2).map { b * k * min(s, max(0, Int(clamping: $0.ints.first ?? 0))) } ?? b * k * s
                var e = c.fail("its output's length is the number of boxes selected, known only at run time; give it a bound with --dim '\(symbol)=max:BOUND' (at most \(most)) to compute it at run time")
                e.runtimeInput = (0..<5).first { c.node.input($0) != nil && c.constant($0) == nil }
                e.lengthBound = (symbol, most)
                throw e
            },
            evaluate: { c, _ in
                let sel = try nonMaxSuppression(c)
                return [NDArray(.int64, shape: [sel.count / 3, 3], ints: sel.map(Int64.init))]
            })
        t["Pad"] = OpDef(infer: { c in [tt(try c.dtype(0), try padParams(c).shape)] })
        t["Trilu"] = OpDef(infer: { c in [tt(try c.dtype(0), try c.shape(0))] })
        t["DepthToSpace"] = OpDef(infer: { c in
            let s = try c.shape(0), b = c.int("blocksize", 1)
            guard b >= 1, b <= 1 << 16 else { throw c.invalid("blocksize \(b) must be between 1 and 65536") }
            guard s.count == 4, s[1] % (b * b) == 0 else { throw c.fail("needs a 4-D input whose channels divide by blocksize²") }
            return [tt(try c.dtype(0), [s[0], s[1] / (b * b), try Checked.mul(s[2], b), try Checked.mul(s[3], b)])]
        })
        t["SpaceToDepth"] = OpDef(infer: { c in
            let s = try c.shape(0), b = c.int("blocksize", 1)
            guard b >= 1, b <= 1 << 16 else { throw c.invalid("blocksize \(b) must be between 1 and 65536") }
            guard s.count == 4, s[2] % b == 0, s[3] % b == 0 else { throw c.fail("needs a 4-D input whose height and width divide by blocksize") }
            return [tt(try c.dtype(0), [s[0], try Checked.product([s[1], b, b]), s[2] / b, s[3] / b])]
        })
        // Traits (OpTraits): reshapes alias their input; these ops only move elements; Shape and Size read the shape.
        for op in ["Reshape", "Flatten", "Squeeze", "Unsqueeze"] { t[op]?.traits.formUnion([.aliasesInput, .movesElements]) }
        for op in ["Transpose", "Concat", "Split", "Slice", "Gather", "GatherElements", "Expand", "Tile", "DepthToSpace", "SpaceToDepth"] {
            t[op]?.traits.insert(.movesElements)
        }
        for op in ["Shape", "Size"] { t[op]?.traits.insert(.readsShapeOnly) }
        for op in ["DepthToSpace", "SpaceToDepth"] { t[op]?.traits.insert(.rowIndependent) }
        return t
    }

    // MARK: helpers

    static func constantValue(_ c: OpContext) throws -> (TensorType, NDArray) {
        if let t = c.node.tensor("value") {
            guard let a = NDArray(t) else { throw c.fail("its value of type \(t.dataType) is not supported") }
            return (t.type, a)
        }
        if let f = c.node.float("value_float") { return (tt(.float, []), NDArray(.float, shape: [], floats: [Double(f)])) }
        if let i = c.node.int("value_int") { return (tt(.int64, []), NDArray(.int64, shape: [], ints: [Int64(i)])) }
        if let fs = c.node.floats("value_floats") { return (tt(.float, [fs.count]), NDArray(.float, shape: [fs.count], floats: fs.map(Double.init))) }
        if let is_ = c.node.ints("value_ints") { return (tt(.int64, [is_.count]), NDArray(.int64, shape: [is_.count], ints: is_.map { Int64($0) })) }
        throw c.fail("its value kind (sparse or string) is not supported")
    }

    static func shapeRange(_ c: OpContext) throws -> [Int] {
        let s = try c.shape(0), r = s.count
        func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + r : v, 0), r) }
        let start = clamp(c.int("start", 0)), end = clamp(c.node.int("end") ?? r)
        return start < end ? Array(s[start..<end]) : []
    }

    static func reshapeTarget(_ c: OpContext) throws -> [Int] {
        let input = try c.shape(0)
        var target = try c.requireConstant(1, "target shape").ints.map { Int($0) }
        let allowZero = c.int("allowzero", 0) == 1
        for i in target.indices where target[i] == 0 && !allowZero {
            guard i < input.count else { throw c.invalid("target dimension \(i) is 0 (copy) but the input has rank \(input.count)") }
            target[i] = input[i]
        }
        let total = try Checked.product(input)
        guard target.allSatisfy({ $0 >= -1 }), target.filter({ $0 == -1 }).count <= 1 else { throw c.invalid("cannot reshape \(input) to \(target)") }
        if let unknown = target.firstIndex(of: -1) {
            let known = try Checked.product(target.enumerated().filter { $0.offset != unknown }.map(\.element))
            guard known > 0, total % known == 0 else { throw c.invalid("cannot reshape \(input) to \(target)") }
            target[unknown] = total / known
        }
        guard target.allSatisfy({ $0 >= 0 }), try Checked.product(target) == total else { throw c.invalid("cannot reshape \(input) to \(target)") }
        return target
    }

    static func flattenShape(_ c: OpContext) throws -> [Int] {
        let s = try c.shape(0)
        let a = c.int("axis", 1)
        let axis = a < 0 ? a + s.count : a
        guard axis >= 0, axis <= s.count else { throw c.invalid("axis \(a) is out of range for rank \(s.count)") }
        return [s[..<axis].reduce(1, *), s[axis...].reduce(1, *)]
    }

    static func squeezeShape(_ c: OpContext) throws -> [Int] {
        let s = try c.shape(0)
        guard let axes = try c.ints(attribute: "axes", orInput: 1) else { return s.filter { $0 != 1 } }
        let norm = Set(try axes.map { try c.axis($0, rank: s.count) })
        for a in norm where s[a] != 1 { throw c.fail("cannot squeeze axis \(a) of size \(s[a])") }
        return s.enumerated().filter { !norm.contains($0.offset) }.map(\.element)
    }

    static func unsqueezeShape(_ c: OpContext) throws -> [Int] {
        let s = try c.shape(0)
        guard let axes = try c.ints(attribute: "axes", orInput: 1) else { throw c.fail("has no axes") }
        let rank = s.count + axes.count
        let norm = Set(try axes.map { try c.axis($0, rank: rank) })
        guard norm.count == axes.count else { throw c.fail("axes \(axes) repeat") }
        var out: [Int] = []
        var it = s.makeIterator()
        for i in 0..<rank { out.append(norm.contains(i) ? 1 : it.next()!) }
        return out
    }

    static func perm(_ c: OpContext) throws -> ([Int], [Int]) {
        let s = try c.shape(0)
        let p = c.node.ints("perm") ?? Array((0..<s.count).reversed())
        guard p.count == s.count, Set(p) == Set(0..<s.count) else { throw c.invalid("perm \(p) is not a permutation of the input's \(s.count) axes") }
        return (p, s)
    }

    public static func splitShapes(_ c: OpContext) throws -> [[Int]] {
        let s = try c.shape(0)
        // (Checked before the axis for a clearer message; a scalar was once indexed here.)
        guard !s.isEmpty else { throw c.fail("input must have rank 1 or more, it is a scalar") }
        let axis = try c.axis(c.int("axis", 0), rank: s.count)
        let n = c.node.outputs.count
        var sizes: [Int]
        if let given = try c.ints(attribute: "split", orInput: 1) {
            sizes = given
        } else if let k = c.node.int("num_outputs") {
            guard k == n, k > 0 else { throw c.invalid("num_outputs \(k) differs from the node's \(n) outputs") }
            let chunk = s[axis] / k + (s[axis] % k == 0 ? 0 : 1)  // ceil without overflow
            sizes = (0..<k).map { min(chunk, max(0, s[axis] - $0 * chunk)) }
        } else {
            guard s[axis] % n == 0 else { throw c.fail("dimension \(s[axis]) does not split evenly into \(n) outputs") }
            sizes = [Int](repeating: s[axis] / n, count: n)
        }
        // Nonnegative first, then a checked sum: hostile sizes near Int.max once overflowed here (a fuzz finding).
        guard sizes.count == n, sizes.allSatisfy({ $0 >= 0 }), (try? Checked.sum(sizes)) == s[axis] else {
            throw c.invalid("split sizes \(sizes) do not add up to dimension \(s[axis]) for \(n) outputs")
        }
        return sizes.map { var o = s; o[axis] = $0; return o }
    }

    public struct SliceParams {
        public var starts: [Int]
        public var steps: [Int]
        public var shape: [Int]
        /// Per axis, the start as the model gives it (before adding the dimension to a negative
        /// one and clamping): what a run-time extent normalizes at run time.
        public var givenStarts: [Int] = []
    }

    /// Per-axis start, step and output size, after clamping as ONNX specifies.
    public static func sliceParams(_ c: OpContext) throws -> SliceParams {
        let s = try c.shape(0)
        let r = s.count
        let starts: [Int], ends: [Int], axesIn: [Int]?, stepsIn: [Int]?
        if c.opset < 10 || c.node.ints("starts") != nil {
            starts = c.node.ints("starts") ?? []
            ends = c.node.ints("ends") ?? []
            axesIn = c.node.ints("axes")
            stepsIn = nil
        } else {
            starts = try c.requireConstant(1, "starts").ints.map { Int(clamping: $0) }
            ends = try c.requireConstant(2, "ends").ints.map { Int(clamping: $0) }
            axesIn = c.has(3) ? try c.requireConstant(3, "axes").ints.map { Int($0) } : nil
            stepsIn = c.has(4) ? try c.requireConstant(4, "steps").ints.map { Int(clamping: $0) } : nil
        }
        let axes = try (axesIn ?? Array(0..<starts.count)).map { try c.axis($0, rank: r) }
        let steps = stepsIn ?? [Int](repeating: 1, count: starts.count)
        guard starts.count == ends.count, axes.count == starts.count, steps.count == starts.count else {
            throw c.fail("starts, ends, axes and steps have different lengths")
        }
        var p = SliceParams(starts: [Int](repeating: 0, count: r), steps: [Int](repeating: 1, count: r), shape: s,
                            givenStarts: [Int](repeating: 0, count: r))
        for (k, a) in axes.enumerated() {
            let dim = s[a], step = steps[k]
            guard step != 0 else { throw c.fail("a step is 0") }
            var st = starts[k], en = ends[k]
            if st < 0 { st += dim }
            if en < 0 { en += dim }
            if step > 0 {
                st = min(max(st, 0), dim); en = min(max(en, 0), dim)
                p.shape[a] = en > st ? (en - st + step - 1) / step : 0
            } else {
                st = min(max(st, 0), dim - 1); en = min(max(en, -1), dim - 1)
                p.shape[a] = st > en ? (st - en - step - 1) / (-step) : 0
            }
            p.starts[a] = st
            p.steps[a] = step
            p.givenStarts[a] = starts[k]
        }
        return p
    }

    static func expandShape(_ c: OpContext) throws -> [Int] {
        let target = try c.requireConstant(1, "shape").ints.map { Int($0) }
        guard let out = broadcastShapes(try c.shape(0), target) else {
            throw c.fail("input shape \(try c.shape(0)) cannot expand to \(target)")
        }
        return out
    }

    static func rangeCount(_ c: OpContext) throws -> Int {
        let s = try c.requireConstant(0, "start"), l = try c.requireConstant(1, "limit"), d = try c.requireConstant(2, "delta")
        guard s.count == 1, l.count == 1, d.count == 1 else { throw c.fail("start, limit and delta must be scalars") }
        if !s.isFloat {
            // Integer ranges are counted exactly (Doubles round 2^63-scale bounds).
            let (a, b, step) = (s.ints[0], l.ints[0], d.ints[0])
            guard step != 0 else { throw c.invalid("delta is 0") }
            let span = Double(b) - Double(a)
            guard (span / Double(step)).rounded(.up) <= Double(1 << 40) else { throw c.invalid("would make more than 2^40 elements") }
            let (diff, o) = b.subtractingReportingOverflow(a)
            guard !o else { throw c.invalid("the range \(a)..<\(b) overflows 64 bits") }
            let n = diff / step + (diff % step != 0 ? 1 : 0)
            return max(Int(n), 0)
        }
        let n = ((l.double(0) - s.double(0)) / d.double(0)).rounded(.up)
        guard n.isFinite else { throw c.fail("the number of elements is not finite") }
        return max(try Checked.int(n, "the number of elements"), 0)
    }

    /// Compress's input shape, axis (nil: the flattened input), the extent it selects along and the
    /// condition's length (at most that extent: longer conditions are refused).
    public static func compressGeometry(_ c: OpContext) throws -> (shape: [Int], axis: Int?, dim: Int, conditions: Int) {
        let x = try c.shape(0), cond = try c.shape(1)
        guard cond.count == 1 else { throw c.fail("its condition must be 1-D, got \(cond)") }
        let axis = try c.node.int("axis").map { try c.axis($0, rank: x.count) }
        let dim = try axis.map { x[$0] } ?? Checked.product(x)
        guard cond[0] <= dim else { throw c.fail("its condition has \(cond[0]) entries for \(dim) slices") }
        return (x, axis, dim, cond[0])
    }

    /// Unique's input viewed as `outer` x `slices` x `inner` (the axis in the middle; without an
    /// axis, one row of every element).
    public static func uniqueGeometry(_ c: OpContext) throws -> (shape: [Int], axis: Int?, outer: Int, slices: Int, inner: Int) {
        let x = try c.shape(0)
        guard let a = c.node.int("axis") else { return (x, nil, 1, try Checked.product(x), 1) }
        guard !x.isEmpty else { throw c.fail("Unique with an axis needs an input of rank 1 or more") }
        let axis = try c.axis(a, rank: x.count)
        return (x, axis, try Checked.product(Array(x[..<axis])), x[axis], try Checked.product(Array(x[(axis + 1)...])))
    }

    /// The distinct slices of `x` (ONNX Unique): each one's first occurrence, every slice's
    /// position among them, and how often each occurs; ascending (slices compared element by
    /// element, NaN after every number and equal to NaN) when `sorted`, else in order of first
    /// occurrence.
    static func uniqueSlices(_ x: NDArray, _ g: (shape: [Int], axis: Int?, outer: Int, slices: Int, inner: Int), sorted: Bool) -> (first: [Int], inverse: [Int], counts: [Int]) {
        func value(_ j: Int, _ k: Int) -> Double { x.double(((k / g.inner) * g.slices + j) * g.inner + k % g.inner) }
        let width = g.outer * g.inner
        func compare(_ a: Int, _ b: Int) -> Int {
            for k in 0..<width {
                let u = value(a, k), v = value(b, k)
                if u == v || (u.isNaN && v.isNaN) { continue }
                return u < v || (v.isNaN && !u.isNaN) ? -1 : 1
            }
            return 0
        }
        let order = (0..<g.slices).sorted { a, b in let r = compare(a, b); return r < 0 || (r == 0 && a < b) }
        var first: [Int] = [], counts: [Int] = [], inverse = [Int](repeating: 0, count: g.slices)
        for (s, j) in order.enumerated() {
            if s == 0 || compare(order[s - 1], j) != 0 { first.append(j); counts.append(0) }
            counts[counts.count - 1] += 1
            inverse[j] = first.count - 1
        }
        if !sorted {
            let perm = first.indices.sorted { first[$0] < first[$1] }
            var position = [Int](repeating: 0, count: perm.count)
            for (t, grp) in perm.enumerated() { position[grp] = t }
            inverse = inverse.map { position[$0] }
            first = perm.map { first[$0] }
            counts = perm.map { counts[$0] }
        }
        return (first, inverse, counts)
    }

    /// NonMaxSuppression's batches, boxes per batch and classes (boxes [B, S, 4], scores [B, C, S]).
    public static func nmsGeometry(_ c: OpContext) throws -> (batches: Int, boxes: Int, classes: Int) {
        let b = try c.shape(0), s = try c.shape(1)
        guard b.count == 3, b[2] == 4, s.count == 3, s[0] == b[0], s[2] == b[1] else {
            throw c.fail("boxes \(b) and scores \(s) must be [batches, boxes, 4] and [batches, classes, boxes]")
        }
        guard [0, 1].contains(c.int("center_point_box", 0)) else { throw c.fail("center_point_box must be 0 or 1") }
        for i in 2..<5 where c.node.input(i) != nil {
            guard let n = try? Checked.product(try c.shape(i)), n == 1 else { throw c.fail("its input \(i) must hold one value") }
        }
        _ = try Checked.product([b[0], s[1], b[1], 3])
        return (b[0], b[1], s[1])
    }

    /// ONNX NonMaxSuppression on constant inputs: (batch, class, box) triples, flattened. Per
    /// batch and class, boxes by descending score (ties: lower index first), above
    /// score_threshold when given, each kept unless its IoU with one kept before exceeds
    /// iou_threshold, at most max_output_boxes_per_class (default 0: none). In the boxes'
    /// precision (float32 boxes compare in float32, as ONNX's reference does).
    static func nonMaxSuppression(_ c: OpContext) throws -> [Int] {
        let (nb, ns, nc) = try nmsGeometry(c)
        guard let boxes = c.constant(0), let scores = c.constant(1) else { throw c.fail("its inputs are not constants") }
        let single = boxes.dataType == .float
        func r(_ v: Double) -> Double { single ? Double(Float(v)) : v }
        let maxOut = c.constant(2).map { max(0, Int(clamping: $0.ints.first ?? 0)) } ?? 0
        let iou = c.constant(3).map { r($0.double(0)) } ?? 0
        let scoreTh = c.constant(4).map { r($0.double(0)) }
        let center = c.int("center_point_box", 0) == 1
        func edges(_ b: Int, _ i: Int) -> (Double, Double, Double, Double) {
            let v = (0..<4).map { boxes.double((b * ns + i) * 4 + $0) }
            if center {
                let (hw, hh) = (r(v[2] / 2), r(v[3] / 2))
                return (r(v[0] - hw), r(v[0] + hw), r(v[1] - hh), r(v[1] + hh))
            }
            return (min(v[1], v[3]), max(v[1], v[3]), min(v[0], v[2]), max(v[0], v[2]))
        }
        func suppresses(_ b: Int, _ i: Int, _ j: Int) -> Bool {
            let (ax0, ax1, ay0, ay1) = edges(b, i), (bx0, bx1, by0, by1) = edges(b, j)
            let ix0 = max(ax0, bx0), ix1 = min(ax1, bx1), iy0 = max(ay0, by0), iy1 = min(ay1, by1)
            guard ix1 > ix0, iy1 > iy0 else { return false }
            let inter = r(r(ix1 - ix0) * r(iy1 - iy0))
            let a1 = r(r(ax1 - ax0) * r(ay1 - ay0)), a2 = r(r(bx1 - bx0) * r(by1 - by0))
            let union = r(r(a1 + a2) - inter)
            guard inter > 0, a1 > 0, a2 > 0, union > 0 else { return false }
            return r(inter / union) > iou
        }
        var out: [Int] = []
        for b in 0..<nb {
            for k in 0..<nc {
                let score = { (i: Int) in scores.double((b * nc + k) * ns + i) }
                let candidates = (0..<ns).filter { i in scoreTh.map { score(i) > $0 } ?? true }
                    .sorted { score($0) > score($1) || (score($0) == score($1) && $0 < $1) }
                var kept: [Int] = []
                for i in candidates where kept.count < maxOut {
                    if !kept.contains(where: { suppresses(b, i, $0) }) { kept.append(i); out += [b, k, i] }
                }
            }
        }
        return out
    }

    /// Flat indices of the nonzero elements (NaN counts as nonzero), in order.
    static func nonZeroIndices(_ x: NDArray) -> [Int] {
        (0..<x.count).filter { i in
            let v = x.double(i)
            return v != 0 || v.isNaN
        }
    }

    public struct PadParams {
        public var begins: [Int]
        public var ends: [Int]
        public var shape: [Int]
        public var mode: String
    }

    public static func padParams(_ c: OpContext) throws -> PadParams {
        let s = try c.shape(0)
        let r = s.count
        var pads: [Int]
        if let p = c.node.ints("pads") { pads = p } else { pads = try c.requireConstant(1, "pads").ints.map { Int($0) } }
        if c.has(3) {
            let axes = try c.requireConstant(3, "axes").ints.map { try c.axis(Int($0), rank: r) }
            guard pads.count == 2 * axes.count else { throw c.fail("pads and axes lengths disagree") }
            var full = [Int](repeating: 0, count: 2 * r)
            for (k, a) in axes.enumerated() { full[a] = pads[k]; full[a + r] = pads[k + axes.count] }
            pads = full
        }
        guard pads.count == 2 * r else { throw c.fail("pads has \(pads.count) values, the input rank \(r) needs \(2 * r)") }
        let mode = c.node.string("mode") ?? "constant"
        guard ["constant", "reflect", "edge", "wrap"].contains(mode) else { throw c.fail("mode '\(mode)' is not supported") }
        let out = try (0..<r).map { try Checked.sum([s[$0], pads[$0], pads[$0 + r]], "the padded size") }
        guard out.allSatisfy({ $0 >= 0 }) else { throw c.invalid("pads \(pads) make a negative dimension") }
        return PadParams(begins: Array(pads[..<r]), ends: Array(pads[r...]), shape: out, mode: mode)
    }
}

/// Flat offsets of every index of `shape`, with the given per-axis strides.
func indexGrid(_ shape: [Int], _ strides: [Int]) -> [Int] {
    var out: [Int] = []
    out.reserveCapacity(shape.reduce(1, *))
    forEachIndex(shape) { i in out.append(zip(i, strides).map { $0 * $1 }.reduce(0, +)) }
    return out
}

func forEachIndex(_ shape: [Int], _ body: ([Int]) -> Void) {
    let total = shape.reduce(1, *)
    guard total > 0 else { return }
    var idx = [Int](repeating: 0, count: shape.count)
    for _ in 0..<total {
        body(idx)
        var d = shape.count - 1
        while d >= 0 { idx[d] += 1; if idx[d] < shape[d] { break }; idx[d] = 0; d -= 1 }
    }
}
