// swift-tools-version:6.1
// swift-sofie: an ONNX-centric compiler from Keras/ONNX models to self-contained C++.
//
// Layout (the pipeline, in order):
//   Sources/Frontends  -> SofieFrontends  (ONNX reader, Keras reader)      depends on SofieIR
//   Sources/IR         -> SofieIR         (the graph; pure Swift)          depends on nothing of ours
//   Sources/Passes     -> SofiePasses     (shape inference, folding, ...)  depends on SofieIR
//   Sources/Backends   -> SofieBackends   (ONNX writer, C++ emitter)       depends on SofieIR
//   Sources/CLI        -> sofie           (command line)                   composes them
// Only the ONNX reader and writer touch the protobuf-c types of Schemas/CSofieONNX.
import PackageDescription

let swift5: [SwiftSetting] = [.swiftLanguageMode(.v5)]

let package = Package(
    name: "swift-sofie",
    products: [
        .executable(name: "sofie", targets: ["sofie"]),
        .library(name: "Sofie", targets: ["SofieIR", "SofieFrontends", "SofiePasses", "SofieBackends", "SofieDriver"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries, found with pkg-config (Debian: libprotobuf-c-dev, libhdf5-dev, libzip-dev).
        .systemLibrary(name: "CProtobufC", path: "Sources/CSystem/CProtobufC", pkgConfig: "libprotobuf-c",
                       providers: [.apt(["libprotobuf-c-dev"])]),
        .systemLibrary(name: "CHDF5", path: "Sources/CSystem/CHDF5", pkgConfig: "hdf5",
                       providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CZip", path: "Sources/CSystem/CZip", pkgConfig: "libzip",
                       providers: [.apt(["libzip-dev"])]),
        // protobuf-c code generated from Schemas/onnx.proto by Schemas/generate.sh.
        .target(name: "CSofieONNX", dependencies: ["CProtobufC"], path: "Schemas/CSofieONNX",
                publicHeadersPath: "include"),

        .target(name: "SofieIR", path: "Sources/IR", swiftSettings: swift5),
        .target(name: "SofieFrontends", dependencies: ["SofieIR", "CSofieONNX", "CHDF5", "CZip"],
                path: "Sources/Frontends", swiftSettings: swift5),
        .target(name: "SofiePasses", dependencies: ["SofieIR"], path: "Sources/Passes", swiftSettings: swift5),
        // The C++ runtime the emitted headers carry lives in Sources/Backends/CPP/runtime/*.h, embedded
        // into the module at build time by the EmbedCpp plugin (through the embed-cpp tool).
        .target(name: "SofieBackends", dependencies: ["SofieIR", "CSofieONNX"], path: "Sources/Backends",
                exclude: ["CPP/runtime"], swiftSettings: swift5, plugins: ["EmbedCpp"]),
        .executableTarget(name: "embed-cpp", path: "Sources/EmbedCppTool"),
        .plugin(name: "EmbedCpp", capability: .buildTool(), dependencies: ["embed-cpp"], path: "Plugins/EmbedCpp"),
        // Composes frontends, passes and backends into the compile pipeline (used by the CLI and tests).
        .target(name: "SofieDriver", dependencies: ["SofieIR", "SofieFrontends", "SofiePasses", "SofieBackends"],
                path: "Sources/Driver", swiftSettings: swift5),
        .executableTarget(name: "sofie",
                          dependencies: ["SofieIR", "SofieFrontends", "SofiePasses", "SofieBackends", "SofieDriver",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/CLI", swiftSettings: swift5),

        .testTarget(name: "SofieTests",
                    dependencies: ["SofieIR", "SofieFrontends", "SofiePasses", "SofieBackends", "SofieDriver"],
                    path: "Tests/SofieTests", swiftSettings: swift5),
    ]
)
