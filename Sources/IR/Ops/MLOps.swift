/// Ops of ONNX's `ai.onnx.ml` domain that the C++ back end compiles: TreeEnsemble (opset 5: the
/// boosted decision trees physics analyses train), Binarizer and ArrayFeatureExtractor.
public enum MLOps {
    public static let domain = "ai.onnx.ml"

    /// A TreeEnsemble's trees, read from its attributes and checked: every index in range, every
    /// tree acyclic (so walking one ends within `nodes` steps).
    public struct Ensemble {
        public var features: [Int32] = []
        /// 0 LEQ, 1 LT, 2 GTE, 3 GT, 4 EQ, 5 NEQ, 6 MEMBER.
        public var modes: [UInt8] = []
        public var splits: [Double] = []
        /// A child >= 0 is a node; -(i + 1) is leaf i.
        public var trueChild: [Int32] = [], falseChild: [Int32] = []
        public var missingTrue: [UInt8] = []
        /// Leaf i adds weights[leafStart[i] ..< leafStart[i] + leafCount[i]] to the targets beside them.
        public var leafStart: [Int32] = [], leafCount: [Int32] = []
        public var leafWeights: [Double] = []
        public var leafTargets: [Int32] = []
        /// Added to each target after aggregation (TreeEnsembleRegressor/Classifier's base_values).
        public var base: [Double] = []
        /// TreeEnsembleRegressor/Classifier: a target no leaf reaches scores 0 (+ base) with MIN/MAX
        /// (ONNX Runtime), where TreeEnsemble's reference keeps the type's extreme.
        public var emptyIsZero = false
        /// TreeEnsembleClassifier: its int64 labels, and the binary case (two classes, the
        /// weights naming one class id): one score s, for the second class.
        public var labels: [Int64] = []
        public var binary = false
        public var weightsAllPositive = false
        /// Each tree's first step: a node, or a leaf (-(i + 1)) for a tree that is one leaf.
        public var roots: [Int32] = []
        /// For node k of mode MEMBER: its set is memberValues[memberStart[k] ..< memberStart[k] + memberCount[k]].
        public var memberStart: [Int32] = [], memberCount: [Int32] = []
        public var memberValues: [Double] = []
        public var targets = 1
        /// 0 AVERAGE, 1 SUM, 2 MIN, 3 MAX.
        public var aggregate = 1
        /// 0 NONE, 1 SOFTMAX, 2 LOGISTIC, 3 SOFTMAX_ZERO.
        public var post = 0
    }

    /// At most this many tree nodes and leaves (a model is a file of numbers we do not trust).
    public static let maxTreeNodes = 1 << 24

