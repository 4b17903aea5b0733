import Foundation
import SofieBackends
import SofieFrontends
import SofieIR
import SofiePasses

/// Pass plugins: shared libraries that add passes to `sofie convert|compile` at run time
/// (`--load-pass-plugin libMyPasses.so --passes default,my-pass`), after LLVM's
/// `-load-pass-plugin`.
///
/// The boundary is C and the model crosses it as ONNX bytes, so that a plugin (a Swift package
/// built with its own copy of this library) and the sofie executable never share Swift objects.
/// A plugin is a `.dynamic` library product that depends on the `Sofie` product and defines
///
///     @_cdecl("sofie_plugin_init") public func sofiePluginInit() {
///         PassPlugin.export([MyPass(), myRewriteRule])
///     }
///
/// and links with `-Xlinker -Bsymbolic` (its references to this library bind to its own copy).
/// This library provides the rest of the entry points, which the host looks up with dlsym:
///
///     int32_t sofie_plugin_abi_version(void);                      // 1
///     int32_t sofie_plugin_pass_count(void);
///     const char* sofie_plugin_pass_name(int32_t i);               // owned by the plugin
///     const char* sofie_plugin_pass_summary(int32_t i);
///     int32_t sofie_plugin_run_pass(int32_t i, const uint8_t* onnx, size_t n,
///                                   uint8_t** out, size_t* outN, char** error);
///             // 1: changed (*out holds the new model), 0: unchanged, -1: *error says why
///     void sofie_plugin_free(void* p);                             // frees *out and *error
public enum PassPlugin {
    static var exported: [GraphPass] = []
    static var cStrings: [UnsafeMutablePointer<CChar>] = []

    /// Called from the plugin's `sofie_plugin_init`: the passes the plugin offers.
    public static func export(_ passes: [GraphPass]) {
        exported = passes
        for p in cStrings { free(p) }
        cStrings = passes.flatMap { [strdup($0.name)!, strdup($0.summary)!] }
    }

    public static let abiVersion: Int32 = 1

    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    typealias InitFn = @convention(c) () -> Void
    typealias AbiFn = @convention(c) () -> Int32
    typealias CountFn = @convention(c) () -> Int32
    typealias TextFn = @convention(c) (Int32) -> UnsafePointer<CChar>?
    typealias RunFn = @convention(c) (Int32, UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                                      UnsafeMutablePointer<Int>?, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32
    typealias FreeFn = @convention(c) (UnsafeMutableRawPointer?) -> Void

    /// A pass that runs inside a loaded plugin: the model goes over as ONNX and, when the pass
    /// changed it, comes back as ONNX and replaces the graph.
    struct Remote: GraphPass {
        let name: String
        let summary: String
        let index: Int32
        let library: String
        let run: RunFn
        let free: FreeFn

        func run(_ model: Model) throws -> Bool {
            let bytes = try ONNXWriter.serialize(model)
            var out: UnsafeMutablePointer<UInt8>? = nil
            var outCount = 0
            var error: UnsafeMutablePointer<CChar>? = nil
            let status = bytes.withUnsafeBufferPointer { run(index, $0.baseAddress, $0.count, &out, &outCount, &error) }
            defer { free(out); free(error) }
            switch status {
            case 0: return false
            case 1:
                guard let out, outCount > 0 else { throw LoadError(description: "\(library): pass '\(name)' reported a change but returned no model") }
                let changed = try ONNXReader.read(bytes: UnsafeRawBufferPointer(start: out, count: outCount),
                                                  file: "\(library) (pass '\(name)')", baseDirectory: nil)
                model.graph = changed.graph
                model.opsetImports = changed.opsetImports
                return true
            default:
                let why = error.map { String(cString: $0) } ?? "no reason given"
                throw LoadError(description: "\(library): pass '\(name)' failed: \(why)")
            }
        }
    }

    /// Loads a plugin and registers its passes by name (PassRegistry.register); returns their names.
    @discardableResult
    public static func load(_ path: String) throws -> [String] {
        guard FileManager.default.fileExists(atPath: path) else { throw LoadError(description: "\(path): no such pass plugin") }
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw LoadError(description: "\(path): cannot load the pass plugin: \(dlerror().map { String(cString: $0) } ?? "unknown error")")
        }
        func symbol<T>(_ name: String, _ type: T.Type) throws -> T {
            guard let p = dlsym(handle, name) else {
                throw LoadError(description: "\(path): not a sofie pass plugin (it has no \(name); see PassPlugin in SofieDriver)")
            }
            return unsafeBitCast(p, to: type)
        }
        let abi = try symbol("sofie_plugin_abi_version", AbiFn.self)()
        guard abi == abiVersion else { throw LoadError(description: "\(path): plugin ABI version \(abi), this sofie speaks \(abiVersion); rebuild the plugin") }
        try symbol("sofie_plugin_init", InitFn.self)()
        let count = try symbol("sofie_plugin_pass_count", CountFn.self)()
        let nameOf = try symbol("sofie_plugin_pass_name", TextFn.self), summaryOf = try symbol("sofie_plugin_pass_summary", TextFn.self)
        let run = try symbol("sofie_plugin_run_pass", RunFn.self), free = try symbol("sofie_plugin_free", FreeFn.self)
        guard count >= 0, count <= 1000 else { throw LoadError(description: "\(path): the plugin claims \(count) passes") }
        var names: [String] = []
        for i in 0..<count {
            guard let n = nameOf(i).map({ String(cString: $0) }), !n.isEmpty else { throw LoadError(description: "\(path): pass \(i) has no name") }
            if PassRegistry.builtins.contains(where: { $0.name == n }) {
                throw LoadError(description: "\(path): pass '\(n)' has the name of a built-in pass")
            }
            let pass = Remote(name: n, summary: summaryOf(i).map { String(cString: $0) } ?? "", index: i, library: path, run: run, free: free)
            PassRegistry.register(n) { pass }
            names.append(n)
        }
        return names
    }
}

