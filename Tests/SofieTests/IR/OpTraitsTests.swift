import SofieIR
import XCTest

/// The op facts that passes and the C++ backend act on, as stated on the op definitions.
final class OpTraitsTests: XCTestCase {
    func traits(_ op: String) -> OpTraits { OpRegistry.definitions[op]?.traits ?? [] }

    func testRowIndependentOps() {
        // Every op the batch analysis once listed by name (and the unary elementwise ops).
        let rowwise = ["Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool",
                       "BatchNormalization", "InstanceNormalization", "LRN", "Identity", "Dropout", "Cast", "CastLike",
                       "DepthToSpace", "SpaceToDepth", "GroupNormalization",
                       "Abs", "Neg", "Sqrt", "Exp", "Log", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh",
                       "Acosh", "Atanh", "Erf", "Floor", "Ceil", "Round", "Reciprocal", "Sign", "Relu", "Sigmoid", "Tanh",
                       "Softplus", "Softsign", "Not", "BitwiseNot", "LeakyRelu", "Elu", "Celu", "Selu", "ThresholdedRelu",
                       "HardSigmoid", "HardSwish", "Mish", "Swish", "Gelu", "Shrink", "IsNaN", "IsInf"]
        for op in rowwise { XCTAssertTrue(traits(op).contains(.rowIndependent), op) }
        // Ops that mix rows must not claim it.
        for op in ["MatMul", "Gemm", "Softmax", "ReduceSum", "Transpose", "Reshape", "Concat", "LayerNormalization", "Attention"] {
            XCTAssertFalse(traits(op).contains(.rowIndependent), op)
        }
    }

    func testDataMovementAndAliasing() {
        for op in ["Reshape", "Flatten", "Squeeze", "Unsqueeze"] { XCTAssertTrue(traits(op).isSuperset(of: [.aliasesInput, .movesElements]), op) }
        for op in ["Transpose", "Concat", "Split", "Slice", "Gather", "GatherElements", "GatherND", "Expand", "Tile", "Identity",
                   "DepthToSpace", "SpaceToDepth", "ReverseSequence", "TensorScatter"] {
            XCTAssertTrue(traits(op).contains(.movesElements), op)
            if !["Identity"].contains(op) { XCTAssertFalse(traits(op).contains(.aliasesInput), op) }
        }
        for op in ["Shape", "Size"] { XCTAssertTrue(traits(op).contains(.readsShapeOnly), op) }
        for op in ["Add", "Relu", "Conv", "Cast", "QuantizeLinear"] { XCTAssertTrue(traits(op).isDisjoint(with: [.movesElements, .aliasesInput]), op) }
    }
}