    public static func ensemble(_ c: OpContext) throws -> Ensemble {
        let x = try c.shape(0)
        guard x.count == 2 else { throw c.invalid("X must be 2-D (N, features), not \(x)") }
        let n = c.node
        func ints(_ name: String, required: Bool = true) throws -> [Int] {
            if let v = n.ints(name) { return v }
            if let t = n.tensor(name), let a = NDArray(t), !a.isFloat { return a.ints.map { Int($0) } }
            if required { throw c.invalid("attribute \(name) is missing") }
            return []
        }
        func doubles(_ name: String, required: Bool = true) throws -> [Double] {
            if let t = n.tensor(name), let a = NDArray(t) { return (0..<a.count).map { a.double($0) } }
            if let f = n.floats(name) { return f.map(Double.init) }
            if required { throw c.invalid("attribute \(name) is missing") }
            return []
        }
        var e = Ensemble()
        let features = try ints("nodes_featureids"), modes = try ints("nodes_modes"), splits = try doubles("nodes_splits")
        let trueIds = try ints("nodes_truenodeids"), falseIds = try ints("nodes_falsenodeids")
        let trueLeafs = try ints("nodes_trueleafs"), falseLeafs = try ints("nodes_falseleafs")
        let missing = try ints("nodes_missing_value_tracks_true", required: false)
        let weights = try doubles("leaf_weights"), targets = try ints("leaf_targetids"), roots = try ints("tree_roots")
        let count = features.count, leaves = weights.count
        guard count >= 1, count <= maxTreeNodes, leaves <= maxTreeNodes, roots.count >= 1, roots.count <= maxTreeNodes else {
            throw c.invalid("a tree ensemble needs 1 to \(maxTreeNodes) nodes, leaves and trees (has \(count), \(leaves), \(roots.count))")
        }
        guard [modes.count, splits.count, trueIds.count, falseIds.count, trueLeafs.count, falseLeafs.count].allSatisfy({ $0 == count }),
              missing.isEmpty || missing.count == count else {
            throw c.invalid("the nodes_* attributes have different lengths")
        }
        guard targets.count == leaves else { throw c.invalid("leaf_weights and leaf_targetids have different lengths") }
        e.targets = c.int("n_targets", 0)
        guard e.targets >= 1, e.targets <= 1 << 20 else { throw c.invalid("n_targets must be between 1 and 2^20") }
        e.aggregate = c.int("aggregate_function", 1)
        guard (0...3).contains(e.aggregate) else { throw c.invalid("aggregate_function \(e.aggregate) is not one of 0-3") }
        e.post = c.int("post_transform", 0)
        guard (0...3).contains(e.post) else {
            throw c.fail("post_transform \(e.post) is not supported (NONE, SOFTMAX, LOGISTIC and SOFTMAX_ZERO are; not PROBIT)")
        }
        for (k, f) in features.enumerated() {
            guard f >= 0, f < x[1] else { throw c.invalid("node \(k) reads feature \(f); X has \(x[1])") }
            guard (0...6).contains(modes[k]) else { throw c.invalid("node \(k) has mode \(modes[k]), not one of 0-6") }
        }
        func child(_ id: Int, leaf: Int, _ k: Int) throws -> Int32 {
            if leaf != 0 {
                guard id >= 0, id < leaves else { throw c.invalid("node \(k) points at leaf \(id); there are \(leaves)") }
                return Int32(-(id + 1))
            }
            guard id >= 0, id < count else { throw c.invalid("node \(k) points at node \(id); there are \(count)") }
            return Int32(id)
        }
        for k in 0..<count {
            e.trueChild.append(try child(trueIds[k], leaf: trueLeafs[k], k))
            e.falseChild.append(try child(falseIds[k], leaf: falseLeafs[k], k))
        }
        for (i, t) in targets.enumerated() where t < 0 || t >= e.targets { throw c.invalid("leaf \(i) adds to target \(t); n_targets is \(e.targets)") }
        for r in roots {
            guard r >= 0, r < count else { throw c.invalid("tree root \(r) is not a node") }
            // A tree that is one leaf: both branches of its root name the same leaf.
            let single = trueLeafs[r] != 0 && falseLeafs[r] != 0 && trueIds[r] == falseIds[r]
            e.roots.append(single ? e.trueChild[r] : Int32(r))
        }
        try checkAcyclic(e, c)
        // Sets of MEMBER nodes: membership_values lists them in node order, each ended by NaN.
        let members = try doubles("membership_values", required: false)
        var at = 0
        for k in 0..<count {
            guard modes[k] == 6 else { e.memberStart.append(0); e.memberCount.append(0); continue }
            let start = at
            guard start < members.count else { throw c.invalid("membership_values has no set for MEMBER node \(k)") }
            while at < members.count, !members[at].isNaN { at += 1 }
            e.memberStart.append(Int32(e.memberValues.count))
            e.memberCount.append(Int32(at - start))
            e.memberValues += members[start..<at]
            at += 1  // past the NaN
        }
        e.features = features.map { Int32($0) }
        e.modes = modes.map { UInt8($0) }
        e.splits = splits
        e.missingTrue = missing.isEmpty ? [UInt8](repeating: 0, count: count) : missing.map { $0 != 0 ? 1 : 0 }
        e.leafWeights = weights
        e.leafTargets = targets.map { Int32($0) }
        e.leafStart = (0..<leaves).map { Int32($0) }
        e.leafCount = [Int32](repeating: 1, count: leaves)
        return e
    }

