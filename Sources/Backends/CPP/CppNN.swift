import Foundation
import SofieIR

/// Matrix products, convolutions, pooling, normalizations, top-k and resizing.
enum CppNN {
    /// Elements of packing buffer one sofie_rt::gemm call needs: none when it takes the
    /// row-streaming or dot-product path (at most 2 rows), else one KC x NC block of B with its
    /// columns rounded up to the widest tile (CppRuntime's constants, which the C++ is made from).
    static func packElements(m: Int, n: Int, k: Int, rsb: Int, csb: Int, csa: Int) -> Int {
        if m <= 2 && (csb == 1 || (rsb == 1 && csa == 1)) { return 0 }
        return m <= 0 ? 0 : convPackElements(n: n, k: k)
    }

    /// Elements of one packed block of B (KC rows, NC columns rounded up to the widest tile),
    /// the size sofie_rt::gemm_conv packs from the image whatever M (it always packs).
    static func convPackElements(n: Int, k: Int) -> Int {
        if n <= 0 || k <= 0 { return 0 }
        let nr = CppRuntime.maxNR
        return min(k, CppRuntime.kc) * ((min(n, CppRuntime.nc) + nr - 1) / nr * nr)
    }

    /// `call` once per image of a batch of `count`: in a loop over n (given "n") when there are
    /// several, else once (given nil: no offset to add).
    static func perImage(_ e: EmitContext, _ count: Int, _ call: (String?) -> String) {
        if count == 1 {
            e.line(call(nil))
        } else {
            e.line("for (int64_t n = 0; n < \(count); ++n)")
            e.line("    " + call("n"))
        }
    }

    /// A direct convolution kernel over each image of x (channels C in, M out): reserves its
    /// workspace (`elements` of y's type), declares the window, checks the C++ workspace formula
    /// against the planned size (`formula` compared by `relation`), then emits
    /// `kernel(x of the image, y of the image, epilogue)` once per image.
    static func directConv(_ e: EmitContext, _ g: NNOps.Geometry, x: CTensor, y: CTensor, ep: Epilogue, elements: Int, formula: String,
                           relation: String, _ kernel: (_ x: String, _ y: String, _ epilogue: String) -> String) {
        let C = x.shape[1], M = y.shape[1], inHW = x.shape[2...].reduce(1, *), outHW = y.shape[2...].reduce(1, *)
        let epilogue = ep.cpp(y.ctype, residualOffset: x.shape[0] == 1 ? "0" : "n * \(M * outHW)")
        e.workspace((elements * (x.dtype.byteSize ?? 8) + 7) / 8)
        e.block {
            e.line("static constexpr sofie_rt::Window win = \(window(g));")
            e.line("static_assert(\(formula) \(relation) \(elements), \"workspace sized for another formula\");")
            perImage(e, x.shape[0]) { n in
                kernel("\(x.ptr)\(n.map { " + \($0) * \(C * inHW)" } ?? "")", "\(y.ptr)\(n.map { " + \($0) * \(M * outHW)" } ?? "")", epilogue)
            }
        }
    }

    /// One GEMM call: C = [C +] A*B with strides; tuned kernel for floats, plain loops otherwise.
    static func gemmCall(_ e: EmitContext, _ t: DataType, m: Int, n: Int, k: Int, a: String, rsa: Int, csa: Int,
                         b: String, rsb: Int, csb: Int, c: String, ldc: Int, accumulate: Bool,
                         rowBias: String = "nullptr", colBias: String = "nullptr", epilogue: String = "{}", work: String,
                         convWindow: String? = nil, packedB: Bool = false) {
        gemmCall(e, t, m: DimExpr(m), n: DimExpr(n), k: DimExpr(k), a: a, rsa: DimExpr(rsa), csa: DimExpr(csa), b: b, rsb: DimExpr(rsb), csb: DimExpr(csb),
                 c: c, ldc: DimExpr(ldc), accumulate: accumulate, rowBias: rowBias, colBias: colBias, epilogue: epilogue, work: work,
                 convWindow: convWindow, packedB: packedB)
    }

    /// The same with run-time sizes and strides (CppRuntimeDims). With `convWindow` (the name of
    /// a sofie_rt::Window), B is one image and the product is the convolution's
    /// (sofie_rt::gemm_conv: B's strides unused, floating point only). With `packedB`, B is a
    /// constant stored packed (EmitContext.packedWeight; sofie_rt::gemm_packed).
    static func gemmCall(_ e: EmitContext, _ t: DataType, m mm: DimExpr, n nn: DimExpr, k kk: DimExpr, a: String, rsa rsaE: DimExpr, csa csaE: DimExpr,
                         b: String, rsb rsbE: DimExpr, csb csbE: DimExpr, c: String, ldc ldcE: DimExpr, accumulate: Bool,
                         rowBias: String = "nullptr", colBias: String = "nullptr", epilogue: String = "{}", work: String,
                         convWindow: String? = nil, packedB: Bool = false) {
        let m = e.cpp(mm), n = e.cpp(nn), k = e.cpp(kk), rsa = e.cpp(rsaE), csa = e.cpp(csaE), rsb = e.cpp(rsbE), csb = e.cpp(csbE), ldc = e.cpp(ldcE)
        let T = CppTypes.name(t)!
        // The arguments by name (sofie_rt::GemmArgs), each line only when it differs from the
        // default. A node's first product is `mm`, further ones mm2, mm3 (never redeclared).
        e.gemmsInNode += 1
        let v = e.gemmsInNode == 1 ? "mm" : "mm\(e.gemmsInNode)"
        e.line("sofie_rt::GemmArgs<\(T)> \(v);")
        e.line("\(v).M = \(m); \(v).N = \(n); \(v).K = \(k);")
        e.line("\(v).A = \(a); \(v).rsa = \(rsa);\(csaE != 1 ? " \(v).csa = \(csa);" : "")")
        if convWindow != nil || packedB {
            e.line("\(v).B = \(b);")
        } else {
            e.line("\(v).B = \(b); \(v).rsb = \(rsb);\(csbE != 1 ? " \(v).csb = \(csb);" : "")")
        }
        e.line("\(v).C = \(c); \(v).ldc = \(ldc);")
        if accumulate { e.line("\(v).accumulate = true;") }
        if t.isFloatingPoint {
            if rowBias != "nullptr" { e.line("\(v).row_bias = \(rowBias);") }
            if colBias != "nullptr" { e.line("\(v).col_bias = \(colBias);") }
            if epilogue != "{}" { e.line("\(v).epilogue = \(epilogue);") }
            if work != "nullptr" { e.line("\(v).work = \(work);") }
            e.line(convWindow.map { "sofie_rt::gemm_conv(\(v), \($0));" } ?? (packedB ? "sofie_rt::gemm_packed(\(v));" : "sofie_rt::gemm(\(v));"))
        } else {
            e.line("sofie_rt::gemm_plain(\(v));")
        }
    }

    static func window(_ g: NNOps.Geometry, transposed: Bool = false) -> String {
        // Pads to 3 spatial dims (D, H, W) with leading 1s.
        let n = g.kernel.count
        func pad(_ v: [Int], _ fill: Int) -> [Int] { [Int](repeating: fill, count: 3 - n) + v }
        let ins = Array(g.inputShape[2...]), outs = Array(g.outputShape[2...])
        return "{\(CppOps.intList(pad(ins, 1))), \(CppOps.intList(pad(outs, 1))), \(CppOps.intList(pad(g.kernel, 1))), \(CppOps.intList(pad(g.strides, 1))), \(CppOps.intList(pad(g.dilations, 1))), \(CppOps.intList(pad(g.padsBegin, 0)))}"
    }

    // sofie_rt::kDepthwiseMaxRow, kDepthwiseRowBuffer and kDepthwiseWork (made from these).
    static let depthwiseMaxRow = CppRuntime.depthwiseMaxRow
    static let depthwiseRowBuffer = CppRuntime.depthwiseRowBuffer
    static let depthwiseWork = CppRuntime.depthwiseWork

    /// Whether sofie_rt::depthwise_conv's row buffers hold this convolution's rows (outputs per
    /// row rounded up to 16, the most lanes of a 64-byte vector of floats).
    /// Workspace elements of sofie_rt::depthwise_plane for a 1-D or 2-D depthwise window (the
    /// C++ formula, checked against this one by a static_assert in the emitted code); nil for
    /// 3-D windows.
    static func depthwisePlaneElements(_ g: NNOps.Geometry, elementBytes: Int) -> Int? {
        let n = g.kernel.count
        guard n == 1 || n == 2 else { return nil }
        func at(_ a: [Int], _ i: Int, _ def: Int) -> Int { i < 0 ? def : a[i] }
        let h = n - 2, w = n - 1  // index of the row axis (-1 in 1-D) and of the column axis
        // Sizes come from the model: any overflow means "not this kernel" (nil).
        func mul(_ a: Int, _ b: Int) -> Int? { let r = a.multipliedReportingOverflow(by: b); return r.overflow ? nil : r.partialValue }
        func add(_ a: Int, _ b: Int) -> Int? { let r = a.addingReportingOverflow(b); return r.overflow ? nil : r.partialValue }
        let lw = 64 / elementBytes
        let outW = g.outputShape[g.outputShape.count - 1], outH = n == 2 ? g.outputShape[g.outputShape.count - 2] : 1
        let sw = g.strides[w], dw = g.dilations[w], kw = g.kernel[w]
        guard outW > 0, outH > 0, sw > 0, dw > 0, kw > 0, let wv = add(outW, lw - 1).map({ $0 / lw * lw }),
              let a = mul(wv - 1, sw), let b = mul(kw - 1, dw), let need = add(a, b).flatMap({ add($0, 1) }),
              let phase = add(need, sw - 1).map({ $0 / sw }),
              let r1 = mul(outH - 1, at(g.strides, h, 1)), let r2 = mul(at(g.kernel, h, 1) - 1, at(g.dilations, h, 1)),
              let rows = add(r1, r2).flatMap({ add($0, 1) }), let rs = mul(rows, sw) else { return nil }
        return mul(rs, phase)
    }

