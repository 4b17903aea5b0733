import SofieIR
import XCTest

final class VerifierTests: XCTestCase {
    func makeGraph() -> (Graph, Value) {
        let g = Graph(name: "g")
        let x = Value(name: "x", type: .tensor(TensorType(.float, fixed: [2])))
        g.inputs = [x]
        return (g, x)
    }

    func testWellFormedGraphPasses() throws {
        let (g, x) = makeGraph()
        let y = Value(name: "y", type: .tensor(TensorType(.float, fixed: [2])))
        g.appendNode(Node(opType: "Relu", inputs: [x], outputs: [y]))
        g.outputs = [y]
        XCTAssertNoThrow(try Verifier.verify(g))
        XCTAssertEqual(x.uses.count, 1)
        XCTAssertTrue(y.producer === g.nodes[0])
    }

    func testUseBeforeDefinitionIsReported() {
        let (g, x) = makeGraph()
        let a = Value(name: "a")
        let b = Value(name: "b", type: .tensor(TensorType(.float, fixed: [2])))
        g.appendNode(Node(opType: "Relu", name: "second", inputs: [a], outputs: [b]))
        g.appendNode(Node(opType: "Relu", name: "first", inputs: [x], outputs: [a]))
        g.outputs = [b]
        XCTAssertThrowsError(try Verifier.verify(g)) { e in
            XCTAssertTrue("\(e)".contains("reads 'a' before it is defined"), "\(e)")
        }
    }

    func testDuplicateNamesAndMissingTypesAreReported() {
        let (g, x) = makeGraph()
        let y1 = Value(name: "y")
        let y2 = Value(name: "y")
        g.appendNode(Node(opType: "Relu", inputs: [x], outputs: [y1]))
        g.appendNode(Node(opType: "Relu", inputs: [x], outputs: [y2]))
        g.outputs = [y2]
        XCTAssertThrowsError(try Verifier.verify(g)) { e in
            XCTAssertTrue("\(e)".contains("share the name 'y'"), "\(e)")
            XCTAssertTrue("\(e)".contains("graph output 'y' has no type"), "\(e)")
        }
    }

    func testReplaceAllUsesAndRemoveNode() throws {
        let (g, x) = makeGraph()
        let t = TensorType(.float, fixed: [2])
        let a = Value(name: "a", type: .tensor(t))
        let b = Value(name: "b", type: .tensor(t))
        let identity = Node(opType: "Identity", inputs: [x], outputs: [a])
        g.appendNode(identity)
        g.appendNode(Node(opType: "Relu", inputs: [a], outputs: [b]))
        g.outputs = [b]
        g.replaceAllUses(of: a, with: x)
        g.removeNode(identity)
        XCTAssertNoThrow(try Verifier.verify(g))
        XCTAssertEqual(g.nodes.map(\.opType), ["Relu"])
        XCTAssertEqual(x.uses.count, 1)
        XCTAssertTrue(a.uses.isEmpty)
    }
}