    /// TreeEnsembleRegressor and TreeEnsembleClassifier (ai.onnx.ml 1-3, what sklearn-onnx,
    /// onnxmltools and hummingbird write): nodes named by (tree id, node id), leaves as LEAF
    /// nodes whose contributions are listed in target_* / class_*, base_values added at the end.
    public static func legacyEnsemble(_ c: OpContext) throws -> Ensemble {
        let x = try c.shape(0)
        guard x.count == 2 else { throw c.invalid("X must be 2-D (N, features), not \(x)") }
        let n = c.node
        let classifier = n.opType == "TreeEnsembleClassifier"
        let prefix = classifier ? "class" : "target"
        func ints(_ name: String, required: Bool = true) throws -> [Int] {
            if let v = n.ints(name) { return v }
            if required { throw c.invalid("attribute \(name) is missing") }
            return []
        }
        func doubles(_ name: String) -> [Double] {
            if let t = n.tensor(name + "_as_tensor"), let a = NDArray(t) { return (0..<a.count).map { a.double($0) } }
            return n.floats(name)?.map(Double.init) ?? []
        }
        func strings(_ name: String) -> [String] {
            if case .strings(let v)? = n.attribute(name) { return v.map { String(decoding: $0, as: UTF8.self) } }
            return []
        }
        let treeIds = try ints("nodes_treeids"), nodeIds = try ints("nodes_nodeids"), features = try ints("nodes_featureids")
        let modes = strings("nodes_modes"), values = doubles("nodes_values")
        let trueIds = try ints("nodes_truenodeids"), falseIds = try ints("nodes_falsenodeids")
        let missing = try ints("nodes_missing_value_tracks_true", required: false)
        let count = treeIds.count
        guard count >= 1, count <= maxTreeNodes else { throw c.invalid("a tree ensemble needs 1 to \(maxTreeNodes) nodes (has \(count))") }
        guard [nodeIds.count, features.count, modes.count, trueIds.count, falseIds.count].allSatisfy({ $0 == count }),
              values.count == count, missing.isEmpty || missing.count == count else {
            throw c.invalid("the nodes_* attributes have different lengths")
        }
        let cTrees = try ints("\(prefix)_treeids"), cNodes = try ints("\(prefix)_nodeids"), cIds = try ints("\(prefix)_ids")
        let cWeights = doubles("\(prefix)_weights")
        guard cTrees.count == cNodes.count, cIds.count == cTrees.count, cWeights.count == cTrees.count, cTrees.count <= maxTreeNodes else {
            throw c.invalid("the \(prefix)_* attributes have different lengths")
        }
        var e = Ensemble()
        if classifier {
            e.labels = try ints("classlabels_int64s", required: false).map { Int64($0) }
            guard !e.labels.isEmpty else { throw c.fail("string class labels are not supported (classlabels_int64s are)") }
            e.targets = e.labels.count
        } else {
            e.targets = c.int("n_targets", 1)
        }
        guard e.targets >= 1, e.targets <= 1 << 20 else { throw c.invalid("the number of targets/classes must be between 1 and 2^20") }
        let aggregate = n.string("aggregate_function") ?? "SUM"
        guard let agg = ["AVERAGE": 0, "SUM": 1, "MIN": 2, "MAX": 3][aggregate] else { throw c.invalid("aggregate_function '\(aggregate)' is not AVERAGE, SUM, MIN or MAX") }
        e.aggregate = agg
        let post = n.string("post_transform") ?? "NONE"
        guard let p = ["NONE": 0, "SOFTMAX": 1, "LOGISTIC": 2, "SOFTMAX_ZERO": 3][post] else {
            throw c.fail("post_transform '\(post)' is not supported (NONE, SOFTMAX, LOGISTIC and SOFTMAX_ZERO are; not PROBIT)")
        }
        e.post = p
        e.base = doubles("base_values")
        guard e.base.isEmpty || e.base.count == e.targets || (classifier && e.targets == 2 && e.base.count == 1) else {
            throw c.invalid("base_values has \(e.base.count) values for \(e.targets) targets")
        }
        e.emptyIsZero = true
        // Node (tree, id) -> index; LEAF nodes become leaves.
        var index: [Int64: Int] = [:]
        func key(_ t: Int, _ i: Int) -> Int64 { Int64(t) << 32 ^ Int64(UInt32(truncatingIfNeeded: i)) }
        var leafOf = [Int](repeating: -1, count: count)
        var leaves = 0
        for k in 0..<count {
            guard index.updateValue(k, forKey: key(treeIds[k], nodeIds[k])) == nil else { throw c.invalid("node (\(treeIds[k]), \(nodeIds[k])) appears twice") }
            if modes[k] == "LEAF" { leafOf[k] = leaves; leaves += 1 }
        }
        let modeCodes = ["BRANCH_LEQ": 0, "BRANCH_LT": 1, "BRANCH_GTE": 2, "BRANCH_GT": 3, "BRANCH_EQ": 4, "BRANCH_NEQ": 5, "LEAF": 0]
        var contributions = [[(Int32, Double)]](repeating: [], count: leaves)
        for j in 0..<cTrees.count {
            guard let k = index[key(cTrees[j], cNodes[j])], leafOf[k] >= 0 else { throw c.invalid("\(prefix) entry \(j) names (\(cTrees[j]), \(cNodes[j])), which is not a LEAF node") }
            guard cIds[j] >= 0, cIds[j] < e.targets else { throw c.invalid("\(prefix) entry \(j) adds to \(prefix) \(cIds[j]); there are \(e.targets)") }
            contributions[leafOf[k]].append((Int32(cIds[j]), cWeights[j]))
        }
        var isChild = [Bool](repeating: false, count: count)
        for k in 0..<count {
            guard let mode = modeCodes[modes[k]] else { throw c.invalid("node \(k) has mode '\(modes[k])'") }
            let leaf = leafOf[k] >= 0
            guard leaf || (features[k] >= 0 && features[k] < x[x.count - 1]) else { throw c.invalid("node \(k) reads feature \(features[k]); X has \(x[x.count - 1])") }
            func child(_ id: Int) throws -> Int32 {
                guard let j = index[key(treeIds[k], id)] else { throw c.invalid("node \(k) points at node \(id), which tree \(treeIds[k]) does not have") }
                isChild[j] = true
                return leafOf[j] >= 0 ? Int32(-(leafOf[j] + 1)) : Int32(j)
            }
            e.features.append(Int32(leaf ? 0 : features[k]))
            e.modes.append(UInt8(mode))
            e.splits.append(values[k])
            e.trueChild.append(leaf ? -1 : try child(trueIds[k]))
            e.falseChild.append(leaf ? -1 : try child(falseIds[k]))
        }
        e.missingTrue = missing.isEmpty ? [UInt8](repeating: 0, count: count) : missing.map { $0 != 0 ? 1 : 0 }
        // Roots: per tree, its one node no other node points at.
        var rootOf: [Int: Int32] = [:]
        for k in 0..<count where !isChild[k] {
            guard rootOf[treeIds[k]] == nil else { throw c.invalid("tree \(treeIds[k]) has more than one root") }
            rootOf[treeIds[k]] = leafOf[k] >= 0 ? Int32(-(leafOf[k] + 1)) : Int32(k)
        }
        e.roots = rootOf.keys.sorted().map { rootOf[$0]! }
        guard !e.roots.isEmpty, Set(treeIds).count == e.roots.count else { throw c.invalid("every tree needs exactly one root (the trees have a cycle)") }
        try checkAcyclic(e, c)
        for list in contributions {
            e.leafStart.append(Int32(e.leafWeights.count))
            e.leafCount.append(Int32(list.count))
            for (t, w) in list { e.leafTargets.append(t); e.leafWeights.append(w) }
        }
        e.memberStart = [Int32](repeating: 0, count: count)
        e.memberCount = [Int32](repeating: 0, count: count)
        if classifier && e.targets == 2 {
            e.binary = Set(cIds).count == 1
            e.weightsAllPositive = cWeights.allSatisfy { $0 >= 0 }
        }
        return e
    }

