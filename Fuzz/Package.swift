// swift-tools-version:6.0
// libFuzzer targets for sofie's readers, kept out of the main package: they are built with
// -sanitize=fuzzer,address, and libFuzzer supplies main(). See scripts/fuzz.sh.
import PackageDescription

let fuzz: [SwiftSetting] = [.swiftLanguageMode(.v5), .unsafeFlags(["-parse-as-library"])]
let package = Package(
    name: "sofie-fuzz",
    dependencies: [.package(name: "swift-sofie", path: "..")],
    targets: [
        .target(name: "CFuzz", path: "Sources/CFuzz"),
        .target(name: "FuzzSupport", dependencies: ["CFuzz", .product(name: "Sofie", package: "swift-sofie")], path: "Sources/FuzzSupport",
                swiftSettings: [.swiftLanguageMode(.v5)]),
        .executableTarget(name: "FuzzONNX", dependencies: ["FuzzSupport", "CFuzz"], path: "Sources/FuzzONNX", swiftSettings: fuzz),
        .executableTarget(name: "FuzzCompile", dependencies: ["FuzzSupport", "CFuzz"], path: "Sources/FuzzCompile", swiftSettings: fuzz),
        .executableTarget(name: "FuzzKeras", dependencies: ["FuzzSupport", "CFuzz"], path: "Sources/FuzzKeras", swiftSettings: fuzz),
        .executableTarget(name: "FuzzH5", dependencies: ["FuzzSupport", "CFuzz"], path: "Sources/FuzzH5", swiftSettings: fuzz),
    ]
)
