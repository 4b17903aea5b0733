// swift-tools-version:6.0
// An example of a user's own package that adds a pass to swift-sofie's pipeline.
import PackageDescription

let package = Package(
    name: "CustomPass",
    dependencies: [
        .package(name: "swift-sofie", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "custom-pass-demo",
            dependencies: [.product(name: "Sofie", package: "swift-sofie")],
            path: "Sources/CustomPassDemo",
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
    ]
)
