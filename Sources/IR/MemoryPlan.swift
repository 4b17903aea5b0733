/// Where each intermediate tensor of a graph lives in one shared arena: values whose lifetimes
/// (from the node that writes them to the last node that reads them, in graph order) do not
/// overlap share memory, placed greedily largest first at the lowest free offset. The output of
/// a Reshape, Flatten, Squeeze or Unsqueeze of an intermediate value is an alias of it (same
/// bytes, no copy), and keeps it alive. Graph inputs, outputs, initializers and fills
/// (ConstantOfShape, made once per Session) are not arena tensors.
public struct MemoryPlan: Equatable {
    public struct Slot: Equatable {
        public var offset: Int
        public var bytes: Int
    }

    /// Arena slot of each planned value, by value name.
    public var slots: [String: Slot] = [:]
    /// Values that share another value's slot, by value name -> the name of the value they alias.
    public var aliases: [String: String] = [:]
    /// Bytes the arena needs.
    public var arenaBytes = 0
    /// The sum of all planned tensors' sizes (what the arena would need without reuse).
    public var totalBytes = 0

    public init() {}


    public static func isFill(_ n: Node) -> Bool { n.opType == "ConstantOfShape" && n.isStandard }

    /// Bytes a value occupies (at least 1), rounded up to `alignment`; nil without a static shape.
    static func size(_ v: Value, alignment: Int) -> Int? {
        guard let t = v.tensorType, let s = t.staticShape, let b = t.elementType.unpackedByteSize else { return nil }
        let bytes = max(s.reduce(1, *) * b, 1)
        return (bytes + alignment - 1) / alignment * alignment
    }

    /// Plans the graph's intermediate values. Values without a static shape are left out.
    public static func compute(_ g: Graph, alignment: Int = 64) -> MemoryPlan {
        var plan = MemoryPlan()
        let outputs = Set(g.outputs.map(ObjectIdentifier.init))
        var position: [ObjectIdentifier: Int] = [:]
        for (i, n) in g.nodes.enumerated() { position[ObjectIdentifier(n)] = i }
        struct Item { let value: Value; let start: Int; var end: Int; let bytes: Int }
        var items: [Item] = []
        var itemOf: [ObjectIdentifier: Int] = [:]  // value -> index of the item that holds its bytes
        func lastUse(_ v: Value, from start: Int) -> Int {
            v.uses.reduce(start) { max($0, position[ObjectIdentifier($1.node)] ?? $0) }
        }
        for (i, n) in g.nodes.enumerated() where !isFill(n) {
            for case let o? in n.outputs where !outputs.contains(ObjectIdentifier(o)) {
                guard let bytes = size(o, alignment: alignment) else { continue }
                if OpRegistry.traits(of: n).contains(.aliasesInput), let x = n.input(0),
                   let k = itemOf[ObjectIdentifier(x)], size(x, alignment: alignment) == bytes {
                    itemOf[ObjectIdentifier(o)] = k
                    items[k].end = max(items[k].end, lastUse(o, from: i))
                    plan.aliases[o.name] = items[k].value.name
                    continue
                }
                itemOf[ObjectIdentifier(o)] = items.count
                items.append(Item(value: o, start: i, end: lastUse(o, from: i), bytes: bytes))
            }
        }
        // Placed items are found by where they start: short-lived ones (most) in buckets by start
        // position, searched only within `shortSpan` before the item; long-lived ones in a list
        // searched whole. This keeps planning near-linear on graphs of tens of thousands of nodes.
        let shortSpan = 64
        var placed: [(start: Int, end: Int, offset: Int, bytes: Int)] = []
        var byStart = [[Int]](repeating: [], count: g.nodes.count + 1)
        var longLived: [Int] = []
        for item in items.sorted(by: { $0.bytes != $1.bytes ? $0.bytes > $1.bytes : $0.start < $1.start }) {
            var candidates = longLived
            for pos in max(0, item.start - shortSpan)...min(item.end, g.nodes.count) { candidates += byStart[pos] }
            let overlapping = candidates.map { placed[$0] }.filter { $0.start <= item.end && item.start <= $0.end }.sorted { $0.offset < $1.offset }
            var offset = 0
            for p in overlapping {
                if offset + item.bytes <= p.offset { break }
                offset = max(offset, p.offset + p.bytes)
            }
            if item.end - item.start > shortSpan { longLived.append(placed.count) } else { byStart[item.start].append(placed.count) }
            placed.append((item.start, item.end, offset, item.bytes))
            plan.arenaBytes = max(plan.arenaBytes, offset + item.bytes)
            plan.totalBytes += item.bytes
            plan.slots[item.value.name] = Slot(offset: offset, bytes: item.bytes)
        }
        for (alias, root) in plan.aliases { plan.slots[alias] = plan.slots[root] }
        return plan
    }
}
