struct Session {
    static constexpr std::size_t kWeightBytes = 18304;
    static constexpr std::size_t kFillBytes = 0;
    static constexpr std::size_t kScratchBytes = 49920;
    static constexpr std::size_t kInput0Size = 3072;  // in0_input0
    static constexpr std::size_t kOutput0Size = 10;  // fc

    // Reads the weights file written next to this header by sofie compile.
    explicit Session(const std::string& weightsPath) : storage_(new unsigned char[((kWeightBytes + 63) / 64 + (kFillBytes + 63) / 64 + (kScratchBytes + 63) / 64) * 64 + 64]()) {
        weights_ = align64(storage_.get());
        if (!sofie_rt::read_file(weightsPath, weights_, kWeightBytes))
            throw std::runtime_error("cnn: cannot read " + std::to_string(kWeightBytes) + " bytes of weights from '" + weightsPath + "'");
        fills_ = weights_ + ((kWeightBytes + 63) / 64) * 64;
        arena_ = fills_ + ((kFillBytes + 63) / 64) * 64;
    }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Runs the model. Arrays are row-major and contiguous; no memory is allocated.
    void infer(const float* in0_input0, float* fc) {
        const float* const in0 = in0_input0;
        float* const out0 = fc;
        run(in0, out0);
    }

    // Runs `batch` rows: row r of each batched input and output starts at r times its size above.
    void infer(std::size_t batch, const float* in0_input0, float* fc) {
        std::size_t r = 0;
        for (; r < batch; ++r)
            run(in0_input0 + r * kInput0Size, fc + r * kOutput0Size);
    }

    // Convenience: checks the input sizes and returns the output as vectors (allocates).
    std::vector<float> infer(const std::vector<float>& in0_input0) {
        const std::size_t batch = in0_input0.size() / kInput0Size;
        if (in0_input0.size() != batch * kInput0Size || batch == 0) throw std::invalid_argument("cnn: input in0_input0 needs a positive multiple of " + std::to_string(kInput0Size) + " values, the same batch as the other inputs, got " + std::to_string(in0_input0.size()));
        std::vector<float> result;
        result.resize(batch * kOutput0Size);
        infer(batch, in0_input0.data(), result.data());
        return result;
    }

 private:
    // in0 = in0_input0, out0 = fc
    void run(const float* in0, float* out0) {
#if defined(SOFIE_AVX512_TWINS)
        if (sofie_rt::cpu_has_avx512()) return run_avx512(in0, out0);  // the same, compiled for AVX-512
#endif
#if defined(SOFIE_AVX2_TWINS)
        if (sofie_rt::cpu_has_avx2_fma()) return run_avx2(in0, out0);  // the same, compiled for AVX2 + FMA
#endif
        const float* const t_conv2_bias = reinterpret_cast<const float*>(weights_ + 0);  // float[8]
        const float* const t_n_conv1_conv_bias_bn = reinterpret_cast<const float*>(weights_ + 64);  // float[6]
        const float* const t_fc_bias_flat = reinterpret_cast<const float*>(weights_ + 128);  // float[10]
        float* const t_conv1_to_nchw = reinterpret_cast<float*>(arena_ + 24576);  // float[1x3x32x32]
        float* const t_relu1_untransposed = reinterpret_cast<float*>(arena_ + 0);  // float[1x6x32x32]
        float* const t_pool1 = reinterpret_cast<float*>(arena_ + 24576);  // float[1x6x16x16]
        float* const t_conv2_conv = reinterpret_cast<float*>(arena_ + 0);  // float[1x8x14x14]
        float* const t_pool2 = reinterpret_cast<float*>(arena_ + 6272);  // float[1x8x7x7]
        float* const t_n_flatten_nchw = reinterpret_cast<float*>(arena_ + 6272);  // float[1x392]
        const float* const t_conv1_kernel_bn_blocked = reinterpret_cast<const float*>(weights_ + 192);  // float[1x27x6]
        const float* const t_conv2_kernel_blocked = reinterpret_cast<const float*>(weights_ + 896);  // float[2x54x4]
        const float* const t_fc_kernel_nchw_rows_transposed = reinterpret_cast<const float*>(weights_ + 2624);  // float[10x392]
        void* const work = arena_ + 36864;

        // Transpose 'n_conv1_to_nchw' -> conv1_to_nchw
        {
            const float* const x = in0;
            float* y = t_conv1_to_nchw;
            for (int64_t i1 = 0; i1 < 3; ++i1) {
                for (int64_t i2 = 0; i2 < 32; ++i2) {
                    for (int64_t i3 = 0; i3 < 32; ++i3) {
                        *y++ = x[i1 + i2 * 96 + i3 * 3];
                    }
                }
            }
        }

        // FusedConv 'n_conv1_conv_bn_fused' -> relu1_untransposed
        {
            static constexpr sofie_rt::Window win = {{1, 32, 32}, {1, 32, 32}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}};
            static_assert(sofie_rt::conv_rows_elements<float, 2>(win, 3) <= 3264, "workspace sized for another formula");
            sofie_rt::conv_rows<float, 6, 2>(6, 3, t_conv1_to_nchw, t_conv1_kernel_bn_blocked, t_n_conv1_conv_bias_bn, win, t_relu1_untransposed, sofie_rt::Epilogue<float>{sofie_rt::Act::Relu, 0.0f, 0.0f, nullptr}, static_cast<float*>(work));
        }

