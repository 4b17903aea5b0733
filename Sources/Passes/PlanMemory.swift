import SofieIR

/// Plans the arena of intermediate tensors for the C++ emitter (see `MemoryPlan`): offsets by
/// liveness, Reshape-like outputs aliased to their input. Records the plan on the graph and
/// does not change the graph itself; it must run last (the pass manager checks).
public struct PlanMemory: GraphPass {
    public let name = "plan-memory"
    public let summary = "give intermediate tensors arena offsets by liveness (Reshape/Flatten/Squeeze/Unsqueeze alias their input)"
    public init() {}

    /// The plan describes the final graph: any later change would invalidate it.
    public var mustRunLast: Bool { true }

    public func run(_ model: Model) throws -> Bool {
        model.graph.memoryPlan = MemoryPlan.compute(model.graph)
        return false
    }
}
