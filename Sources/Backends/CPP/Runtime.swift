import Foundation

/// The C++ kernels every emitted header carries, shared by all models in a translation unit
/// through an include guard. They live as C++ in `runtime/` (sofie_runtime.h and its parts, see
/// the README there), embedded into this module at build time by the EmbedCpp plugin; tuning
/// happens there. The cache-blocked GEMM in gemm.h serves Gemm, MatMul, Conv and ConvTranspose.
enum CppRuntime {
    // The runtime's sizes the emitter sizes workspaces and packed weights with (CppNN.packElements,
    // the depthwise path). The C++ defines the same constants (KC, NC, kMaxNR, kPanel, kDepthwise*);
    // RuntimeKernelTests fails if the two disagree.
    /// GEMM blocking: rows of K and columns of N per packed block of B.
    static let kc = 256, nc = 1024
    /// The widest register tile's columns (AVX-512: 2 vectors of 16 floats); the C++ checks NR
    /// against it with a static_assert.
    static let maxNR = 32
    /// Direct depthwise convolution: outputs per row, the padded input row, the whole workspace.
    static let depthwiseMaxRow = 1024
    static let depthwiseRowBuffer = 4 * depthwiseMaxRow + 256
    static let depthwiseWork = depthwiseMaxRow + 64 + depthwiseRowBuffer
    /// Columns per panel of a packed matrix for row-times-matrix products (recurrent steps).
    static let gemvPanel = 128

    /// Elements of `pack_panels`' output for a K x N matrix.
    static func panelElements(k: Int, n: Int) -> Int { (n + gemvPanel - 1) / gemvPanel * k * gemvPanel }

    /// The runtime's C++ text: runtime/sofie_runtime.h with its parts inlined (embedded at build
    /// time by the EmbedCpp plugin). The constants above are the C++ ones (KC, NC, kMaxNR, kPanel,
    /// kDepthwise*); RuntimeKernelTests checks that they agree.
    static let source = EmbeddedCpp.runtime
}

extension CppRuntime {
    /// The runtime is named after its content (FNV-1a 64 of the source): headers emitted by the
    /// same sofie share one copy in a translation unit; headers from sofie versions whose
    /// runtimes differ each keep their own (guard SOFIE_RUNTIME_<hash>, namespace
    /// sofie_rt_<hash>), instead of one silently using the other's kernels.
    static func tag(of text: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    static let versionTag = tag(of: source)

    /// A target the emitted `run` can switch to at run time when the translation unit was built
    /// for less (plain -O2, what many build systems use): the runtime is copied once more,
    /// compiled for it, and `run` gets a twin compiled against that copy.
    struct DispatchTarget {
        /// The suffix of the copy's namespace (`sofie_rt_<tag>_<name>`) and of the twins (`run_<name>`).
        let name: String
        /// What the twins are compiled for (`#pragma GCC target`).
        let gccTarget: String
        let vectorBytes: Int
        /// Defined when the translation unit is built for the target already: no copy, no twin.
        let presentMacro: String
        /// Defined when the copy and the twins exist (the same condition for every header of a
        /// translation unit, whatever its sofie version).
        let twinsMacro: String
        /// Defined by the user: no copy for this target (-DSOFIE_NO_DISPATCH: none at all).
        let optOutMacro: String
        /// The runtime's test of the CPU (and of the OS saving the target's registers).
        let check: String
        let label: String
    }

    /// Widest first: `run` takes the first one the CPU has. Packed weights are laid out the same
    /// for every vector width (slivers of kMaxNR, panels of kPanel), so every twin reads the same
    /// Session. Only GCC on x86-64 gets copies (Clang has no `#pragma GCC target`).
    static let dispatchTargets: [DispatchTarget] = [
        DispatchTarget(name: "avx512", gccTarget: "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma", vectorBytes: 64,
                       presentMacro: "__AVX512F__", twinsMacro: "SOFIE_AVX512_TWINS", optOutMacro: "SOFIE_NO_AVX512_DISPATCH",
                       check: "cpu_has_avx512", label: "AVX-512"),
        DispatchTarget(name: "avx2", gccTarget: "avx2,fma", vectorBytes: 32,
                       presentMacro: "__AVX2__", twinsMacro: "SOFIE_AVX2_TWINS", optOutMacro: "SOFIE_NO_AVX2_DISPATCH",
                       check: "cpu_has_avx2_fma", label: "AVX2 + FMA"),
    ]

    /// The condition under which `t`'s copy and twins exist.
    static func dispatchCondition(_ t: DispatchTarget) -> String {
        "defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(\(t.presentMacro)) && !defined(SOFIE_NO_DISPATCH) && !defined(\(t.optOutMacro))"
    }

    /// The runtime again for each dispatch target, each in a `#pragma GCC target` region
    /// (SOFIE_RT_VECTOR_BYTES sets its vector width), in namespace `sofie_rt_<tag>_<name>` under
    /// guard `SOFIE_RUNTIME_<tag>_<NAME>`.
    static let dispatchCopy: String = dispatchTargets.map { t in
        """
        #if \(dispatchCondition(t))
        #pragma GCC push_options
        #pragma GCC target("\(t.gccTarget)")
        #define SOFIE_RT_VECTOR_BYTES \(t.vectorBytes)
        #ifndef \(t.twinsMacro)
        #define \(t.twinsMacro) 1
        #endif
        """ + "\n" + renamed(guardName: "SOFIE_RUNTIME_\(versionTag)_\(t.name.uppercased())", namespace: "sofie_rt_\(versionTag)_\(t.name)") + """
        #undef SOFIE_RT_VECTOR_BYTES
        #pragma GCC pop_options
        #endif
        """ + "\n"
    }.joined()

    /// The source as emitted: guard and namespace carry `versionTag`.
    static let versioned: String = renamed(guardName: "SOFIE_RUNTIME_\(versionTag)", namespace: "sofie_rt_\(versionTag)")

    /// The source with its include guard and every opening and closing of its namespace renamed.
    static func renamed(guardName: String, namespace: String) -> String {
        source.replacingOccurrences(of: "SOFIE_RUNTIME_V2", with: guardName)
            .replacingOccurrences(of: "namespace sofie_rt {", with: "namespace \(namespace) {")
            .replacingOccurrences(of: "}  // namespace sofie_rt\n", with: "}  // namespace \(namespace)\n")
    }
}