        // MaxPool 'n_pool1' -> pool1
        {
            static constexpr sofie_rt::Window win = {{1, 32, 32}, {1, 16, 16}, {1, 2, 2}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}};
            for (int64_t p = 0; p < 6; ++p) sofie_rt::max_pool2d(t_relu1_untransposed + p * 1024, win, t_pool1 + p * 256);
        }

        // Conv 'n_conv2_conv' -> conv2_conv
        {
            static constexpr sofie_rt::Window win = {{1, 16, 16}, {1, 14, 14}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}};
            static_assert(sofie_rt::conv_rows_elements<float, 2>(win, 6) <= 3264, "workspace sized for another formula");
            sofie_rt::conv_rows<float, 4, 2>(8, 6, t_pool1, t_conv2_kernel_blocked, t_conv2_bias, win, t_conv2_conv, {}, static_cast<float*>(work));
        }

        // MaxPool 'n_pool2' -> pool2
        {
            static constexpr sofie_rt::Window win = {{1, 14, 14}, {1, 7, 7}, {1, 2, 2}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}};
            for (int64_t p = 0; p < 8; ++p) sofie_rt::max_pool2d(t_conv2_conv + p * 196, win, t_pool2 + p * 49);
        }

        // Gemm 'n_fc_biasadd_gemm_nchw' -> fc
        {
            sofie_rt::GemmArgs<float> mm;
            mm.M = 1; mm.N = 10; mm.K = 392;
            mm.A = t_n_flatten_nchw; mm.rsa = 392;
            mm.B = t_fc_kernel_nchw_rows_transposed; mm.rsb = 1; mm.csb = 392;
            mm.C = out0; mm.ldc = 10;
            mm.col_bias = t_fc_bias_flat;
            sofie_rt::gemm(mm);
        }
    }
#if defined(SOFIE_AVX512_TWINS)
    void run_avx512(const float* in0, float* out0);
#endif
#if defined(SOFIE_AVX2_TWINS)
    void run_avx2(const float* in0, float* out0);
#endif

    std::unique_ptr<unsigned char[]> storage_;
    [[maybe_unused]] unsigned char* weights_ = nullptr;
    [[maybe_unused]] unsigned char* fills_ = nullptr;
    [[maybe_unused]] unsigned char* arena_ = nullptr;
    // The first 64-byte boundary at or after p (storage_ has 64 bytes to spare): every tensor's offset
    // is a multiple of 64, so no vector load straddles two cache lines (new[] gives 16-byte alignment).
    static unsigned char* align64(unsigned char* p) { return p + (64 - reinterpret_cast<std::uintptr_t>(p) % 64) % 64; }
};

