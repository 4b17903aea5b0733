import SofieIR

/// A zero-padding Pad (constant mode, value 0, spatial axes only) read only by a Conv becomes
/// part of the Conv's own padding: the padded copy of the input disappears.
public struct FusePadConv: GraphPass {
    public let name = "fuse-pad-conv"
    public let summary = "fold a zero Pad of the spatial axes into the Conv that reads it"
    public init() {}

    public func run(_ model: Model) throws -> Bool {
        let g = model.graph
        let opset = model.onnxOpset ?? 21
        let outputs = Set(g.outputs.map(ObjectIdentifier.init))
        var changed = false
        for conv in g.nodes where conv.opType == "Conv" && conv.isStandard {
            guard let padded = conv.input(0), let pad = padded.producer, pad.opType == "Pad", pad.isStandard,
                  padded.uses.count == 1, !outputs.contains(ObjectIdentifier(padded)), let x = pad.input(0),
                  (pad.string("mode") ?? "constant") == "constant", pad.inputs.count < 4 || pad.input(3) == nil else { continue }
            guard let pads = pad.constantPads(opset: opset) else { continue }
            if opset >= 11 {
                if pad.inputs.count > 2, let c = pad.input(2) {
                    guard let cv = c.initializer.flatMap(NDArray.init), cv.count <= 1, cv.count == 0 || cv.double(0) == 0 else { continue }
                }
            } else {
                guard (pad.float("value") ?? 0) == 0 else { continue }
            }
            let rank = pads.count / 2
            guard rank >= 3, pads.count == 2 * rank, pads.allSatisfy({ $0 >= 0 }),
                  pads[0] == 0, pads[1] == 0, pads[rank] == 0, pads[rank + 1] == 0 else { continue }
            let autoPad = conv.string("auto_pad") ?? "NOTSET"
            guard autoPad == "NOTSET" || autoPad == "VALID" else { continue }
            let spatial = rank - 2
            let old = conv.ints("pads") ?? [Int](repeating: 0, count: 2 * spatial)
            guard old.count == 2 * spatial else { continue }
            var merged = old
            for i in 0..<spatial {
                merged[i] += pads[2 + i]
                merged[spatial + i] += pads[rank + 2 + i]
            }
            conv.attributes.removeAll { $0.name == "auto_pad" || $0.name == "pads" }
            conv.setAttribute("pads", .ints(merged.map { Int64($0) }))
            conv.setInput(0, x)
            changed = true
        }
        if changed { _ = try DeadCodeElimination().run(model) }
        return changed
    }
}

extension Node {
    /// A Pad's amounts ([begin..., end...]) when they are constants: the `pads` attribute before
    /// opset 11, the constant second input from then on.
    func constantPads(opset: Int) -> [Int]? {
        opset >= 11 ? input(1)?.initializer?.integers() : ints("pads")
    }
}