    /// Most output channels sofie_rt::conv_rows takes (up to 8 at any size, up to 16 on outputs
    /// of at most convRowsMaxPixels): with more, gemm_conv's packed blocks are reused by enough
    /// rows to pay for packing them (measured on AVX2 against gemm_conv, 3x3: 8 channels at
    /// 112x112 and 3 -> 8 at 112x112 1.46x faster direct, 16 channels at 32x32 1.25x, at 56x56
    /// and 112x112 0.93-0.96x).
    static let convRowsMaxChannels = 16
    static let convRowsMaxPixels = 1024
    /// Largest padded image (elements) sofie_rt::conv_rows copies; larger ones go through gemm_conv.
    static let convRowsBudget = 1 << 20

    /// sofie_rt::conv_rows' plan for a Conv node, nil when it takes another kernel: one group,
    /// float or double, a constant weight, and convRowsPlan's conditions on its geometry (any
    /// strides and dilations: the kernel splits rows into stride phases).
    static func convRowsPlan(_ n: Node, opset: Int) -> (mb: Int, u: Int, elements: Int)? {
        guard n.opType == "Conv" || (n.opType == "FusedConv" && SofieOps.isSofie(n)), let t = n.input(0)?.tensorType?.elementType, t == .float || t == .double,
              n.input(1)?.initializer != nil, let g = try? NNOps.convGeometry(OpContext(node: n, opset: opset)),
              g.group == 1, g.inputShape.count >= 3, g.outputShape.count >= 3 else { return nil }
        return convRowsPlan(g, channels: g.inputShape[1], outChannels: g.outputShape[1], elementBytes: t.byteSize ?? 8)
    }

    /// Whether an initializer is read, and only read, as the weight of Conv nodes that all take
    /// sofie_rt::conv_rows with the same channel block (it is then stored blocked only).
    static func readOnlyAsConvRowsWeight(_ v: Value, opset: Int) -> Bool {
        guard v.initializer != nil, !v.uses.isEmpty else { return false }
        var block: Int?
        for use in v.uses {
            guard use.index == 1, let plan = convRowsPlan(use.node, opset: opset), block == nil || block == plan.mb else { return false }
            block = plan.mb
        }
        return true
    }

    /// When a one-group convolution takes sofie_rt::conv_rows: its block of output channels,
    /// vectors of columns per step and workspace (elements, for the widest vectors, 64 bytes;
    /// the C++ formula for the target's vectors is checked against it by a static_assert).
    static func convRowsPlan(_ g: NNOps.Geometry, channels C: Int, outChannels M: Int, elementBytes: Int) -> (mb: Int, u: Int, elements: Int)? {
        let n = g.kernel.count
        // Pointwise (1x1) convolutions are products with the image as it stands (gemm, 3-4x
        // faster than this kernel on them).
        guard n == 1 || n == 2, M > 0, M <= convRowsMaxChannels, C > 0, let sw = g.strides.last, sw > 0, !g.kernel.allSatisfy({ $0 == 1 }) else { return nil }
        let pixels = g.outputShape[2...].reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        let outW = g.outputShape[g.outputShape.count - 1], lanes = 64 / elementBytes
        // Rows of at most 8 outputs (one AVX2 vector of floats): 8 channels x 1 vector of sums.
        // Wider rows: 2 vectors of columns x 6 or 4 channels, whichever leaves fewer unused
        // channels in the last block (8 and 16 channels: 4, 1.1-1.5x faster than 6 measured).
        let (mb, u) = outW <= 8 ? (8, 1) : (4 - M % 4) % 4 < (6 - M % 6) % 6 ? (4, 2) : (6, 2)
        guard M <= 8 || pixels <= convRowsMaxPixels else { return nil }
        let inH = n == 2 ? g.inputShape[g.inputShape.count - 2] : 1
        let kw = g.kernel[n - 1], dw = g.dilations[n - 1]
        // Sizes come from the model: any overflow means "not this kernel".
        func mul(_ a: Int, _ b: Int) -> Int? { let r = a.multipliedReportingOverflow(by: b); return r.overflow ? nil : r.partialValue }
        func add(_ a: Int, _ b: Int) -> Int? { let r = a.addingReportingOverflow(b); return r.overflow ? nil : r.partialValue }
        // Each row in sw phases of (columns rounded up to whole steps + taps' reach / sw).
        guard outW > 0, inH > 0, kw > 0, dw > 0, let wv = add(outW, u * lanes - 1).map({ $0 / (u * lanes) * (u * lanes) }),
              let tail = mul(kw - 1, dw), let phase = add(wv, tail / sw), let width = mul(sw, phase), let rows = mul(C, inH), let elements = mul(rows, width),
              elements <= convRowsBudget else { return nil }
        return (mb, u, elements)
    }

    /// Most output pixels sofie_rt::conv_pixels takes. Below one register tile's columns (NR,
    /// 16 on AVX2) gemm_conv's tiles are mostly padding (conv_pixels 2.7-3.3x faster on 4 and 16
    /// pixels); up to a few hundred, the weight packed once at compile time still beats packing
    /// the im2col blocks per call (3x3 on AVX2: 6x6 1.87x, 7x7 1.23x, 14x14 1.12x, 28x28 1.03x,
    /// 56x56 0.89x).
    static let convPixelsMaxPixels = 256
    /// Largest workspace (elements) of sofie_rt::conv_pixels: the P x K im2col rows and the
    /// P x M product (4 MB of floats).
    static let convPixelsBudget = 1 << 20

    /// sofie_rt::conv_pixels' workspace (elements) for a Conv node, nil when it takes another
    /// kernel: one group, float or double, a constant weight, not conv_rows, at most
    /// convPixelsMaxPixels output pixels, and output channels that fill the packed weight's
    /// 32-column slivers to at least 8/9.
    static func convPixelsPlan(_ n: Node, opset: Int) -> Int? {
        guard n.opType == "Conv" || (n.opType == "FusedConv" && SofieOps.isSofie(n)), let t = n.input(0)?.tensorType?.elementType, t == .float || t == .double,
              n.input(1)?.initializer != nil, convRowsPlan(n, opset: opset) == nil, let g = try? NNOps.convGeometry(OpContext(node: n, opset: opset)),
              g.group == 1, g.inputShape.count >= 3, g.outputShape.count >= 3 else { return nil }
        let C = g.inputShape[1], M = g.outputShape[1], sliver = EmitContext.sliver
        // Sizes come from the model: any overflow means "not this kernel".
        func product(_ xs: some Sequence<Int>) -> Int? {
            var r = 1
            for x in xs {
                let m = r.multipliedReportingOverflow(by: x)
                guard x >= 0, !m.overflow else { return nil }
                r = m.partialValue
            }
            return r
        }
        guard let P = product(g.outputShape[2...]), P > 0, P <= convPixelsMaxPixels, C > 0, M > 0, M <= convPixelsBudget,
              let K = product([C] + g.kernel), K > 0, K <= convPixelsBudget, (M + sliver - 1) / sliver * sliver * 8 <= M * 9,
              let elements = product([P, K + M]), elements <= convPixelsBudget else { return nil }
        // A pointwise convolution is a product with the image as it stands (gemm reads it
        // without gathering; through conv_pixels regnet_small and mobilenet_v3_small ran
        // 0.96-0.97x).
        let pointwise = g.kernel.allSatisfy { $0 == 1 } && g.strides.allSatisfy { $0 == 1 } && g.padsBegin.allSatisfy { $0 == 0 } && g.padsEnd.allSatisfy { $0 == 0 }
        return pointwise ? nil : elements
    }

    /// Whether an initializer is read, and only read, as the weight of Conv nodes that take
    /// sofie_rt::conv_pixels (it is then stored packed only, transposed).
    static func readOnlyAsConvPixelsWeight(_ v: Value, opset: Int) -> Bool {
        guard v.initializer != nil, !v.uses.isEmpty else { return false }
        return v.uses.allSatisfy { $0.index == 1 && convPixelsPlan($0.node, opset: opset) != nil }
    }

    /// Largest depthwise plane buffer (elements) the emitter reserves; larger planes use the row kernel.
    static let depthwisePlaneBudget = 1 << 22

    static func depthwiseFits(_ g: NNOps.Geometry) -> Bool {
        let w = g.outputShape.last!, s = g.strides.last!, d = g.dilations.last!, k = g.kernel.last!
        guard w > 0, w <= depthwiseMaxRow, s > 0, d > 0, k > 0 else { return false }
        let wp = (w + 15) / 16 * 16
        // Strides and dilations come from the model: an overflowing row does not fit.
        let a = (wp - 1).multipliedReportingOverflow(by: s), b = (k - 1).multipliedReportingOverflow(by: d)
        guard !a.overflow, !b.overflow else { return false }
        let need = a.partialValue.addingReportingOverflow(b.partialValue)
        return wp <= depthwiseMaxRow && !need.overflow && need.partialValue < depthwiseRowBuffer
    }

