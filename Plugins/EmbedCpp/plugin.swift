// Build plugin: embeds the C++ runtime headers of a target (its `CPP/runtime` directory) into a
// generated Swift file, through the embed-cpp tool. The headers are the source of truth; the
// Swift code reads them as `EmbeddedCpp.runtime`, `.numberTypes` and `.npy`.
import Foundation
import PackagePlugin

@main
struct EmbedCpp: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let dir = target.directoryURL.appending(path: "CPP/runtime")
        let headers = try FileManager.default.contentsOfDirectory(atPath: dir.path)
            .filter { $0.hasSuffix(".h") }.sorted().map { dir.appending(path: $0) }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedCpp.swift")
        let roots = [("runtime", "sofie_runtime.h"), ("numberTypes", "number_types.h"), ("npy", "npy.h")]
        return [.buildCommand(
            displayName: "Embedding the C++ runtime headers of \(target.name)",
            executable: try context.tool(named: "embed-cpp").url,
            arguments: [output.path] + roots.map { "\($0.0)=\(dir.appending(path: $0.1).path)" },
            inputFiles: headers,
            outputFiles: [output])]
    }
}
