import Dispatch
import SofieIR

/// A graph transformation: a name for pipelines, one line for `sofie passes`, and `run`,
/// which says whether it changed the model.
public protocol GraphPass {
    var name: String { get }
    var summary: String { get }
    func run(_ model: Model) throws -> Bool
    /// The same, telling `report` what it did (rewrites by rule, refusals by reason). The
    /// default runs `run(_:)` and reports nothing; rewrite rules and rule sets report.
    func run(_ model: Model, report: PassReport) throws -> Bool
    /// Whether the pass must end a pipeline (it records facts about the final graph, as
    /// plan-memory does): the pass manager refuses a pipeline that runs anything after it.
    var mustRunLast: Bool { get }
}

extension GraphPass {
    public func run(_ model: Model, report: PassReport) throws -> Bool { try run(model) }
    public var mustRunLast: Bool { false }
}

/// What one pass run did beyond changing the graph (MLIR's pass statistics): named counts,
/// such as the rewrites of each rule, and the reasons rules gave for not rewriting a match.
public final class PassReport {
    public private(set) var counts: [String: Int] = [:]
    public private(set) var refusals: [String: Int] = [:]

    public init() {}

    public func count(_ what: String, _ n: Int = 1) { counts[what, default: 0] += n }
    public func refused(_ reason: String) { refusals[reason, default: 0] += 1 }
}

/// Runs passes in order, optionally to a fixed point, optionally verifying the IR after each.
public struct PassManager {
    public var passes: [GraphPass]
    public var fixedPoint: Bool
    public var maxIterations: Int
    public var verifyEach: Bool
    /// Called after every pass run (for --print-after / --dump-after), with whether it changed the model.
    public var afterEach: ((GraphPass, Model, Bool) throws -> Void)?
    /// When set, every pass run is counted in it (runs, changes, nodes removed and added, time).
    public var statistics: PassStatistics?

    public init(_ passes: [GraphPass], fixedPoint: Bool = false, maxIterations: Int = 20, verifyEach: Bool = false) {
        self.passes = passes
        self.fixedPoint = fixedPoint
        self.maxIterations = maxIterations
        self.verifyEach = verifyEach
    }

    @discardableResult
    public func run(_ model: Model) throws -> Bool {
        // Ordering rules are checked, not only written down: a pass that must end the pipeline
        // ends it. (In a fixed-point pipeline it then runs again after every round that changed
        // the graph, so its result still describes the final graph.)
        if let i = passes.firstIndex(where: \.mustRunLast), i != passes.count - 1 {
            throw PassError(pass: passes[i].name, message: "must be the last pass of a pipeline, but '\(passes[i + 1].name)' runs after it; put it at the end")
        }
        var changedAny = false
        for _ in 0..<(fixedPoint ? maxIterations : 1) {
            var changed = false
            for pass in passes {
                let before = statistics == nil ? 0 : model.graph.nodes.count
                let start = statistics == nil ? 0 : DispatchTime.now().uptimeNanoseconds
                let report = PassReport()
                let did = try pass.run(model, report: report)
                if did { changed = true }
                if let statistics {
                    statistics.record(pass.name, changed: did, nodesBefore: before, nodesAfter: model.graph.nodes.count,
                                      nanoseconds: DispatchTime.now().uptimeNanoseconds - start, report: report)
                }
                try afterEach?(pass, model, did)
                if verifyEach {
                    do { try Verifier.verify(model) } catch {
                        throw PassError(pass: pass.name, message: "left the graph broken: \(error)")
                    }
                }
            }
            changedAny = changedAny || changed
            if !changed { break }
        }
        return changedAny
    }
}

public struct PassError: Error, CustomStringConvertible {
    public let pass: String
    public let message: String
    public var description: String { "pass \(pass): \(message)" }
}

/// What each pass did over a pipeline run (MLIR's pass statistics, by counting around each run):
/// how often it ran and changed the graph, the nodes it removed and added (net per run: a
/// fusion of three nodes into one counts 2 removed), and its time.
public final class PassStatistics {
    public struct Entry {
        public let pass: String
        public var runs = 0, changed = 0, removed = 0, added = 0
        public var nanoseconds: UInt64 = 0
        /// Summed over the runs: what the pass counted (rewrites by rule) and why rules refused.
        public var counts: [String: Int] = [:]
        public var refusals: [String: Int] = [:]
    }
    public private(set) var entries: [Entry] = []

    public init() {}

    func record(_ pass: String, changed: Bool, nodesBefore: Int, nodesAfter: Int, nanoseconds: UInt64, report: PassReport) {
        let i = entries.firstIndex { $0.pass == pass } ?? { entries.append(Entry(pass: pass)); return entries.count - 1 }()
        entries[i].runs += 1
        if changed { entries[i].changed += 1 }
        if nodesAfter < nodesBefore { entries[i].removed += nodesBefore - nodesAfter } else { entries[i].added += nodesAfter - nodesBefore }
        entries[i].nanoseconds += nanoseconds
        entries[i].counts.merge(report.counts, uniquingKeysWith: +)
        entries[i].refusals.merge(report.refusals, uniquingKeysWith: +)
    }

    /// A table, one line per pass in the order they first ran.
    public var text: String {
        let width = max(4, entries.map(\.pass.count).max() ?? 0)
        var lines = ["pass".padding(toLength: width, withPad: " ", startingAt: 0) + "  runs  changed  nodes -  nodes +      ms"]
        for e in entries {
            let ms = String(format: "%7.1f", Double(e.nanoseconds) / 1e6)
            lines.append(e.pass.padding(toLength: width, withPad: " ", startingAt: 0)
                         + "  " + pad(e.runs, 4) + "  " + pad(e.changed, 7) + "  " + pad(e.removed, 7) + "  " + pad(e.added, 7) + "  " + ms)
            for (what, n) in e.counts.sorted(by: { $0.key < $1.key }) { lines.append("    rewrote \(n)x: \(what)") }
            for (why, n) in e.refusals.sorted(by: { $0.key < $1.key }) { lines.append("    refused \(n)x: \(why)") }
        }
        return lines.joined(separator: "\n")
    }

    func pad(_ n: Int, _ w: Int) -> String { String(repeating: " ", count: max(0, w - String(n).count)) + String(n) }
}