    static var table: [String: CppOps.Emit] {
        var t: [String: CppOps.Emit] = [:]
        t["MatMul"] = { e, n in
            // A constant B stored packed: all of A's rows (A is contiguous, its batch dimensions
            // lead) as one product with the slivers.
            if let bv = n.input(1), let bt = bv.initializer, let bp = e.packedWeight(bv, transposed: false) {
                let a = try e.input(n, 0), y = try e.output(n, 0)
                let K = bt.dims[0], N = bt.dims[1]
                let M = a.dims.dropLast().reduce(DimExpr(1), *)
                e.block {
                    gemmCall(e, a.dtype, m: M, n: DimExpr(N), k: DimExpr(K), a: a.ptr, rsa: DimExpr(K), csa: 1, b: bp, rsb: DimExpr(N), csb: 1,
                             c: y.ptr, ldc: DimExpr(N), accumulate: false, work: "nullptr", packedB: true)
                }
                return
            }
            let a = try e.input(n, 0), b = try e.input(n, 1), y = try e.output(n, 0)
            let sa = a.dims.count == 1 ? [1] + a.dims : a.dims
            let sb = b.dims.count == 1 ? b.dims + [1] : b.dims
            var M = sa[sa.count - 2], K = sa[sa.count - 1], N = sb[sb.count - 1]
            var batchA = Array(sa.dropLast(2))
            let batchB = Array(sb.dropLast(2))
            // A's batch of matrices times one B (a dense layer over a sequence or set): one
            // product of all of A's rows (A is contiguous), which also covers a run-time batch.
            if batchB.isEmpty && !batchA.isEmpty && (a.hasRuntimeExtents || y.hasRuntimeExtents) {
                M = batchA.reduce(M, *)
                batchA = []
            }
            let batch: [DimExpr]
            if let ba = batchA.map(\.constant) as? [Int], let bb = batchB.map(\.constant) as? [Int] {
                batch = broadcastShapes(ba, bb)!.map { DimExpr($0) }
            } else {
                // Run-time extents: the output's batch dims (shape inference checked broadcasting).
                batch = Array(y.dims.dropLast(a.dims.count == 1 || b.dims.count == 1 ? 1 : 2).suffix(max(batchA.count, batchB.count)))
            }
            let stA = EmitContext.broadcastStrides(batchA, batch).map { $0 * M * K }
            let stB = EmitContext.broadcastStrides(batchB, batch).map { $0 * K * N }
            let ost = EmitContext.strides(batch).map { $0 * M * N }
            // Packing space for the largest product (the sizes at the bounds).
            let ws = a.dtype.isFloatingPoint ? packElements(m: try e.bound(M), n: try e.bound(N), k: try e.bound(K), rsb: try e.bound(N), csb: 1, csa: 1) : 0
            e.workspace(ws)
            e.block {
                if ws > 0 { e.line("\(y.ctype)* const pack = static_cast<\(y.ctype)*>(work);") }
                e.loops(batch, prefix: "b") { v in
                    gemmCall(e, a.dtype, m: M, n: N, k: K, a: EmitContext.at(a.ptr, e.offset(v, stA)), rsa: K, csa: 1,
                             b: EmitContext.at(b.ptr, e.offset(v, stB)), rsb: N, csb: 1,
                             c: EmitContext.at(y.ptr, e.offset(v, ost)), ldc: N, accumulate: false, work: ws > 0 ? "pack" : "nullptr")
                }
            }
        }
        t["Gemm"] = { e, n in
            let a = try e.input(n, 0), y = try e.output(n, 0)
            let c = try e.optionalInput(n, 2)
            let ep = try Epilogue(e, n, y)
            let ta = (n.int("transA") ?? 0) == 1, tb = (n.int("transB") ?? 0) == 1
            let alpha = n.float("alpha") ?? 1, beta = c == nil ? 0 : (n.float("beta") ?? 1)
            // M may be a run-time extent (rows of a set or sequence); N and K are the weights'.
            let Md = y.dims[0], M = try e.bound(Md), N = y.shape[1], K = ta ? a.shape[0] : a.shape[1]
            guard y.dims[1].isConstant, a.dims[ta ? 0 : 1].isConstant else { throw CompileError(node: n, "Gemm's inner and column sizes must not follow a run-time dimension") }
            let rsa = DimExpr(ta ? 1 : K), csa = ta ? Md : DimExpr(1)
            // A constant B stored transposed (transB = 1, PyTorch's Linear) is kept only as a
            // compile-time transposed copy (contiguous rows of B: streams and packs fastest).
            // Few rows and few columns of a long constant B (a dense layer's last outputs): a
            // transposed copy too, so that each output is one contiguous dot product (stored
            // only so when every reader of B is such a Gemm: EmitContext.readsNarrowB).
            var bPtr: String, rsb = tb ? 1 : N, csb = tb ? K : 1
            var packedB = false
            if let bv = n.input(1), let bp = e.packedWeight(bv, transposed: tb) {
                (bPtr, rsb, csb, packedB) = (bp, N, 1, true)
            } else if let bv = n.input(1), e.storedTransposed.contains(ObjectIdentifier(bv)), let bt = e.transposedWeight(bv) {
                (bPtr, rsb, csb) = tb ? (bt, N, 1) : (bt, 1, K)
            } else {
                bPtr = try e.input(n, 1).ptr
                if EmitContext.isNarrowB(rows: M, columns: N, depth: K), !tb, !ta, a.dtype.isFloatingPoint, let bt = e.transposedWeight(n.input(1)!) {
                    (bPtr, rsb, csb) = (bt, 1, K)
                }
            }
            let ws = a.dtype.isFloatingPoint && !packedB ? packElements(m: M, n: N, k: K, rsb: rsb, csb: csb, csa: try e.bound(csa)) : 0
            let work = ws > 0 ? "pack" : "nullptr"
            e.workspace(ws)
            e.block {
                if ws > 0 { e.line("\(y.ctype)* const pack = static_cast<\(y.ctype)*>(work);") }
                // Fast path: bias of shape [N] or [1,N] with alpha = beta = 1 goes into the GEMM epilogue.
                if let c, alpha == 1, beta == 1, c.count == N, c.shape.last == N || N == 1, !c.hasRuntimeExtents, a.dtype.isFloatingPoint {
                    gemmCall(e, a.dtype, m: Md, n: DimExpr(N), k: DimExpr(K), a: a.ptr, rsa: rsa, csa: csa, b: bPtr, rsb: DimExpr(rsb), csb: DimExpr(csb),
                             c: y.ptr, ldc: DimExpr(N), accumulate: false, colBias: c.ptr, epilogue: ep.cpp(y.ctype), work: work, packedB: packedB)
                    return
                }
                if c == nil && alpha == 1 && a.dtype.isFloatingPoint {
                    gemmCall(e, a.dtype, m: Md, n: DimExpr(N), k: DimExpr(K), a: a.ptr, rsa: rsa, csa: csa, b: bPtr, rsb: DimExpr(rsb), csb: DimExpr(csb),
                             c: y.ptr, ldc: DimExpr(N), accumulate: false, epilogue: ep.cpp(y.ctype), work: work, packedB: packedB)
                    return
                }
                defer { if !ep.isEmpty { e.line("sofie_rt::epilogue<\(y.ctype)>(\(y.ptr), \(e.cpp(Md)), \(N), \(N), \(ep.cpp(y.ctype)));") } }
                gemmCall(e, a.dtype, m: Md, n: DimExpr(N), k: DimExpr(K), a: a.ptr, rsa: rsa, csa: csa, b: bPtr, rsb: DimExpr(rsb), csb: DimExpr(csb),
                         c: y.ptr, ldc: DimExpr(N), accumulate: false, work: work, packedB: packedB)
                if alpha != 1 || c != nil {
                    let T = y.ctype
                    e.line("\(T)* const y = \(y.ptr);")
                    if let c {
                        let st = EmitContext.broadcastStrides(c.dims, [Md, DimExpr(N)])
                        e.line("const \(c.ctype)* const cc = \(c.ptr);")
                        e.line("for (int64_t i = 0; i < \(e.cpp(Md)); ++i) for (int64_t j = 0; j < \(N); ++j) y[i * \(N) + j] = \(CppOps.literal(Double(alpha), y.dtype)) * y[i * \(N) + j] + \(CppOps.literal(Double(beta), y.dtype)) * cc[\(e.offset(["i", "j"], st))];")
                    } else {
                        e.line("for (int64_t i = 0; i < \(e.count(y)); ++i) y[i] = \(CppOps.literal(Double(alpha), y.dtype)) * y[i];")
                    }
                }
            }
        }
        t["Conv"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            let bias = try e.optionalInput(n, 2)
            let ep = try Epilogue(e, n, y)
            guard x.dtype.isFloatingPoint else { throw CompileError(node: n, "Conv on \(x.dtype) is not supported (float32 and float64 are)") }
            guard x.shape.count <= 5 else { throw CompileError(node: n, "Conv with more than 3 spatial dimensions is not supported") }
            let g = try NNOps.convGeometry(OpContext(node: n, opset: e.opset))
            let C = x.shape[1], M = y.shape[1], G = g.group
            let inHW = x.shape[2...].reduce(1, *), outHW = y.shape[2...].reduce(1, *)
            // Few output channels, one group, 1-D or 2-D, constant weights: the direct kernel
            // (sofie_rt::conv_rows), no packing per call. The weight is stored blocked for it
            // (EmitContext.storedBlocked: only so when every reader of the weight takes this path).
            if let plan = convRowsPlan(n, opset: e.opset), let wv = n.input(1) {
                guard let wp = e.blockedConvWeight(wv, mb: plan.mb) else {
                    throw CompileError(node: n, "the weight '\(wv.name)' does not hold the \(M) x \(C) x kernel values its shape gives")
                }
                directConv(e, g, x: x, y: y, ep: ep, elements: plan.elements, formula: "sofie_rt::conv_rows_elements<\(y.ctype), \(plan.u)>(win, \(C))", relation: "<=") { xp, yp, epilogue in
                    "sofie_rt::conv_rows<\(y.ctype), \(plan.mb), \(plan.u)>(\(M), \(C), \(xp), \(wp), \(bias?.ptr ?? "nullptr"), win, \(yp), \(epilogue), static_cast<\(y.ctype)*>(work));"
                }
                return
            }
            // Few output pixels: im2col rows times the stored packed transposed weight
            // (sofie_rt::conv_pixels, gemm_packed), transposed into the output.
            if let elements = convPixelsPlan(n, opset: e.opset), let wv = n.input(1) {
                guard let wp = e.packedConvWeight(wv) else {
                    throw CompileError(node: n, "the weight '\(wv.name)' does not hold the \(M) x \(C) x kernel values its shape gives")
                }
                directConv(e, g, x: x, y: y, ep: ep, elements: elements, formula: "sofie_rt::conv_pixels_elements<\(y.ctype)>(win, \(C), \(M))", relation: "==") { xp, yp, epilogue in
                    "sofie_rt::conv_pixels<\(y.ctype)>(\(M), \(C), \(xp), \(wp), \(bias?.ptr ?? "nullptr"), win, \(yp), \(epilogue), static_cast<\(y.ctype)*>(work));"
                }
                return
            }
            let w = try e.input(n, 1)
            let Kc = (C / G) * g.kernel.reduce(1, *)
            let pointwise = g.kernel.allSatisfy { $0 == 1 } && g.strides.allSatisfy { $0 == 1 } && g.padsBegin.allSatisfy { $0 == 0 } && g.padsEnd.allSatisfy { $0 == 0 }
            // Depthwise (one input channel per group): a direct kernel, no im2col, when its row buffers fit.
            if G == C && G > 1 && M % G == 0, let plane = depthwisePlaneElements(g, elementBytes: x.dtype.byteSize ?? 4),
               plane <= depthwisePlaneBudget {
                directConv(e, g, x: x, y: y, ep: ep, elements: plane, formula: "sofie_rt::depthwise_plane_elements<\(y.ctype)>(win)", relation: "==") { xp, yp, epilogue in
                    "sofie_rt::depthwise_plane<\(y.ctype)>(\(M), \(M / G), \(xp), \(w.ptr), \(bias?.ptr ?? "nullptr"), win, \(yp), \(epilogue), static_cast<\(y.ctype)*>(work));"
                }
                return
            }
            if G == C && G > 1 && M % G == 0 && depthwiseFits(g) {
                let epilogue = ep.cpp(y.ctype, residualOffset: x.shape[0] == 1 ? "0" : "n * \(M * outHW)")
                e.workspace(depthwiseWork)
                e.block {
                    e.line("static constexpr sofie_rt::Window win = \(window(g));")
                    perImage(e, x.shape[0]) { n in
                        "sofie_rt::depthwise_conv<\(y.ctype)>(\(M), \(M / G), \(x.ptr)\(n.map { " + \($0) * \(C * inHW)" } ?? ""), \(w.ptr), \(bias?.ptr ?? "nullptr"), win, \(y.ptr)\(n.map { " + \($0) * \(M * outHW)" } ?? ""), \(epilogue), static_cast<\(y.ctype)*>(work));"
                    }
                }
                return
            }
            // Pointwise: the image is B as it stands. Otherwise B is its im2col matrix, which
            // sofie_rt::gemm_conv packs block by block straight from the image.
            let ws = pointwise ? packElements(m: M / G, n: outHW, k: Kc, rsb: outHW, csb: 1, csa: 1) : convPackElements(n: outHW, k: Kc)
            e.workspace(ws)
            e.block {
                if ws > 0 { e.line("\(x.ctype)* const pack = static_cast<\(x.ctype)*>(work);") }
                if !pointwise { e.line("static constexpr sofie_rt::Window win = \(window(g));") }
                // Loops over images and groups; an extent of 1 gets no loop (its index is 0).
                let N = x.shape[0]
                let iv = [N == 1 ? "0" : "n", G == 1 ? "0" : "g"]
                var depth = 0
                if N != 1 { e.line("for (int64_t n = 0; n < \(N); ++n) {"); depth += 1 }
                if G != 1 { e.line(String(repeating: "    ", count: depth) + "for (int64_t g = 0; g < \(G); ++g) {"); depth += 1 }
                let before = e.body.count
                let yOffset = EmitContext.offset(iv, [M * outHW, (M / G) * outHW])
                e.line("const \(x.ctype)* const xg = \(EmitContext.at(x.ptr, EmitContext.offset(iv, [C * inHW, (C / G) * inHW])));")
                e.line("\(y.ctype)* const yg = \(EmitContext.at(y.ptr, yOffset));")
                gemmCall(e, x.dtype, m: M / G, n: outHW, k: Kc, a: EmitContext.at(w.ptr, EmitContext.offset([iv[1]], [(M / G) * Kc])), rsa: Kc, csa: 1,
                         b: "xg", rsb: outHW, csb: 1, c: "yg", ldc: outHW, accumulate: false,
                         rowBias: bias.map { EmitContext.at($0.ptr, EmitContext.offset([iv[1]], [M / G])) } ?? "nullptr",
                         epilogue: ep.cpp(y.ctype, residualOffset: yOffset), work: ws > 0 ? "pack" : "nullptr",
                         convWindow: pointwise ? nil : "win")
                for i in before..<e.body.count { e.body[i] = String(repeating: "    ", count: depth) + e.body[i] }
                for d in stride(from: depth - 1, through: 0, by: -1) { e.line(String(repeating: "    ", count: d) + "}") }
            }
        }
        t["ConvTranspose"] = { e, n in
            let x = try e.input(n, 0), w = try e.input(n, 1), y = try e.output(n, 0)
            let bias = try e.optionalInput(n, 2)
            guard x.dtype.isFloatingPoint else { throw CompileError(node: n, "ConvTranspose on \(x.dtype) is not supported") }
            guard x.shape.count <= 5 else { throw CompileError(node: n, "more than 3 spatial dimensions are not supported") }
            let g = try NNOps.convTransposeGeometry(OpContext(node: n, opset: e.opset))
            let C = x.shape[1], M = y.shape[1], G = g.group
            let inHW = x.shape[2...].reduce(1, *), outHW = y.shape[2...].reduce(1, *)
            let kk = g.kernel.reduce(1, *)
            let rowsOut = (M / G) * kk
            let ws = packElements(m: rowsOut, n: inHW, k: C / G, rsb: inHW, csb: 1, csa: rowsOut)
            e.workspace(ws + rowsOut * inHW)
            // For col2im the roles flip: the columns have the input's spatial size.
            var geo = g
            geo.inputShape = x.shape
            geo.outputShape = y.shape
            e.block {
                e.line("\(x.ctype)* const pack = static_cast<\(x.ctype)*>(work);")
                e.line("\(x.ctype)* const cols = pack + \(ws);")
                e.line("static constexpr sofie_rt::Window win = \(window(geo));")
                if let bias {
                    e.line("for (int64_t n = 0; n < \(y.shape[0]); ++n) for (int64_t m = 0; m < \(M); ++m) std::fill_n(\(y.ptr) + (n * \(M) + m) * \(outHW), \(outHW), \(bias.ptr)[m]);")
                } else {
                    e.line("std::fill_n(\(y.ptr), \(y.count), \(y.ctype)(0));")
                }
                e.line("for (int64_t n = 0; n < \(x.shape[0]); ++n)")
                e.line("    for (int64_t g = 0; g < \(G); ++g) {")
                let before = e.body.count
                // cols[(m, k), hw] = sum_c W[c, (m, k)] * X[c, hw] over this group's input channels.
                gemmCall(e, x.dtype, m: rowsOut, n: inHW, k: C / G, a: "\(w.ptr) + g * \((C / G) * rowsOut)", rsa: 1, csa: rowsOut,
                         b: "\(x.ptr) + (n * \(C) + g * \(C / G)) * \(inHW)", rsb: inHW, csb: 1, c: "cols", ldc: inHW, accumulate: false,
                         work: ws > 0 ? "pack" : "nullptr")
                e.line("sofie_rt::col2im_add(cols, \(M / G), win, \(y.ptr) + (n * \(M) + g * \(M / G)) * \(outHW));")
                for i in before..<e.body.count { e.body[i] = "        " + e.body[i] }
                e.line("    }")
            }
        }
        for op in ["MaxPool", "AveragePool", "LpPool"] {
            t[op] = { e, n in
                let x = try e.input(n, 0), y = try e.output(n, 0)
                guard x.shape.count <= 5 else { throw CompileError(node: n, "more than 3 spatial dimensions are not supported") }
                let g = try NNOps.poolGeometry(OpContext(node: n, opset: e.opset))
                let planes = x.shape[0] * x.shape[1]
                let inHW = x.shape[2...].reduce(1, *), outHW = y.shape[2...].reduce(1, *)
                let indices = n.outputs.count > 1 ? n.output(1) : nil
                let columnMajor = indices != nil && (n.int("storage_order") ?? 0) == 1
                let kind: String
                switch op {
                case "MaxPool": kind = "Max"
                case "LpPool": kind = "Lp"
                default: kind = (n.int("count_include_pad") ?? 0) == 1 ? "AvgIncludePad" : "Avg"
                }
                let simple2D = op == "MaxPool" && indices == nil && g.kernel.count == 2 && g.dilations.allSatisfy { $0 == 1 } && x.dtype.isFloatingPoint
                try e.block {
                    e.line("static constexpr sofie_rt::Window win = \(window(g));")
                    if let idx = indices {
                        let it = try e.tensor(idx)
                        e.line("for (int64_t p = 0; p < \(planes); ++p) sofie_rt::pool(\(x.ptr) + p * \(inHW), win, sofie_rt::Pool::Max, 0.0, \(y.ptr) + p * \(outHW), \(it.ptr) + p * \(outHW), p * \(inHW));")
                        if columnMajor {
                            // storage_order=1: the index within each plane counts in column-major order.
                            let dims = Array(x.shape[2...])
                            let rowStrides = NDArray.strides(dims)
                            var colStrides = [Int](repeating: 1, count: dims.count)
                            for d in 1..<max(dims.count, 1) where dims.count > 1 { colStrides[d] = colStrides[d - 1] * dims[d - 1] }
                            e.line("for (int64_t i = 0; i < \(planes * outHW); ++i) {")
                            e.line("    const int64_t base = (i / \(outHW)) * \(inHW); int64_t r = \(it.ptr)[i] - base, c = 0;")
                            for d in dims.indices { e.line("    c += (r / \(rowStrides[d])) * \(colStrides[d]); r %= \(rowStrides[d]);") }
                            e.line("    \(it.ptr)[i] = base + c;")
                            e.line("}")
                        }
                    } else if simple2D {
                        e.line("for (int64_t p = 0; p < \(planes); ++p) sofie_rt::max_pool2d(\(x.ptr) + p * \(inHW), win, \(y.ptr) + p * \(outHW));")
                    } else {
                        e.line("for (int64_t p = 0; p < \(planes); ++p) sofie_rt::pool(\(x.ptr) + p * \(inHW), win, sofie_rt::Pool::\(kind), \(Double(n.int("p") ?? 2)), \(y.ptr) + p * \(outHW), static_cast<int64_t*>(nullptr), 0);")
                    }
                }
            }
        }
        for op in ["GlobalAveragePool", "GlobalMaxPool"] {
            t[op] = { e, n in
                let x = try e.input(n, 0), y = try e.output(n, 0)
                let planes = x.shape[0] * x.shape[1], hw = x.shape[2...].reduce(1, *)
                e.line("for (int64_t p = 0; p < \(planes); ++p) {")
                e.line("    const \(x.ctype)* x = \(x.ptr) + p * \(hw);")
                if op == "GlobalMaxPool" {
                    e.line("    \(x.ctype) m = x[0];")
                    e.line("    for (int64_t i = 1; i < \(hw); ++i) m = std::max(m, x[i]);")
                    e.line("    \(y.ptr)[p] = m;")
                } else {
                    e.line("    double s = 0;")
                    e.line("    for (int64_t i = 0; i < \(hw); ++i) s += x[i];")
                    e.line("    \(y.ptr)[p] = static_cast<\(y.ctype)>(s / \(hw).0);")
                }
                e.line("}")
            }
        }
        t["BatchNormalization"] = { e, n in
            let x = try e.input(n, 0), s = try e.input(n, 1), b = try e.input(n, 2), m = try e.input(n, 3), v = try e.input(n, 4), y = try e.output(n, 0)
            let C = x.shape[1], hw = x.shape[2...].reduce(1, *)
            if (n.int("training_mode") ?? 0) == 1 {
                guard e.opset >= 14, n.outputs.count <= 3 else { throw CompileError(node: n, "training mode of opsets before 14 (saved mean/variance outputs) is not supported") }
                // Batch statistics (population variance, in double), normalized with them; the
                // running statistics move by `momentum` towards them.
                let momentum = Double(n.float("momentum") ?? 0.9)
                let rm = n.outputs.count > 1 ? try n.output(1).map { try e.tensor($0) } : nil
                let rv = n.outputs.count > 2 ? try n.output(2).map { try e.tensor($0) } : nil
                let N = x.shape[0], T = x.ctype, count = N * hw
                e.line("for (int64_t c = 0; c < \(C); ++c) {")
                e.line("    double mean = 0, var = 0;")
                e.line("    for (int64_t n = 0; n < \(N); ++n) for (int64_t i = 0; i < \(hw); ++i) mean += \(x.ptr)[(n * \(C) + c) * \(hw) + i];")
                e.line("    mean /= \(count).0;")
                e.line("    for (int64_t n = 0; n < \(N); ++n) for (int64_t i = 0; i < \(hw); ++i) { const double d = \(x.ptr)[(n * \(C) + c) * \(hw) + i] - mean; var += d * d; }")
                e.line("    var /= \(count).0;")
                e.line("    const double k = static_cast<double>(\(s.ptr)[c]) / std::sqrt(var + \(Double(n.float("epsilon") ?? 1e-5)));")
                e.line("    for (int64_t n = 0; n < \(N); ++n) for (int64_t i = 0; i < \(hw); ++i) {")
                e.line("        const int64_t at = (n * \(C) + c) * \(hw) + i;")
                e.line("        \(y.ptr)[at] = static_cast<\(T)>((\(x.ptr)[at] - mean) * k + static_cast<double>(\(b.ptr)[c]));")
                e.line("    }")
                if let rm { e.line("    \(rm.ptr)[c] = static_cast<\(rm.ctype)>(static_cast<double>(\(m.ptr)[c]) * \(momentum) + mean * \(1 - momentum));") }
                if let rv { e.line("    \(rv.ptr)[c] = static_cast<\(rv.ctype)>(static_cast<double>(\(v.ptr)[c]) * \(momentum) + var * \(1 - momentum));") }
                e.line("}")
                return
            }
            if n.outputs.compactMap({ $0 }).count > 1 {
                throw CompileError(node: n, "training-mode outputs (running statistics) without training_mode = 1 are not supported")
            }
            let eps = CppOps.literal(Double(n.float("epsilon") ?? 1e-5), x.dtype)
            let T = x.ctype
            e.line("for (int64_t n = 0; n < \(x.shape[0]); ++n) for (int64_t c = 0; c < \(C); ++c) {")
            e.line("    const \(T) k = \(s.ptr)[c] / std::sqrt(\(v.ptr)[c] + \(eps));")
            e.line("    const \(T) d = \(b.ptr)[c] - \(m.ptr)[c] * k;")
            e.line("    const \(T)* x = \(x.ptr) + (n * \(C) + c) * \(hw);")
            e.line("    \(T)* y = \(y.ptr) + (n * \(C) + c) * \(hw);")
            e.line("    for (int64_t i = 0; i < \(hw); ++i) y[i] = x[i] * k + d;")
            e.line("}")
        }
        t["InstanceNormalization"] = { e, n in
            let x = try e.input(n, 0), s = try e.input(n, 1), b = try e.input(n, 2), y = try e.output(n, 0)
            let C = x.shape[1], hw = x.shape[2...].reduce(1, *)
            let eps = Double(n.float("epsilon") ?? 1e-5)
            let T = x.ctype
            e.line("for (int64_t n = 0; n < \(x.shape[0]); ++n) for (int64_t c = 0; c < \(C); ++c) {")
            e.line("    const \(T)* x = \(x.ptr) + (n * \(C) + c) * \(hw);")
            e.line("    \(T)* y = \(y.ptr) + (n * \(C) + c) * \(hw);")
            e.line("    double mean = 0, var = 0;")
            e.line("    for (int64_t i = 0; i < \(hw); ++i) mean += x[i];")
            e.line("    mean /= \(hw).0;")
            e.line("    for (int64_t i = 0; i < \(hw); ++i) var += (x[i] - mean) * (x[i] - mean);")
            e.line("    var /= \(hw).0;")
            e.line("    const double k = \(s.ptr)[c] / std::sqrt(var + \(eps));")
            e.line("    for (int64_t i = 0; i < \(hw); ++i) y[i] = static_cast<\(T)>((x[i] - mean) * k + \(b.ptr)[c]);")
            e.line("}")
        }
        // ONNX's RoiAlign (as its reference and ONNX Runtime compute it): per bin, a grid of
        // bilinear samples averaged (or the largest weighted corner taken, "max"). Run-time ROIs
        // are hostile numbers: a sample grid is at most 1024 per axis, NaN coordinates and
        // samples off the map contribute zero, a batch index out of range gives a zero output.
        // Deformable convolution as defined: every kernel tap samples X bilinearly (zero outside)
        // at its position moved by the run-time offset, weighted by the mask. Direct loops.
        t["DeformConv"] = { e, n in
            let g = try NNOps.deformConv(OpContext(node: n, opset: e.opset))
            let x = try e.input(n, 0), w = try e.input(n, 1), off = try e.input(n, 2), y = try e.output(n, 0)
            let b = try e.optionalInput(n, 3), mask = try e.optionalInput(n, 4)
            guard x.dtype == .float || x.dtype == .double, [w, off, b, mask].allSatisfy({ $0 == nil || $0!.dtype == x.dtype }) else {
                throw CompileError(node: n, "DeformConv on \(x.dtype) is not supported (float32 and float64, all inputs the same)")
            }
            let cg = g.c / g.group, ocg = g.oc / g.group, cog = g.c / g.offsetGroup, K = g.kh * g.kw, plane = g.oh * g.ow
            e.block {
                e.line("const \(x.ctype)* const x = \(x.ptr);")
                e.line("for (int64_t b = 0; b < \(g.n); ++b) for (int64_t m = 0; m < \(g.oc); ++m) for (int64_t oh = 0; oh < \(g.oh); ++oh) for (int64_t ow = 0; ow < \(g.ow); ++ow) {")
                e.line("    double acc = \(b.map { "static_cast<double>(\($0.ptr)[m])" } ?? "0.0");")
                e.line("    const int64_t gr = m / \(ocg);")
                e.line("    for (int64_t ci = 0; ci < \(cg); ++ci) {")
                e.line("        const int64_t c = gr * \(cg) + ci, og = c / \(cog);")
                e.line("        const \(x.ctype)* const xp = x + (b * \(g.c) + c) * \(g.h * g.w);")
                e.line("        for (int64_t i = 0; i < \(g.kh); ++i) for (int64_t j = 0; j < \(g.kw); ++j) {")
                e.line("            const int64_t tap = (b * \(g.offsetGroup) + og) * \(K) + i * \(g.kw) + j;")
                e.line("            const double py = static_cast<double>(oh * \(g.strides[0]) - \(g.pads[0]) + i * \(g.dilations[0])) + static_cast<double>(\(off.ptr)[(tap * 2) * \(plane) + oh * \(g.ow) + ow]);")
                e.line("            const double px = static_cast<double>(ow * \(g.strides[1]) - \(g.pads[1]) + j * \(g.dilations[1])) + static_cast<double>(\(off.ptr)[(tap * 2 + 1) * \(plane) + oh * \(g.ow) + ow]);")
                e.line("            if (!(py > -1.0 && py < \(g.h).0 && px > -1.0 && px < \(g.w).0)) continue;  // no corner inside (NaN too)")
                e.line("            const double fy = std::floor(py), fx = std::floor(px), ly = py - fy, lx = px - fx;")
                e.line("            const int64_t y0 = static_cast<int64_t>(fy), x0 = static_cast<int64_t>(fx);")
                e.line("            double v = 0;")
                e.line("            for (int64_t dy = 0; dy < 2; ++dy) for (int64_t dx = 0; dx < 2; ++dx) {")
                e.line("                const int64_t yy = y0 + dy, xx = x0 + dx;")
                e.line("                if (yy < 0 || yy >= \(g.h) || xx < 0 || xx >= \(g.w)) continue;")
                e.line("                v += (dy ? ly : 1.0 - ly) * (dx ? lx : 1.0 - lx) * static_cast<double>(xp[yy * \(g.w) + xx]);")
                e.line("            }")
                if let mask { e.line("            v *= static_cast<double>(\(mask.ptr)[tap * \(plane) + oh * \(g.ow) + ow]);") }
                e.line("            acc += v * static_cast<double>(\(w.ptr)[((m * \(cg) + ci) * \(g.kh) + i) * \(g.kw) + j]);")
                e.line("        }")
                e.line("    }")
                e.line("    \(y.ptr)[((b * \(g.oc) + m) * \(g.oh) + oh) * \(g.ow) + ow] = static_cast<\(y.ctype)>(acc);")
                e.line("}")
            }
        }
        // Scatters X to the flat positions its indices give in the output (the shape MaxPool's
        // attributes imply, or output_shape: the shape of the tensor the indices were taken from,
        // as ONNX Runtime reads them); an index outside the output is skipped.
        t["MaxUnpool"] = { e, n in
            let x = try e.input(n, 0), idx = try e.input(n, 1), y = try e.output(n, 0)
            // (output_shape given at run time: the declared output, checked before.)
            let output = DeclaredShapes.isRuntime(n, 2) ? y.shape : try NNOps.maxUnpool(OpContext(node: n, opset: e.opset)).output
            let total = output.reduce(1, *)
            e.block {
                e.line("std::fill_n(\(y.ptr), \(y.count), \(y.ctype)(0));")
                e.line("for (int64_t i = 0; i < \(x.count); ++i) {")
                e.line("    const int64_t k = static_cast<int64_t>(\(idx.ptr)[i]);")
                e.line("    if (k >= 0 && k < \(total)) \(y.ptr)[k] = \(x.ptr)[i];")
                e.line("}")
            }
        }
        t["RoiAlign"] = { e, n in
            let x = try e.input(n, 0), rois = try e.input(n, 1), bi = try e.input(n, 2), y = try e.output(n, 0)
            guard x.dtype == .float || x.dtype == .double, rois.dtype == x.dtype else {
                throw CompileError(node: n, "RoiAlign on \(x.dtype) with \(rois.dtype) rois is not supported (float32 or float64, both the same)")
            }
            let N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3], R = rois.shape[0]
            let ph = y.shape[2], pw = y.shape[3]
            let halfPixel = (n.string("coordinate_transformation_mode") ?? "half_pixel") == "half_pixel"
            let maxMode = (n.string("mode") ?? "avg") == "max"
            let ratio = n.int("sampling_ratio") ?? 0
            let scale = Double(n.float("spatial_scale") ?? 1)
            e.block {
                e.line("const \(x.ctype)* const x = \(x.ptr); \(y.ctype)* const y = \(y.ptr);")
                e.line("for (int64_t r = 0; r < \(R); ++r) {")
                e.line("    const int64_t b = static_cast<int64_t>(\(bi.ptr)[r]);")
                e.line("    if (b < 0 || b >= \(N)) { for (int64_t i = 0; i < \(C * ph * pw); ++i) y[r * \(C * ph * pw) + i] = 0; continue; }")
                e.line("    const double sx = static_cast<double>(\(rois.ptr)[r * 4]) * \(scale)\(halfPixel ? " - 0.5" : ""), sy = static_cast<double>(\(rois.ptr)[r * 4 + 1]) * \(scale)\(halfPixel ? " - 0.5" : "");")
                e.line("    const double ex = static_cast<double>(\(rois.ptr)[r * 4 + 2]) * \(scale)\(halfPixel ? " - 0.5" : ""), ey = static_cast<double>(\(rois.ptr)[r * 4 + 3]) * \(scale)\(halfPixel ? " - 0.5" : "");")
                e.line("    double rw = ex - sx, rh = ey - sy;")
                if !halfPixel { e.line("    rw = std::max(rw, 1.0); rh = std::max(rh, 1.0);  // malformed ROIs become 1x1") }
                e.line("    const double bh = rh / \(ph).0, bw = rw / \(pw).0;")
                func grid(_ v: String) -> String {
                    ratio > 0 ? "\(ratio)" : "[](double g) { return g >= 1.0 ? (g <= 1024.0 ? static_cast<int64_t>(g) : 1024) : int64_t(0); }(std::ceil(\(v)))"
                }
                e.line("    const int64_t gh = \(grid("rh / \(ph).0")), gw = \(grid("rw / \(pw).0"));")
                e.line("    const double count = static_cast<double>(std::max<int64_t>(gh * gw, 1)); (void)count;")
                e.line("    for (int64_t c = 0; c < \(C); ++c) {")
                e.line("        const \(x.ctype)* const plane = x + (b * \(C) + c) * \(H * W);")
                e.line("        for (int64_t i = 0; i < \(ph); ++i) for (int64_t j = 0; j < \(pw); ++j) {")
                e.line("            double acc = 0; bool any = false;")
                e.line("            for (int64_t iy = 0; iy < gh; ++iy) for (int64_t ix = 0; ix < gw; ++ix) {")
                e.line("                double yy = sy + i * bh + (iy + 0.5) * bh / static_cast<double>(gh);")
                e.line("                double xx = sx + j * bw + (ix + 0.5) * bw / static_cast<double>(gw);")
                e.line("                double v = 0;")
                e.line("                if (yy >= -1.0 && yy <= \(H).0 && xx >= -1.0 && xx <= \(W).0) {")
                e.line("                    yy = std::max(yy, 0.0); xx = std::max(xx, 0.0);")
                e.line("                    int64_t y0 = static_cast<int64_t>(yy), x0 = static_cast<int64_t>(xx), y1, x1;")
                e.line("                    if (y0 >= \(H - 1)) { y0 = y1 = \(H - 1); yy = static_cast<double>(y0); } else y1 = y0 + 1;")
                e.line("                    if (x0 >= \(W - 1)) { x0 = x1 = \(W - 1); xx = static_cast<double>(x0); } else x1 = x0 + 1;")
                e.line("                    const double ly = yy - y0, lx = xx - x0, hy = 1.0 - ly, hx = 1.0 - lx;")
                e.line("                    const double v1 = hy * hx * plane[y0 * \(W) + x0], v2 = hy * lx * plane[y0 * \(W) + x1];")
                e.line("                    const double v3 = ly * hx * plane[y1 * \(W) + x0], v4 = ly * lx * plane[y1 * \(W) + x1];")
                e.line(maxMode ? "                    v = std::max(std::max(v1, v2), std::max(v3, v4));" : "                    v = v1 + v2 + v3 + v4;")
                e.line("                }")
                e.line(maxMode ? "                acc = any ? std::max(acc, v) : v; any = true;" : "                acc += v; (void)any;")
                e.line("            }")
                e.line("            y[((r * \(C) + c) * \(ph) + i) * \(pw) + j] = static_cast<\(y.ctype)>(\(maxMode ? "acc" : "acc / count"));")
                e.line("        }")
                e.line("    }")
                e.line("}")
            }
        }
        t["LayerNormalization"] = { e, n in
            let x = try e.input(n, 0), s = try e.input(n, 1), y = try e.output(n, 0)
            let b = try e.optionalInput(n, 2)
            let axis = try OpContext(node: n, opset: e.opset).axis(n.int("axis") ?? -1, rank: x.shape.count)
            // The rows may be a run-time extent; the normalized axes are the weights'.
            let outer = e.cpp(x.dims[..<axis].reduce(DimExpr(1), *)), inner = x.shape[axis...].reduce(1, *)
            guard x.dims[axis...].allSatisfy(\.isConstant) else { throw CompileError(node: n, "LayerNormalization over an axis that follows a run-time dimension is not supported") }
            let eps = Double(n.float("epsilon") ?? 1e-5)
            // Scale and bias broadcast over the normalized axes: index them directly when they
            // cover all of them (the usual case), by remainder only when they repeat.
            func index(_ count: Int) -> String { count == 1 ? "0" : (count == inner ? "i" : "i % \(count)") }
            let sIdx = index(s.count)
            let bIdx = b.map { index($0.count) }
            let T = x.ctype
            let meanOut = n.outputs.count > 1 ? try n.output(1).map { try e.tensor($0) } : nil
            let invOut = n.outputs.count > 2 ? try n.output(2).map { try e.tensor($0) } : nil
            if x.dtype == .float, y.dtype == .float, s.dtype == .float, s.count == inner, b.map({ $0.dtype == .float && $0.count == inner }) ?? true,
               meanOut == nil, invOut == nil {
                // The usual form (scale and bias over the whole row, no statistics outputs): the
                // sums and the normalization in the target's vectors of doubles.
                e.line("sofie_rt::layer_norm_rows(\(x.ptr), \(y.ptr), \(outer), \(inner), \(s.ptr), \(b?.ptr ?? "nullptr"), \(eps));")
                return
            }
            e.line("for (int64_t o = 0; o < \(outer); ++o) {")
            e.line("    const \(T)* x = \(x.ptr) + o * \(inner);")
            e.line("    \(T)* y = \(y.ptr) + o * \(inner);")
            e.line("    double mean = 0, var = 0;")
            e.line("    for (int64_t i = 0; i < \(inner); ++i) mean += x[i];")
            e.line("    mean /= \(inner).0;")
            e.line("    for (int64_t i = 0; i < \(inner); ++i) var += (x[i] - mean) * (x[i] - mean);")
            e.line("    var /= \(inner).0;")
            e.line("    const double inv = 1.0 / std::sqrt(var + \(eps));")
            e.line("    for (int64_t i = 0; i < \(inner); ++i) y[i] = static_cast<\(T)>((x[i] - mean) * inv * \(s.ptr)[\(sIdx)]\(b.map { " + \($0.ptr)[\(bIdx!)]" } ?? ""));")
            if let meanOut { e.line("    \(meanOut.ptr)[o] = static_cast<\(meanOut.ctype)>(mean);") }
            if let invOut { e.line("    \(invOut.ptr)[o] = static_cast<\(invOut.ctype)>(inv);") }
            e.line("}")
        }
        t["GridSample"] = { e, n in
            let x = try e.input(n, 0), grid = try e.input(n, 1), y = try e.output(n, 0)
            let (mode, padding) = try NNOps.gridSampleMode(OpContext(node: n, opset: e.opset))
            guard x.dtype == .float || x.dtype == .double, grid.dtype == x.dtype else {
                throw CompileError(node: n, "GridSample on \(x.dtype) with a \(grid.dtype) grid is not supported (float32 or float64, both the same)")
            }
            let r = x.shape.count - 2
            let dims = Array(x.shape[2...]) + Array(repeating: 1, count: 3 - r)
            let params = "\(x.shape[0]), \(x.shape[1]), \(r), {\(dims.map(String.init).joined(separator: ", "))}, \(y.count / max(1, x.shape[0] * x.shape[1])), \(mode), \(padding), \((n.int("align_corners") ?? 0) != 0 ? 1 : 0)"
            e.block {
                e.line("const sofie_rt::GridSampleParams params = {\(params)};")
                e.line("sofie_rt::grid_sample<\(x.ctype)>(params, \(x.ptr), \(grid.ptr), \(y.ptr));")
            }
        }
        t["LRN"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            let size = n.int("size") ?? 1
            let alpha = Double(n.float("alpha") ?? 1e-4), beta = Double(n.float("beta") ?? 0.75), bias = Double(n.float("bias") ?? 1)
            let C = x.shape[1], hw = x.shape[2...].reduce(1, *)
            let lo = (size - 1) / 2, hi = size - 1 - lo
            e.line("for (int64_t n = 0; n < \(x.shape[0]); ++n) for (int64_t c = 0; c < \(C); ++c) for (int64_t i = 0; i < \(hw); ++i) {")
            e.line("    double s = 0;")
            e.line("    for (int64_t j = std::max<int64_t>(0, c - \(lo)); j <= std::min<int64_t>(\(C - 1), c + \(hi)); ++j) { const double v = \(x.ptr)[(n * \(C) + j) * \(hw) + i]; s += v * v; }")
            e.line("    const int64_t o = (n * \(C) + c) * \(hw) + i;")
            e.line("    \(y.ptr)[o] = static_cast<\(y.ctype)>(\(x.ptr)[o] / std::pow(\(bias) + \(alpha / Double(size)) * s, \(beta)));")
            e.line("}")
        }
        t["TopK"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0), yi = try e.output(n, 1)
            let axis = try OpContext(node: n, opset: e.opset).axis(n.int("axis") ?? -1, rank: x.shape.count)
            let outer = x.shape[..<axis].reduce(1, *), inner = x.shape[(axis + 1)...].reduce(1, *), dim = x.shape[axis]
            guard !x.hasRuntimeExtents else { throw CompileError(node: n, "TopK over a tensor with run-time extents is not supported") }
            var k = String(y.shape[axis])
            if y.hasRuntimeExtents {
                // k given at run time, bounded (--dim NODE_len=max:BOUND): checked, then used.
                guard let kv = try e.optionalInput(n, 1), y.value.runtimeShape?[axis] == DimExpr(symbol: RuntimeDimension.lengthSymbol(of: n)) else {
                    throw CompileError(node: n, "its k is not the run-time dimension '\(RuntimeDimension.lengthSymbol(of: n))' itself")
                }
                k = try e.valueLength(n, declared: y.shape[axis], made: "asks for", ["const int64_t count = static_cast<int64_t>(\(kv.ptr)[0]);"], unit: "elements")
            }
            let largest = (n.int("largest") ?? 1) == 1
            e.workspace(dim + 8)
            e.block {
                e.line("int64_t* const order = static_cast<int64_t*>(work);")
                e.line("for (int64_t o = 0; o < \(outer); ++o) for (int64_t i = 0; i < \(inner); ++i) {")
                e.line("    const \(x.ctype)* x = \(x.ptr) + o * \(dim * inner) + i;")
                e.line("    for (int64_t j = 0; j < \(dim); ++j) order[j] = j;")
                e.line("    std::partial_sort(order, order + \(k), order + \(dim), [x](int64_t a, int64_t b) { return x[a * \(inner)] \(largest ? ">" : "<") x[b * \(inner)] || (x[a * \(inner)] == x[b * \(inner)] && a < b); });")
                e.line("    for (int64_t j = 0; j < \(k); ++j) { \(y.ptr)[(o * \(k) + j) * \(inner) + i] = x[order[j] * \(inner)]; \(yi.ptr)[(o * \(k) + j) * \(inner) + i] = order[j]; }")
                e.line("}")
            }
        }
        t["Resize"] = { e, n in try resize(e, n) }
        t["Upsample"] = { e, n in try resize(e, n) }
        return t
    }

    /// Resize (nearest, linear; cubic is rejected): per-axis source tables computed here, at
    /// compile time, then an n-linear (or nearest) gather at run time.
    static func resize(_ e: EmitContext, _ n: Node) throws {
        let x = try e.input(n, 0), y = try e.output(n, 0)
        let mode = n.string("mode") ?? "nearest"
        guard mode == "nearest" || mode == "linear" || mode == "bilinear" else {
            throw CompileError(node: n, "mode '\(mode)' is not supported (nearest and linear are)")
        }
        let ctm = n.opType == "Upsample" ? "asymmetric" : (n.string("coordinate_transformation_mode") ?? "half_pixel")
        let nearestMode = n.string("nearest_mode") ?? (n.opType == "Upsample" ? "floor" : "round_prefer_floor")
        if (n.int("antialias") ?? 0) == 1 { throw CompileError(node: n, "antialias is not supported") }
        if ctm == "tf_crop_and_resize" { throw CompileError(node: n, "coordinate_transformation_mode tf_crop_and_resize is not supported") }
        if n.string("keep_aspect_ratio_policy").map({ $0 != "stretch" }) ?? false { throw CompileError(node: n, "keep_aspect_ratio_policy other than stretch is not supported") }
        let r = x.shape.count
        // Sizes given at run time: checked against the declared output (then as below). Scales
        // given at run time: the index tables are computed at run time (resizeAtRunTime).
        if n.opType == "Resize", DeclaredShapes.isRuntime(n, 3) { try e.checkDeclaredShape(n, input: 3) }
        let scalesInput = n.opType == "Upsample" ? 1 : 2
        if n.input(3) == nil, n.opType == "Resize" || n.floats("scales") == nil, DeclaredShapes.isRuntime(n, scalesInput) {
            return try resizeAtRunTime(e, n, x, y, scales: try e.input(n, scalesInput), linear: mode != "nearest", ctm: ctm, nearestMode: nearestMode)
        }
        // Scale per axis: given scales, or output/input.
        var scales = (0..<r).map { Double(y.shape[$0]) / Double(max(x.shape[$0], 1)) }
        if n.opType == "Resize", n.input(3) == nil, n.inputs.count > 2, let sv = n.input(2), let st = sv.initializer, st.elementCount > 0, let v = NDArray(st) {
            let axes = n.ints("axes") ?? Array(0..<r)
            guard v.count >= axes.count, axes.allSatisfy({ $0 >= -r && $0 < r }) else {
                throw CompileError(node: n, "scales \(v.count) and axes \(axes) do not fit the rank-\(r) input")
            }
            for (k, a) in axes.enumerated() { scales[a < 0 ? a + r : a] = v.double(k) }
        } else if n.opType == "Upsample", let f = n.floats("scales") ?? n.input(1)?.initializer.flatMap(NDArray.init)?.floats.map({ Float($0) }) {
            for a in 0..<r { scales[a] = Double(f[a]) }
        }
        // For each axis and output index: (i0, i1, weight of i1), emitted as static tables. Real
        // models resize axes of thousands; a hostile file's single axis of 2^26 would make
        // gigabytes of source (fuzzing found one that took 13 s and 2 GB to emit).
        let entries = y.shape.reduce(0) { $0 &+ max($1, 0) }
        guard entries <= 1 << 22 else { throw CompileError(node: n, "the output's axes total \(entries) positions; index tables above 2^22 entries are not emitted") }
        var tables: [[(Int, Int, Double)]] = []
        for a in 0..<r {
            let inD = x.shape[a], outD = y.shape[a], s = scales[a]
            var tab: [(Int, Int, Double)] = []
            for o in 0..<outD {
                let xo = Double(o)
                var src: Double
                switch ctm {
                case "asymmetric": src = xo / s
                case "align_corners": src = outD == 1 ? 0 : xo * Double(inD - 1) / Double(outD - 1)
                case "pytorch_half_pixel": src = outD > 1 ? (xo + 0.5) / s - 0.5 : 0
                case "half_pixel_symmetric":
                    let adj = Double(outD) / (s * Double(inD))
                    let center = Double(inD) / 2
                    src = center * (1 - adj) + (xo + 0.5) / s - 0.5
                default: src = (xo + 0.5) / s - 0.5
                }
                if mode == "nearest" {
                    var i: Int
                    switch nearestMode {
                    case "floor": i = Int(src.rounded(.down))
                    case "ceil": i = Int(src.rounded(.up))
                    case "round_prefer_ceil": i = Int((src + 0.5).rounded(.down))
                    default: i = src == src.rounded(.down) + 0.5 ? Int(src.rounded(.down)) : Int(src.rounded())
                    }
                    i = min(max(i, 0), inD - 1)
                    tab.append((i, i, 0))
                } else {
                    let c = min(max(src, 0), Double(inD - 1))
                    let i0 = Int(c.rounded(.down)), i1 = min(i0 + 1, inD - 1)
                    tab.append((i0, i1, c - Double(i0)))
                }
            }
            tables.append(tab)
        }
        let st = NDArray.strides(x.shape)
        let interpolating = (0..<r).filter { a in tables[a].contains { $0.0 != $0.1 } }
        e.block {
            for a in 0..<r {
                let t = tables[a]
                e.line("static constexpr int64_t i0_\(a)[] = \(CppOps.intList(t.map { $0.0 * st[a] }));")
                if mode != "nearest" && interpolating.contains(a) {
                    e.line("static constexpr int64_t i1_\(a)[] = \(CppOps.intList(t.map { $0.1 * st[a] }));")
                    e.line("static constexpr double w_\(a)[] = {\(t.map { String(format: "%.17g", $0.2).fixDoubleLiteral() }.joined(separator: ", "))};")
                }
            }
            resizeLoop(e, x, y, linear: mode != "nearest", interpolating: interpolating)
        }
    }

    /// The gather (nearest) or blend (linear) over tables i0_a, i1_a, w_a of every axis; only the
    /// axes in `interpolating` contribute corners.
    static func resizeLoop(_ e: EmitContext, _ x: CTensor, _ y: CTensor, linear: Bool, interpolating: [Int]) {
        let r = x.shape.count, T = y.ctype
        e.line("const \(x.ctype)* const x = \(x.ptr);")
        e.line("\(T)* y = \(y.ptr);")
        e.loops(y.shape) { v in
            if !linear {
                e.line("*y++ = x[\((0..<r).map { "i0_\($0)[\(v[$0])]" }.joined(separator: " + "))];")
                return
            }
            let fixed = (0..<r).filter { !interpolating.contains($0) }.map { "i0_\($0)[\(v[$0])]" }
            var terms: [String] = []
            for mask in 0..<(1 << interpolating.count) {
                var idx = fixed, wts: [String] = []
                for (bit, a) in interpolating.enumerated() {
                    let hi = (mask >> bit) & 1 == 1
                    idx.append(hi ? "i1_\(a)[\(v[a])]" : "i0_\(a)[\(v[a])]")
                    wts.append(hi ? "w_\(a)[\(v[a])]" : "(1.0 - w_\(a)[\(v[a])])")
                }
                terms.append((wts.isEmpty ? "" : wts.joined(separator: " * ") + " * ") + "double(x[\(idx.isEmpty ? "0" : idx.joined(separator: " + "))])")
            }
            e.line("*y++ = static_cast<\(T)>(\(terms.joined(separator: " + ")));")
        }
    }
}

