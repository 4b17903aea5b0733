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

    /// The runtime again, for headers built by GCC on x86-64 without AVX2 (plain -O2): compiled
    /// for AVX2 + FMA (a `#pragma GCC target` region; SOFIE_RT_VECTOR_BYTES makes its vectors
    /// 32 bytes), in namespace `sofie_rt_<tag>_avx2` under guard `SOFIE_RUNTIME_<tag>_AVX2`. The
    /// emitted `run` calls its AVX2 twin (the same body, compiled in the same region against this
    /// copy) when the CPU has AVX2 and FMA; SOFIE_AVX2_TWINS says the twins exist (the same
    /// condition for every header of a translation unit, whatever its sofie version). Packed weights are laid out the same for every vector
    /// width (slivers of kMaxNR, panels of kPanel), so both read the same Session. Clang, other
    /// targets, builds with AVX2 already, and -DSOFIE_NO_DISPATCH get no copy.
    static let dispatchCopy: String = """
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__AVX2__) && !defined(SOFIE_NO_DISPATCH)
    #pragma GCC push_options
    #pragma GCC target("avx2,fma")
    #define SOFIE_RT_VECTOR_BYTES 32
    #ifndef SOFIE_AVX2_TWINS
    #define SOFIE_AVX2_TWINS 1
    #endif
    """ + "\n" + renamed(guardName: "SOFIE_RUNTIME_\(versionTag)_AVX2", namespace: "sofie_rt_\(versionTag)_avx2") + """
    #undef SOFIE_RT_VECTOR_BYTES
    #pragma GCC pop_options
    #endif
    """ + "\n"

    /// The source as emitted: guard and namespace carry `versionTag`.
    static let versioned: String = renamed(guardName: "SOFIE_RUNTIME_\(versionTag)", namespace: "sofie_rt_\(versionTag)")

    /// The source with its include guard and every opening and closing of its namespace renamed.
    static func renamed(guardName: String, namespace: String) -> String {
        source.replacingOccurrences(of: "SOFIE_RUNTIME_V2", with: guardName)
            .replacingOccurrences(of: "namespace sofie_rt {", with: "namespace \(namespace) {")
            .replacingOccurrences(of: "}  // namespace sofie_rt\n", with: "}  // namespace \(namespace)\n")
    }
}
