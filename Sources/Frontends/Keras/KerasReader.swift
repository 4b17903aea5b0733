import Foundation
import SofieIR

/// A float array read from a Keras weights file.
struct KerasWeight {
    let path: String
    let shape: [Int]
    let values: [Float]
}

/// Where a model's weights come from: the `model.weights.h5` of a Keras 3 `.keras` archive
/// (addressed by layer path, matched through the `name` attribute of each `vars` group), or
/// the `model_weights` group of a whole-model `.h5` file (addressed by layer name, listed by
/// the `weight_names` attribute).
protocol KerasWeightSource {
    /// The weights of `layer` (name and class) inside the (nested) model `scope`, in the
    /// layer's variable order.
    func weights(scope: [String], layer: String, className: String, index: Int) throws -> [KerasWeight]
}

/// Keras 3 `model.weights.h5`: layers/<path>/vars/<i>, with nested models nesting the same way.
final class KerasV3Weights: KerasWeightSource {
    let file: HDF5File
    /// For each scope (model path), layer name -> group path.
    private var byName: [String: [String: String]] = [:]
    private var byCounter: [String: [String]] = [:]

    init(file: HDF5File) { self.file = file }

    private func scopePath(_ scope: [String]) throws -> String {
        // scope holds layer names of nested models; resolve each to its path.
        var path = "/layers"
        for name in scope {
            guard let p = try map(for: path)[name] else { throw HDF5Error(file: file.name, message: "no weights group for nested model '\(name)'") }
            path = p + "/layers"
        }
        return path
    }

    private func map(for layersPath: String) throws -> [String: String] {
        if let m = byName[layersPath] { return m }
        var m: [String: String] = [:]
        var order: [String] = []
        let g = HDF5Group(file: file, path: layersPath)
        if file.root.exists(String(layersPath.dropFirst())) {
            for child in try g.members() {
                let cg = g.child(child)
                order.append(cg.path)
                if cg.exists("vars"), let n = try cg.child("vars").stringAttribute("name") { m[n] = cg.path }
            }
        }
        byName[layersPath] = m
        byCounter[layersPath] = order
        return m
    }

    func weights(scope: [String], layer: String, className: String, index: Int) throws -> [KerasWeight] {
        let layersPath = try scopePath(scope)
        let names = try map(for: layersPath)
        var group: String? = names[layer]
        if group == nil && names.isEmpty {
            // tf-keras' own .keras files carry no names: snake_case class name + per-class counter.
            let base = snakeCase(className)
            let candidates = (byCounter[layersPath] ?? []).filter {
                let last = $0.split(separator: "/").last.map(String.init) ?? ""
                return last == base || last.hasPrefix(base + "_")
            }
            if index < candidates.count { group = candidates.sorted(by: counterOrder)[index] }
        }
        guard let group else { return [] }
        var visited = Set<String>()
        return try collect(HDF5Group(file: file, path: group), visited: &visited)
    }

    /// Every dataset under a layer's group: its own vars first, then sub-objects (cells, inner layers) by name.
    /// Each path is visited once: a corrupt file can list a member twice (found by fuzzing: a
    /// few repeated names at each of 32 levels made this walk exponential).
    private func collect(_ g: HDF5Group, visited: inout Set<String>) throws -> [KerasWeight] {
        guard visited.insert(g.path).inserted else { return [] }
        var out: [KerasWeight] = []
        if g.exists("vars") {
            let vars = g.child("vars")
            let keys = try vars.members().sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }
            for k in keys {
                let d = vars.child(k)
                guard d.isDataset else { continue }
                let (shape, values) = try d.readFloats()
                out.append(KerasWeight(path: d.path, shape: shape, values: values))
            }
        }
        for child in try g.members() where child != "vars" && child != "layers" {
            let c = g.child(child)
            if !c.isDataset { out += try collect(c, visited: &visited) }
        }
        return out
    }
}

/// Whole-model `.h5` (Keras 2, and Keras 3's legacy save): model_weights/<layer>/ + weight_names.
final class KerasH5Weights: KerasWeightSource {
    let group: HDF5Group
    init(group: HDF5Group) { self.group = group }

    func weights(scope: [String], layer: String, className: String, index: Int) throws -> [KerasWeight] {
        // Nested models store their layers' weights in the top-level group of the nested model.
        let top = scope.first ?? layer
        guard group.exists(top) else { return [] }
        let g = group.child(top)
        guard let names = try g.stringsAttribute("weight_names") else { return [] }
        var out: [KerasWeight] = []
        for n in names {
            // Nested: keep the weights of this inner layer only ("outer/inner/kernel:0" or "inner/kernel:0").
            if !scope.isEmpty {
                let parts = n.split(separator: "/").map(String.init)
                guard parts.contains(layer) else { continue }
            }
            var d = g.child(n)
            if !d.isDataset, g.exists(layer + "/" + n) { d = g.child(layer).child(n) }
            guard d.isDataset else { throw HDF5Error(file: group.file.name, message: "layer '\(layer)' lists the weight '\(n)', which is missing") }
            let (shape, values) = try d.readFloats()
            out.append(KerasWeight(path: d.path, shape: shape, values: values))
        }
        return out
    }
}

