import SofieIR

/// NAME::Functor, for ROOT's RDataFrame and any other caller that computes one row per call from
/// scalar values on several threads: `df.Define("score", NAME::Functor("NAME.weights", nSlots),
/// {"f0", "f1", ...})`. Its call operator takes one scalar per element of the model's single
/// input (so RDataFrame can read the column types from its signature) and returns the first
/// output, as a scalar when it has one element, else as a std::vector. Copies share a pool of
/// Sessions (nSlots made up front, more if more threads than that call at once), so calls from
/// RDataFrame's worker threads never share a Session. Emitted for models with one numeric input
/// of at most `maxColumns` elements per row and a numeric first output; it runs one row through
/// `infer(in, out...)`, which a model with a run-time batch has as well.
enum CppFunctor {
    static let maxColumns = 256

    static func emit(namespace ns: String, inputs: [CTensor], outputs: [CTensor], embedded: Bool) -> String? {
        guard inputs.count == 1, let out = outputs.first, inputs[0].dtype != .bool, out.dtype != .bool,
              inputs[0].count >= 1, inputs[0].count <= maxColumns, out.count >= 1 else { return nil }
        let n = inputs[0].count, m = out.count
        let inType = inputs[0].ctype, outType = out.ctype
        let ret = m == 1 ? outType : "std::vector<\(outType)>"
        var h = ""
        func w(_ s: String = "") { h += s + "\n" }
        w("// For ROOT's RDataFrame (and any per-row, multi-threaded caller):")
        w("//   df.Define(\"score\", \(ns)::Functor(\(embedded ? "" : "\"\(ns).weights\", ")df.GetNSlots()), {\(n) column names});")
        w("// One scalar per input element (Column: the columns' type, converted to \(inType)); returns the")
        w("// first output (\(m == 1 ? "one value" : "\(m) values")). Copies share a pool of Sessions, one per concurrent caller.")
        classHead(w, template: "class Column = \(inType)", embedded: embedded)
        let params = (0..<n).map { "Column x\($0)" }.joined(separator: ", ")
        w("    \(ret) operator()(\(params)) const {")
        w("        const \(inType) in[\(n)] = {\((0..<n).map { "static_cast<\(inType)>(x\($0))" }.joined(separator: ", "))};")
        let extra = outputs.dropFirst().enumerated().map { k, t in (k + 1, t) }
        for (k, t) in extra { w("        \(t.ctype) out\(k)[\(t.count)];") }
        w("        \(ret) result\(m == 1 ? "{}" : "(\(m))");")
        w("        Session* s = pool_->acquire();")
        let first = m == 1 ? "&result" : "result.data()"
        let args = ["in", first] + extra.map { "out\($0.0)" }
        w("        try {")
        w("            s->infer(\(args.joined(separator: ", ")));")
        w("        } catch (...) {")
        w("            pool_->release(s);")
        w("            throw;")
        w("        }")
        w("        pool_->release(s);")
        w("        return result;")
        w("    }")
        w()
        pool(w, embedded: embedded)
        w("using Functor = FunctorT<>;")
        w()
        return h
    }

    /// The class template's head and its constructor, which fills the shared pool with nSlots Sessions.
    static func classHead(_ w: (String) -> Void, template parameter: String, embedded: Bool) {
        w("template <\(parameter)>")
        w("class FunctorT {")
        w("public:")
        let ctorArgs = embedded ? "unsigned nSlots = 1" : "const std::string& weightsPath, unsigned nSlots = 1"
        w("    explicit FunctorT(\(ctorArgs)) : pool_(std::make_shared<Pool>()) {")
        if !embedded { w("        pool_->path = weightsPath;") }
        w("        for (unsigned i = 0; i < (nSlots ? nSlots : 1); ++i) pool_->release(pool_->make());")
        w("    }")
    }

    /// The Session pool every functor copy shares (private section and class end).
    static func pool(_ w: (String) -> Void, embedded: Bool) {
        w("private:")
        w("    struct Pool {")
        if !embedded { w("        std::string path;") }
        w("        std::mutex mutex;")
        w("        std::vector<std::unique_ptr<Session>> all;")
        w("        std::vector<Session*> idle;")
        w("        Session* make() {")
        w("            auto s = std::make_unique<Session>(\(embedded ? "" : "path"));")
        w("            std::lock_guard<std::mutex> lock(mutex);")
        w("            all.push_back(std::move(s));")
        w("            return all.back().get();")
        w("        }")
        w("        Session* acquire() {")
        w("            {")
        w("                std::lock_guard<std::mutex> lock(mutex);")
        w("                if (!idle.empty()) { Session* s = idle.back(); idle.pop_back(); return s; }")
        w("            }")
        w("            return make();  // more concurrent callers than nSlots")
        w("        }")
        w("        void release(Session* s) {")
        w("            std::lock_guard<std::mutex> lock(mutex);")
        w("            idle.push_back(s);")
        w("        }")
        w("    };")
        w("    std::shared_ptr<Pool> pool_;")
        w("};")
    }

    /// NAME::FunctorT<Collection> for a model with a run-time dimension read off its single
    /// input's size (`--dim n=max:B`): its call operator takes one collection per row (an
    /// RDataFrame `ROOT::RVecF` column of a variable number of particles, or any container with
    /// begin()/end()), runs `infer(x)`, which derives n from the size, and returns the first
    /// output as a std::vector (as long as the run made it). Same Session pool as the scalar form.
    static func emitCollection(namespace ns: String, input: CTensor, outputs: [CTensor], embedded: Bool) -> String? {
        guard let out = outputs.first, input.dtype != .bool, out.dtype != .bool, !input.dtype.isReducedFloat, !out.dtype.isReducedFloat else { return nil }
        let inType = input.ctype, outType = out.ctype
        var h = ""
        func w(_ s: String = "") { h += s + "\n" }
        w("// For ROOT's RDataFrame (and any per-row, multi-threaded caller) with a collection per row:")
        w("//   df.Define(\"out\", \(ns)::FunctorT<ROOT::RVecF>(\(embedded ? "" : "\"\(ns).weights\", ")df.GetNSlots()), {\"column\"});")
        w("// The collection holds the input's \(inType) values, its size choosing the run-time dimension (infer(x));")
        w("// returns the first output as a std::vector. Copies share a pool of Sessions, one per concurrent caller.")
        classHead(w, template: "class Collection = std::vector<\(inType)>", embedded: embedded)
        w("    std::vector<\(outType)> operator()(const Collection& x) const {")
        w("        std::vector<\(inType)> in;")
        w("        for (const auto& v : x) in.push_back(static_cast<\(inType)>(v));")
        w("        Session* s = pool_->acquire();")
        w("        try {")
        w("            auto result = s->infer(in);")
        w("            pool_->release(s);")
        w("            return \(outputs.count == 1 ? "result" : "std::get<0>(std::move(result))");")
        w("        } catch (...) {")
        w("            pool_->release(s);")
        w("            throw;")
        w("        }")
        w("    }")
        w()
        pool(w, embedded: embedded)
        w("using Functor = FunctorT<>;")
        w()
        return h
    }
}
