"""The timing driver of the benchmarks: builds an executable around an emitted header that
calls infer in a calibrated loop (about 50 ms per sample) and prints the median time per call in
microseconds. Used by bench_real.py and ab_sofie.py."""
import os
import subprocess

import onnx


DRIVER = r'''
#include "%(ns)s.hxx"
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>
int main(int argc, char** argv) {
    %(ns)s::Session s%(ctor)s;
    std::vector<std::vector<double>> in, out;  // 8 bytes per element: room for any type
    for (std::size_t n : {%(insizes)s}) in.emplace_back(n);
    for (std::size_t n : {%(outsizes)s}) out.emplace_back(n);
%(fills)s
    auto once = [&] { s.infer(%(args)s); };
    if (argc > 1) {  // check mode: one call, then DIR/in<k>.bin and DIR/out<k>.bin (raw bytes)
        once();
        auto dump = [&](const char* kind, std::size_t k, const void* p, std::size_t bytes) {
            std::FILE* f = std::fopen((std::string(argv[1]) + "/" + kind + std::to_string(k) + ".bin").c_str(), "wb");
            if (!f || std::fwrite(p, 1, bytes, f) != bytes) return false;
            return std::fclose(f) == 0;
        };
        const std::size_t in_bytes[] = {%(inbytes)s 0}, out_bytes[] = {%(outbytes)s 0};
        for (std::size_t k = 0; k < in.size(); ++k) if (!dump("in", k, in[k].data(), in[k].size() * in_bytes[k])) return 1;
        for (std::size_t k = 0; k < out.size(); ++k) if (!dump("out", k, out[k].data(), out[k].size() * out_bytes[k])) return 1;
        return 0;
    }
    for (int i = 0; i < 10; ++i) once();
    auto t0 = std::chrono::steady_clock::now();
    int calib = 0;
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 0.05) { once(); ++calib; }
    std::vector<double> samples;
    for (int k = 0; k < %(samples)d; ++k) {
        auto a = std::chrono::steady_clock::now();
        for (int i = 0; i < calib; ++i) once();
        samples.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a).count() / calib);
    }
    std::sort(samples.begin(), samples.end());
    std::printf("%%.3f\n", samples[samples.size() / 2]);
}
'''


def build(sofie, path, ns, flags, work, samples=15, cxx="g++"):
    """Compiles PATH with SOFIE into WORK/NS (once) and builds a timing executable at FLAGS; returns its path."""
    out = os.path.join(work, ns)
    if not os.path.exists(os.path.join(out, ns + ".hxx")):
        subprocess.run([sofie, "compile", path, "-o", out, "--name", ns], check=True, stdout=subprocess.DEVNULL)
    parts = driver_parts(path, out, ns)
    exe = os.path.join(out, "bench_" + flags.replace(" ", "").replace("-", "_").replace("=", ""))
    src = os.path.join(out, "bench.cpp")
    with open(src, "w") as f:
        f.write(DRIVER % dict(parts, ns=ns, samples=samples))
    subprocess.run([cxx, "-std=c++17", *flags.split(), src, "-o", exe], check=True)
    return exe


def driver_parts(path, out, ns):
    """The pieces of a driver for the header OUT/NS.hxx compiled from the model PATH: input
    and output buffer sizes, code filling the inputs, the infer arguments, the Session's
    constructor arguments (the weights file when there is one)."""
    m = onnx.load(path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    n_in = len([i for i in m.graph.input if i.name not in inits])
    n_out = len(m.graph.output)
    ctype = {1: "float", 11: "double", 7: "int64_t", 6: "int32_t", 9: "bool"}
    outs = [ctype.get(o.type.tensor_type.elem_type, "float") for o in m.graph.output]
    ins = [ctype.get(i.type.tensor_type.elem_type, "float") for i in m.graph.input if i.name not in inits]
    # Floats spread over [-0.5, 0.5); integers 0 and 1 (valid token ids and node indices).
    fills = "\n".join(f"    {{ {t}* p = reinterpret_cast<{t}*>(in[{i}].data()); for (std::size_t j = 0; j < in[{i}].size(); ++j) p[j] = "
                      + ("float((j * 7919) % 1000) / 1000.0f - 0.5f; }" if t in ("float", "double") else f"{t}(j % 2); }}")
                      for i, t in enumerate(ins))
    call = ", ".join([f"reinterpret_cast<const {t}*>(in[{i}].data())" for i, t in enumerate(ins)]
                     + [f"reinterpret_cast<{t}*>(out[{i}].data())" for i, t in enumerate(outs)])
    weights = os.path.join(out, ns + ".weights")
    ctor = f'("{weights}")' if os.path.exists(weights) else ""
    size = {"float": 4, "double": 8, "int64_t": 8, "int32_t": 4, "bool": 1}
    return {"ctor": ctor, "args": call, "fills": fills,
            "inbytes": "".join(f"{size[t]}, " for t in ins), "outbytes": "".join(f"{size[t]}, " for t in outs),
            "insizes": ", ".join(f"{ns}::Session::kInput{i}Size" for i in range(n_in)),
            "outsizes": ", ".join(f"{ns}::Session::kOutput{i}Size" for i in range(n_out))}