extension CppNN {
    /// Resize (or Upsample) whose scales arrive at run time, the output shape declared: the
    /// scales are checked to give that shape (std::invalid_argument), then each axis' index
    /// table is computed into the workspace (sofie_rt::resize_axis) and the loop runs as with
    /// constant tables.
    static func resizeAtRunTime(_ e: EmitContext, _ n: Node, _ x: CTensor, _ y: CTensor, scales sc: CTensor, linear: Bool,
                                ctm: String, nearestMode: String) throws {
        let r = x.shape.count
        guard y.shape.count == r, !x.hasRuntimeExtents, !sc.hasRuntimeExtents else { throw CompileError(node: n, "Resize with run-time scales needs a declared output of the input's rank") }
        let c = OpContext(node: n, opset: e.opset)
        let axes = try (n.ints("axes") ?? Array(0..<r)).map { try c.axis($0, rank: r) }
        guard sc.count == axes.count, Set(axes).count == axes.count else { throw CompileError(node: n, "its scales have \(sc.count) values for \(axes.count) axes") }
        let entries = y.shape.reduce(0) { $0 &+ max($1, 0) }
        guard entries <= 1 << 22 else { throw CompileError(node: n, "the output's axes total \(entries) positions; index tables above 2^22 entries are not emitted") }
        let ctmCode = ["half_pixel": 0, "asymmetric": 1, "align_corners": 2, "pytorch_half_pixel": 3, "half_pixel_symmetric": 4][ctm]
        let nearestCode = ["round_prefer_floor": 0, "round_prefer_ceil": 1, "floor": 2, "ceil": 3][nearestMode]
        guard let ctmCode, let nearestCode else { throw CompileError(node: n, "coordinate_transformation_mode '\(ctm)' / nearest_mode '\(nearestMode)' is not supported") }
        e.workspace(3 * entries)
        let st = NDArray.strides(x.shape)
        e.block {
            e.line("double scale[\(r)] = {\((0..<r).map { _ in "1.0" }.joined(separator: ", "))};")
            for (k, a) in axes.enumerated() { e.line("scale[\(a)] = static_cast<double>(\(sc.ptr)[\(k)]);") }
            e.line("static constexpr int64_t in_shape[] = \(CppOps.intList(x.shape)), out_shape[] = \(CppOps.intList(y.shape));")
            e.line("for (int a = 0; a < \(r); ++a)")
            e.line("    if (!(scale[a] > 0.0) || !(scale[a] <= std::numeric_limits<double>::max()) || std::floor(static_cast<double>(in_shape[a]) * scale[a]) != static_cast<double>(out_shape[a]))")
            e.line("        throw std::invalid_argument(\"\(e.ns): node '\(CppNames.comment(n.name, limit: 60))' (\(n.opType)): its scales do not give the declared output shape [\(y.shape.map(String.init).joined(separator: "x"))]\");")
            var offset = 0
            for a in 0..<r {
                let out = y.shape[a]
                e.line("int64_t* const i0_\(a) = static_cast<int64_t*>(work) + \(offset);")
                e.line("int64_t* const i1_\(a) = static_cast<int64_t*>(work) + \(offset + out);")
                e.line("double* const w_\(a) = static_cast<double*>(work) + \(offset + 2 * out);")
                e.line("sofie_rt::resize_axis(\(linear ? 1 : 0), \(ctmCode), \(nearestCode), \(x.shape[a]), \(out), scale[\(a)], \(st[a]), i0_\(a), i1_\(a), w_\(a));")
                offset += 3 * out
            }
            // An axis of one input element has nothing to blend.
            resizeLoop(e, x, y, linear: linear, interpolating: (0..<r).filter { x.shape[$0] > 1 })
        }
    }
}

