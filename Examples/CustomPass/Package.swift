// swift-tools-version:6.0
// An example of a user's own package that adds passes to swift-sofie's pipeline, two ways:
// a program that runs them through the library (custom-pass-demo), and a pass plugin that the
// sofie command loads (libCustomPassPlugin.so: sofie compile --load-pass-plugin ... --passes ...).
import PackageDescription

let package = Package(
    name: "CustomPass",
    products: [
        .library(name: "CustomPassPlugin", type: .dynamic, targets: ["CustomPassPlugin"]),
    ],
    dependencies: [
        .package(name: "swift-sofie", path: "../.."),
    ],
    targets: [
        .target(
            name: "CustomPasses",
            dependencies: [.product(name: "Sofie", package: "swift-sofie")],
            path: "Sources/CustomPasses",
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .executableTarget(
            name: "custom-pass-demo",
            dependencies: ["CustomPasses", .product(name: "Sofie", package: "swift-sofie")],
            path: "Sources/CustomPassDemo",
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        // The plugin binds its references to its own copy of the Sofie library (-Bsymbolic):
        // the sofie executable that loads it has one too, and only C and ONNX bytes cross.
        .target(
            name: "CustomPassPlugin",
            dependencies: ["CustomPasses", .product(name: "Sofie", package: "swift-sofie")],
            path: "Sources/CustomPassPlugin",
            swiftSettings: [.swiftLanguageMode(.v5)],
            linkerSettings: [.unsafeFlags(["-Xlinker", "-Bsymbolic"])]
        ),
    ]
)