    /// Every walk from a root ends at a leaf (iterative depth-first search with colours).
    static func checkAcyclic(_ e: Ensemble, _ c: OpContext) throws {
        let count = e.trueChild.count
        var state = [UInt8](repeating: 0, count: count)  // 0 new, 1 on the path, 2 done
        for r in e.roots where r >= 0 {
            var stack: [(Int, Int)] = [(Int(r), 0)]
            while let (k, step) = stack.last {
                if step == 0 {
                    if state[k] == 2 { stack.removeLast(); continue }
                    state[k] = 1
                }
                if step < 2 {
                    stack[stack.count - 1].1 = step + 1
                    let next = Int(step == 0 ? e.trueChild[k] : e.falseChild[k])
                    if next >= 0 {
                        if state[next] == 1 { throw c.invalid("the trees have a cycle through node \(next)") }
                        if state[next] == 0 { stack.append((next, 0)) }
                    }
                } else {
                    state[k] = 2
                    stack.removeLast()
                }
            }
        }
    }

    public static let definitions: [String: OpDef] = [
        "TreeEnsemble": OpDef(infer: { c in
            let e = try ensemble(c)
            return [tt(try c.dtype(0), [try c.shape(0)[0], e.targets])]
        }),
        "TreeEnsembleRegressor": OpDef(infer: { c in
            let e = try legacyEnsemble(c)
            return [tt(.float, [try c.shape(0)[0], e.targets])]
        }),
        "TreeEnsembleClassifier": OpDef(infer: { c in
            let e = try legacyEnsemble(c)
            let rows = try c.shape(0)[0]
            return Array([tt(.int64, [rows]), tt(.float, [rows, e.targets])].prefix(max(1, c.node.outputs.count)))
        }),
        "Binarizer": OpDef(infer: { c in [tt(try c.dtype(0), try c.shape(0))] }),
        // Y[..., j] = X[..., indices[j]] along the last axis.
        "ArrayFeatureExtractor": OpDef(infer: { c in
            let x = try c.shape(0), i = try c.shape(1)
            guard x.count >= 1 else { throw c.invalid("X must have at least one axis") }
            let k = i.reduce(1, *)
            return [tt(try c.dtype(0), x.count == 1 ? [1, k] : Array(x.dropLast()) + [k])]
        }),
    ]
}