/// The epilogue of an org.sofie FusedConv/FusedGemm node (empty for Conv and Gemm): residual
/// input 3 and the activation, as a `sofie_rt::Epilogue` initializer.
struct Epilogue {
    var act = "None"
    var alpha = 0.0, beta = 0.0
    var residual: CTensor?

    init(_ e: EmitContext, _ n: Node, _ y: CTensor) throws {
        guard SofieOps.isSofie(n) else { return }
        residual = try e.optionalInput(n, 3)
        if let r = residual, r.shape != y.shape { throw CompileError(node: n, "the residual has the shape \(r.shape), the output \(y.shape)") }
        let name = n.string("activation") ?? ""
        guard !name.isEmpty else { return }
        guard let names = SofieOps.activations[name] else { throw CompileError(node: n, "unknown epilogue activation '\(name)'") }
        let p = n.floats("activation_params") ?? []
        guard p.count == names.count else { throw CompileError(node: n, "activation \(name) needs \(names.count) activation_params") }
        act = name
        if p.count > 0 { alpha = Double(p[0]) }
        if p.count > 1 { beta = Double(p[1]) }
    }

    var isEmpty: Bool { act == "None" && residual == nil }

    func cpp(_ ctype: String, residualOffset: String = "0") -> String {
        if isEmpty { return "{}" }
        let dt: DataType = ctype == "double" ? .double : .float
        let r = residual.map { residualOffset == "0" ? $0.ptr : "\($0.ptr) + \(residualOffset)" } ?? "nullptr"
        return "sofie_rt::Epilogue<\(ctype)>{sofie_rt::Act::\(act), \(CppOps.literal(alpha, dt)), \(CppOps.literal(beta, dt)), \(r)}"
    }
}
