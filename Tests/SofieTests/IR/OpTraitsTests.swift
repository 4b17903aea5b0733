import SofieIR
@testable import SofieBackends
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

extension OpTraitsTests {
    /// Each epilogue activation has one meaning: every node SofieOps.activation maps names a
    /// known activation with the right number of parameters, the C++ runtime's Act enum has a
    /// case for each, and the elementwise code generator runs those nodes through
    /// sofie_rt::activate (the fused epilogue's function) rather than an expression of its own.
    func testEpilogueActivationsHaveOneDefinition() throws {
        let x = Value(name: "x", type: .tensor(TensorType(.float, fixed: [4])))
        for op in ["Relu", "Tanh", "HardSwish", "Sigmoid", "Gelu", "Swish", "LeakyRelu", "HardSigmoid", "Clip"] {
            let n = Node(opType: op, inputs: [x], outputs: [Value(name: "y")])
            let (name, params) = try XCTUnwrap(SofieOps.activation(of: n), op)
            XCTAssertEqual(SofieOps.activations[name]?.count, params.count, op)
        }
        XCTAssertNil(SofieOps.activation(of: Node(opType: "Gelu", inputs: [x], outputs: [Value(name: "y")], attributes: [Attribute("approximate", .string(Array("tanh".utf8)))])))
        XCTAssertNil(SofieOps.activation(of: Node(opType: "Relu", domain: "com.example", inputs: [x], outputs: [Value(name: "y")])))
        let runtime = CppRuntime.versioned
        let cases = String(runtime[try XCTUnwrap(runtime.range(of: "enum class Act \\{[^}]*\\}", options: .regularExpression))])
        for name in SofieOps.activations.keys { XCTAssertTrue(cases.contains(" \(name),") || cases.contains(" \(name) }"), "Act::\(name) in \(cases)") }
    }
}

extension OpTraitsTests {
    /// Which ops are dense products and convolutions is stated on their definitions (the batch
    /// plan reads it to choose block bodies), for fused org.sofie forms too.
    func testProductAndConvolutionTraits() {
        func traits(_ op: String, _ domain: String = "") -> OpTraits { OpRegistry.traits(of: Node(opType: op, domain: domain)) }
        for op in ["MatMul", "Gemm", "Einsum"] { XCTAssertTrue(traits(op).contains(.denseProduct), op) }
        XCTAssertTrue(traits("FusedGemm", SofieOps.domain).contains(.denseProduct))
        for op in ["Conv", "ConvTranspose", "DeformConv", "ConvInteger", "QLinearConv"] { XCTAssertTrue(traits(op).contains(.convolution), op) }
        XCTAssertTrue(traits("FusedConv", SofieOps.domain).contains(.convolution))
        for op in ["Add", "Relu", "MaxPool", "MatMulInteger"] { XCTAssertTrue(traits(op).isDisjoint(with: [.denseProduct, .convolution]), op) }
        for op in ["Add", "Sub", "Less", "And", "Where", "PRelu", "Clip", "Max", "Sum", "BitShift"] { XCTAssertTrue(traits(op).contains(.broadcastingElementwise), op) }
        for op in ["Relu", "MatMul", "Concat", "Softmax"] { XCTAssertFalse(traits(op).contains(.broadcastingElementwise), op) }
        for op in ["Add", "Mul", "Equal", "And"] { XCTAssertTrue(traits(op).contains(.commutative), op) }
        for op in ["Sub", "Div", "Max", "Min", "Sum", "Mean", "Less"] { XCTAssertFalse(traits(op).contains(.commutative), op) }
    }
}