// The plugin side of the boundary (see PassPlugin). In the sofie executable these are unused.

@_cdecl("sofie_plugin_abi_version")
public func sofie_plugin_abi_version() -> Int32 { PassPlugin.abiVersion }

@_cdecl("sofie_plugin_pass_count")
public func sofie_plugin_pass_count() -> Int32 { Int32(PassPlugin.exported.count) }

@_cdecl("sofie_plugin_pass_name")
public func sofie_plugin_pass_name(_ i: Int32) -> UnsafePointer<CChar>? {
    i >= 0 && Int(i) < PassPlugin.exported.count ? UnsafePointer(PassPlugin.cStrings[Int(i) * 2]) : nil
}

@_cdecl("sofie_plugin_pass_summary")
public func sofie_plugin_pass_summary(_ i: Int32) -> UnsafePointer<CChar>? {
    i >= 0 && Int(i) < PassPlugin.exported.count ? UnsafePointer(PassPlugin.cStrings[Int(i) * 2 + 1]) : nil
}

@_cdecl("sofie_plugin_run_pass")
public func sofie_plugin_run_pass(_ i: Int32, _ input: UnsafePointer<UInt8>?, _ count: Int,
                                  _ output: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?, _ outputCount: UnsafeMutablePointer<Int>?,
                                  _ errorOut: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    output?.pointee = nil
    outputCount?.pointee = 0
    errorOut?.pointee = nil
    do {
        guard i >= 0, Int(i) < PassPlugin.exported.count, let input, count > 0, let output, let outputCount else {
            throw PassPlugin.LoadError(description: "invalid arguments")
        }
        let pass = PassPlugin.exported[Int(i)]
        let model = try ONNXReader.read(bytes: UnsafeRawBufferPointer(start: input, count: count), file: "model from sofie", baseDirectory: nil)
        guard try pass.run(model) else { return 0 }
        let bytes = try ONNXWriter.serialize(model)
        guard let buffer = malloc(max(bytes.count, 1))?.assumingMemoryBound(to: UInt8.self) else { throw PassPlugin.LoadError(description: "out of memory") }
        bytes.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: bytes.count) }
        output.pointee = buffer
        outputCount.pointee = bytes.count
        return 1
    } catch {
        errorOut?.pointee = strdup("\(error)")
        return -1
    }
}

@_cdecl("sofie_plugin_free")
public func sofie_plugin_free(_ p: UnsafeMutableRawPointer?) { free(p) }