/// The optimizer steps of ONNX's `ai.onnx.preview.training` domain (Adagrad, Momentum, Adam):
/// elementwise updates of n tensors, given as R, T, then the n X's and their per-tensor states.
public enum TrainingOps {
    public static let domain = "ai.onnx.preview.training"

    /// Tensors updated and state tensors per X (Adagrad: G, H; Momentum: G, V; Adam: G, V, H).
    public static func groups(_ c: OpContext) throws -> (n: Int, states: Int) {
        let per = c.node.opType == "Adam" ? 4 : 3
        let n = (c.inputCount - 2) / per
        guard n >= 1, c.inputCount == 2 + per * n else { throw c.invalid("\(c.node.opType) takes R, T and \(per) inputs per updated tensor; it has \(c.inputCount) inputs") }
        guard c.node.outputs.count == (per - 1) * n else { throw c.invalid("\(c.node.opType) of \(n) tensors has \((per - 1) * n) outputs") }
        guard try c.shape(0).reduce(1, *) == 1, try c.shape(1).reduce(1, *) == 1 else { throw c.invalid("R and T must be scalars") }
        for i in 0..<n {
            let x = try c.shape(2 + i)
            for k in 1..<per where try c.shape(2 + k * n + i) != x { throw c.invalid("the inputs of updated tensor \(i) have different shapes") }
        }
        return (n, per - 1)
    }

    public static let definitions: [String: OpDef] = {
        var t: [String: OpDef] = [:]
        for op in ["Adagrad", "Momentum", "Adam"] {
            t[op] = OpDef(infer: { c in
                let (n, states) = try groups(c)
                // Outputs: the new X's, then each state's new values (Adam: V's, then H's).
                var outs: [TensorType] = []
                for k in 0..<states {
                    for i in 0..<n { outs.append(tt(try c.dtype(2 + (k == 0 ? 0 : k + 1) * n + i), try c.shape(2 + i))) }
                }
                return outs
            })
        }
        return t
    }()
}