func snakeCase(_ s: String) -> String {
    var out = ""
    let chars = Array(s)
    for (i, c) in chars.enumerated() {
        if c.isUppercase {
            let prevLower = i > 0 && (chars[i - 1].isLowercase || chars[i - 1].isNumber)
            let nextLower = i + 1 < chars.count && chars[i + 1].isLowercase
            if i > 0 && (prevLower || (nextLower && chars[i - 1].isUppercase)) { out += "_" }
            out += c.lowercased()
        } else {
            out.append(c)
        }
    }
    return out
}

private func counterOrder(_ a: String, _ b: String) -> Bool {
    func n(_ s: String) -> Int {
        let last = s.split(separator: "/").last.map(String.init) ?? s
        guard let u = last.lastIndex(of: "_"), let v = Int(last[last.index(after: u)...]) else { return 0 }
        return v
    }
    return n(a) < n(b)
}

/// Reads `.keras` and `.h5` Keras models into the IR (see KerasLowering for the layers).
public enum KerasReader {
    static let configLimit = 64 << 20
    static let weightsLimit = Int(Int32.max)

    public static func read(path: String) throws -> Model {
        let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
        if ext == "keras" {
            let zip = try ZipArchive(path: path)
            guard zip.contains("config.json") else { throw KerasError(file: path, "not a Keras 3 archive: it has no config.json") }
            let json = try zip.read("config.json", limit: configLimit)
            var metadata: [UInt8]? = nil
            if zip.contains("metadata.json") { metadata = try? zip.read("metadata.json", limit: 1 << 20) }
            guard zip.contains("model.weights.h5") else { throw KerasError(file: path, "the archive has no model.weights.h5") }
            let weights = try zip.read("model.weights.h5", limit: weightsLimit)
            return try readKeras3(config: json, weights: weights, metadata: metadata, file: path)
        }
        let file: HDF5File
        do { file = try HDF5File(path: path) } catch let e as HDF5Error { throw KerasError(file: path, e.message) }
        return try readH5(file, path: path)
    }

    /// A Keras 3 model from the contents of a `.keras` archive's entries (config.json,
    /// model.weights.h5 and optionally metadata.json). `file` names it in errors.
    public static func readKeras3(config json: [UInt8], weights: [UInt8], metadata: [UInt8]?, file path: String) throws -> Model {
        let config = try parseJSON(json, file: path, what: "config.json")
        var version = ""
        if let metadata, let meta = try? parseJSON(metadata, file: path, what: "metadata.json") {
            version = meta["keras_version"] as? String ?? ""
        }
        let source = KerasV3Weights(file: try HDF5File(bytes: weights, name: path + "/model.weights.h5"))
        return try KerasLowering(file: path, weights: source, kerasVersion: version).lower(modelConfig: config)
    }

    /// A whole Keras model saved as `.h5` (Keras 2 or 3), from the file's bytes.
    public static func readH5(bytes: [UInt8], file path: String) throws -> Model {
        let file: HDF5File
        do { file = try HDF5File(bytes: bytes, name: path) } catch let e as HDF5Error { throw KerasError(file: path, e.message) }
        return try readH5(file, path: path)
    }

    static func readH5(_ file: HDF5File, path: String) throws -> Model {
        guard let text = try file.root.stringAttribute("model_config") else {
            throw KerasError(file: path, "an HDF5 file without a 'model_config' attribute: not a whole Keras model (a weights-only .h5 cannot be converted)")
        }
        let config = try parseJSON(Array(text.utf8), file: path, what: "model_config")
        let version = try file.root.stringAttribute("keras_version") ?? ""
        guard file.root.exists("model_weights") else { throw KerasError(file: path, "the file has no model_weights group") }
        let weights = KerasH5Weights(group: file.root.child("model_weights"))
        return try KerasLowering(file: path, weights: weights, kerasVersion: version).lower(modelConfig: config)
    }

    static func parseJSON(_ bytes: [UInt8], file: String, what: String) throws -> [String: Any] {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(bytes)), let dict = obj as? [String: Any] else {
            throw KerasError(file: file, "\(what) is not valid JSON")
        }
        return dict
    }
}