#if defined(SOFIE_AVX512_TWINS)  // the run methods again, for CPUs with AVX-512
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")
inline void Session::run_avx512(const float* in0, float* out0) {
        namespace sofie_rt = sofie_rt_avx512;
        const float* const t_conv2_bias = reinterpret_cast<const float*>(weights_ + 0);  // float[8]
        const float* const t_n_conv1_conv_bias_bn = reinterpret_cast<const float*>(weights_ + 64);  // float[6]
        const float* const t_fc_bias_flat = reinterpret_cast<const float*>(weights_ + 128);  // float[10]
        float* const t_conv1_to_nchw = reinterpret_cast<float*>(arena_ + 24576);  // float[1x3x32x32]
        float* const t_relu1_untransposed = reinterpret_cast<float*>(arena_ + 0);  // float[1x6x32x32]
        float* const t_pool1 = reinterpret_cast<float*>(arena_ + 24576);  // float[1x6x16x16]
        float* const t_conv2_conv = reinterpret_cast<float*>(arena_ + 0);  // float[1x8x14x14]
        float* const t_pool2 = reinterpret_cast<float*>(arena_ + 6272);  // float[1x8x7x7]
        float* const t_n_flatten_nchw = reinterpret_cast<float*>(arena_ + 6272);  // float[1x392]
        const float* const t_conv1_kernel_bn_blocked = reinterpret_cast<const float*>(weights_ + 192);  // float[1x27x6]
        const float* const t_conv2_kernel_blocked = reinterpret_cast<const float*>(weights_ + 896);  // float[2x54x4]
        const float* const t_fc_kernel_nchw_rows_transposed = reinterpret_cast<const float*>(weights_ + 2624);  // float[10x392]
        void* const work = arena_ + 36864;

        // Transpose 'n_conv1_to_nchw' -> conv1_to_nchw
        {
            const float* const x = in0;
            float* y = t_conv1_to_nchw;
            for (int64_t i1 = 0; i1 < 3; ++i1) {
                for (int64_t i2 = 0; i2 < 32; ++i2) {
                    for (int64_t i3 = 0; i3 < 32; ++i3) {
                        *y++ = x[i1 + i2 * 96 + i3 * 3];
                    }
                }
            }
        }

        // FusedConv 'n_conv1_conv_bn_fused' -> relu1_untransposed
        {
            static constexpr sofie_rt::Window win = {{1, 32, 32}, {1, 32, 32}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}};
            static_assert(sofie_rt::conv_rows_elements<float, 2>(win, 3) <= 3264, "workspace sized for another formula");
            sofie_rt::conv_rows<float, 6, 2>(6, 3, t_conv1_to_nchw, t_conv1_kernel_bn_blocked, t_n_conv1_conv_bias_bn, win, t_relu1_untransposed, sofie_rt::Epilogue<float>{sofie_rt::Act::Relu, 0.0f, 0.0f, nullptr}, static_cast<float*>(work));
        }

        // MaxPool 'n_pool1' -> pool1
        {
            static constexpr sofie_rt::Window win = {{1, 32, 32}, {1, 16, 16}, {1, 2, 2}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}};
            for (int64_t p = 0; p < 6; ++p) sofie_rt::max_pool2d(t_relu1_untransposed + p * 1024, win, t_pool1 + p * 256);
        }

        // Conv 'n_conv2_conv' -> conv2_conv
        {
            static constexpr sofie_rt::Window win = {{1, 16, 16}, {1, 14, 14}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}};
            static_assert(sofie_rt::conv_rows_elements<float, 2>(win, 6) <= 3264, "workspace sized for another formula");
            sofie_rt::conv_rows<float, 4, 2>(8, 6, t_pool1, t_conv2_kernel_blocked, t_conv2_bias, win, t_conv2_conv, {}, static_cast<float*>(work));
        }

        // MaxPool 'n_pool2' -> pool2
        {
            static constexpr sofie_rt::Window win = {{1, 14, 14}, {1, 7, 7}, {1, 2, 2}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}};
            for (int64_t p = 0; p < 8; ++p) sofie_rt::max_pool2d(t_conv2_conv + p * 196, win, t_pool2 + p * 49);
        }

        // Gemm 'n_fc_biasadd_gemm_nchw' -> fc
        {
            sofie_rt::GemmArgs<float> mm;
            mm.M = 1; mm.N = 10; mm.K = 392;
            mm.A = t_n_flatten_nchw; mm.rsa = 392;
            mm.B = t_fc_kernel_nchw_rows_transposed; mm.rsb = 1; mm.csb = 392;
            mm.C = out0; mm.ldc = 10;
            mm.col_bias = t_fc_bias_flat;
            sofie_rt::gemm(mm);
        }
}
#pragma GCC pop_options
#endif

