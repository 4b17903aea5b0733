import SofieIR

/// Summary figures that `sofie inspect` prints.
public enum ModelStatistics {
    public struct Summary {
        public var nodeCount = 0
        public var initializerCount = 0
        public var initializerElements = 0
        public var initializerBytes = 0
        /// Elements and bytes produced by Constant nodes and by ConstantOfShape nodes with a constant shape.
        public var constantNodeElements = 0
        public var constantNodeBytes = 0
    }

    public static func summarize(_ graph: Graph) -> Summary {
        var s = Summary()
        func visit(_ g: Graph) {
            for v in g.initializers {
                guard let t = v.initializer else { continue }
                s.initializerCount += 1
                s.initializerElements += t.elementCount
                s.initializerBytes += t.rawBytes?.count ?? 0
            }
            for n in g.nodes {
                s.nodeCount += 1
                if n.opType == "Constant", let t = n.tensor("value") {
                    s.constantNodeElements += t.elementCount
                    s.constantNodeBytes += t.rawBytes?.count ?? 0
                } else if n.opType == "ConstantOfShape", let shape = n.input(0)?.initializer?.integers() ?? constantShape(n.input(0)) {
                    let count = shape.reduce(1) { $0.multipliedReportingOverflow(by: max($1, 0)).partialValue }
                    let elem = n.tensor("value")?.dataType.byteSize ?? 4
                    s.constantNodeElements += count
                    s.constantNodeBytes += count * elem
                }
                n.subgraphs.forEach(visit)
            }
        }
        visit(graph)
        return s
    }

    private static func constantShape(_ v: Value?) -> [Int]? {
        guard let p = v?.producer, p.opType == "Constant" else { return nil }
        return p.tensor("value")?.integers()
    }
}