#if defined(SOFIE_AVX2_TWINS)  // the run methods again, for CPUs with AVX2 + FMA
#pragma GCC push_options
#pragma GCC target("avx2,fma")
inline void Session::run_avx2(const float* in0, float* out0) {
        namespace sofie_rt = sofie_rt_avx2;
        const float* const t_conv2_bias = reinterpret_cast<const float*>(weights_ + 0);  // float[8]
        const float* const t_n_conv1_conv_bias_bn = reinterpret_cast<const float*>(weights_ + 64);  // float[6]
        const float* const t_fc_bias_flat = reinterpret_cast<const float*>(weights_ + 128);  // float[10]
        float* const t_conv1_to_nchw = reinterpret_cast<float*>(arena_ + 24576);  // float[1x3x32x32]
        float* const t_relu1_untransposed = reinterpret_cast<float*>(arena_ + 0);  // float[1x6x32x32]
        float* const t_pool1 = reinterpret_cast<float*>(arena_ + 24576);  // float[1x6x16x16]
        float* const t_conv2_conv = reinterpret_cast<float*>(arena_ + 0);  // float[1x8x14x14]
        float* const t_pool2 = reinterpret_cast<float*>(arena_ + 6272);  // float[1x8x7x7]
        float* const t_n_flatten_nchw = reinterpret_cast<float*>(arena_ + 6272);  // float[1x392]
        const float* const t_conv1_kernel_bn_blocked = reinterpret_cast<const float*>(weights_ + 192);  // float[1x27x6]
        const float* const t_conv2_kernel_blocked = reinterpret_cast<const float*>(weights_ + 896);  // float[2x54x4]
        const float* const t_fc_kernel_nchw_rows_transposed = reinterpret_cast<const float*>(weights_ + 2624);  // float[10x392]
        void* const work = arena_ + 36864;

        // Transpose 'n_conv1_to_nchw' -> conv1_to_nchw
        {
            const float* const x = in0;
            float* y = t_conv1_to_nchw;
            for (int64_t i1 = 0; i1 < 3; ++i1) {
                for (int64_t i2 = 0; i2 < 32; ++i2) {
                    for (int64_t i3 = 0; i3 < 32; ++i3) {
                        *y++ = x[i1 + i2 * 96 + i3 * 3];
                    }
                }
            }
        }

        // FusedConv 'n_conv1_conv_bn_fused' -> relu1_untransposed
        {
            static constexpr sofie_rt::Window win = {{1, 32, 32}, {1, 32, 32}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}};
            static_assert(sofie_rt::conv_rows_elements<float, 2>(win, 3) <= 3264, "workspace sized for another formula");
            sofie_rt::conv_rows<float, 6, 2>(6, 3, t_conv1_to_nchw, t_conv1_kernel_bn_blocked, t_n_conv1_conv_bias_bn, win, t_relu1_untransposed, sofie_rt::Epilogue<float>{sofie_rt::Act::Relu, 0.0f, 0.0f, nullptr}, static_cast<float*>(work));
        }

        // MaxPool 'n_pool1' -> pool1
        {
            static constexpr sofie_rt::Window win = {{1, 32, 32}, {1, 16, 16}, {1, 2, 2}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}};
            for (int64_t p = 0; p < 6; ++p) sofie_rt::max_pool2d(t_relu1_untransposed + p * 1024, win, t_pool1 + p * 256);
        }

        // Conv 'n_conv2_conv' -> conv2_conv
        {
            static constexpr sofie_rt::Window win = {{1, 16, 16}, {1, 14, 14}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}};
            static_assert(sofie_rt::conv_rows_elements<float, 2>(win, 6) <= 3264, "workspace sized for another formula");
            sofie_rt::conv_rows<float, 4, 2>(8, 6, t_pool1, t_conv2_kernel_blocked, t_conv2_bias, win, t_conv2_conv, {}, static_cast<float*>(work));
        }

        // MaxPool 'n_pool2' -> pool2
        {
            static constexpr sofie_rt::Window win = {{1, 14, 14}, {1, 7, 7}, {1, 2, 2}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}};
            for (int64_t p = 0; p < 8; ++p) sofie_rt::max_pool2d(t_conv2_conv + p * 196, win, t_pool2 + p * 49);
        }

        // Gemm 'n_fc_biasadd_gemm_nchw' -> fc
        {
            sofie_rt::GemmArgs<float> mm;
            mm.M = 1; mm.N = 10; mm.K = 392;
            mm.A = t_n_flatten_nchw; mm.rsa = 392;
            mm.B = t_fc_kernel_nchw_rows_transposed; mm.rsb = 1; mm.csb = 392;
            mm.C = out0; mm.ldc = 10;
            mm.col_bias = t_fc_bias_flat;
            sofie_rt::gemm(mm);
        }
}
#pragma GCC pop_options
#endif

}  // namespace cnn
