#!/usr/bin/env python3
"""Where the time of an emitted model goes, node by node: compiles MODEL with sofie, puts a
timestamp before every node of the header's run methods (the `// Op 'name' -> output` comments
the emitter writes), builds it at FLAGS, calls infer ITERATIONS times after a warm-up and prints
the nodes that took the most time (share of the total, microseconds per call, op type), then the
time per op type. The timers cost about 20 ns per node; use bench_real.py or ab_sofie.py for
whole-model times.

Usage: python3 benchmarks/layer_profile.py --sofie .build/debug/sofie MODEL.onnx [--top 25]
           [--flags "-O3 -march=native"] [--iterations 50]
Needs only the onnx package (to read the model's input and output sizes)."""
import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emitted_timing  # noqa: E402

NODE = re.compile(r"^        // (\S+) '(.*)' -> ")
PROFILER = r'''
#include <chrono>
namespace sofie_prof {
inline double total[%(n)d];
inline int current = -1;
inline std::chrono::steady_clock::time_point last;
inline void mark(int i) {
    const auto now = std::chrono::steady_clock::now();
    if (current >= 0) total[current] += std::chrono::duration<double, std::micro>(now - last).count();
    current = i;
    last = std::chrono::steady_clock::now();
}
}  // namespace sofie_prof
'''

DRIVER = r'''
#include "%(ns)s_prof.hxx"
#include <cstdio>
#include <vector>
int main() {
    %(ns)s::Session s%(ctor)s;
    std::vector<std::vector<double>> in, out;
    for (std::size_t n : {%(insizes)s}) in.emplace_back(n);
    for (std::size_t n : {%(outsizes)s}) out.emplace_back(n);
%(fills)s
    for (int i = 0; i < 5; ++i) s.infer(%(args)s);
    for (double& t : sofie_prof::total) t = 0;
    for (int i = 0; i < %(iters)d; ++i) s.infer(%(args)s);
    for (int i = 0; i < %(n)d; ++i) std::printf("%%d %%.4f\n", i, sofie_prof::total[i] / %(iters)d);
}
'''


def instrument(header):
    """The header with a mark before each node of its run methods and at their ends; the nodes."""
    out, nodes, index = [], [], {}
    in_run = False
    for line in header.split("\n"):
        if re.match(r"^    void run(_avx2)?\(", line) and line.rstrip().endswith("{"):
            in_run = True
        elif in_run and line == "    }":
            out.append("        sofie_prof::mark(-1);")
            in_run = False
        elif in_run:
            m = NODE.match(line)
            if m:
                key = (m.group(1), m.group(2))
                if key not in index:
                    index[key] = len(nodes)
                    nodes.append(key)
                out.append("        sofie_prof::mark(%d);" % index[key])
        out.append(line)
    text = "\n".join(out)
    # The profiler goes before the model's namespace (after the runtime's includes).
    at = text.index("\nnamespace ")
    return text[:at] + PROFILER % {"n": max(1, len(nodes))} + text[at:], nodes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--sofie", default=".build/debug/sofie")
    ap.add_argument("--flags", default="-O3 -march=native")
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--work", default=None, help="directory for the header and the executable (default: a temporary one)")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="layer-profile-")
    ns = "prof_model"
    subprocess.run([args.sofie, "compile", args.model, "-o", work, "--name", ns], check=True, stdout=subprocess.DEVNULL)
    header, nodes = instrument(open(os.path.join(work, ns + ".hxx")).read())
    if not nodes:
        sys.exit("no node comments found in the emitted run method")
    open(os.path.join(work, ns + "_prof.hxx"), "w").write(header)
    parts = emitted_timing.driver_parts(args.model, work, ns)
    src = os.path.join(work, "profile.cpp")
    open(src, "w").write(DRIVER % dict(parts, ns=ns, n=len(nodes), iters=args.iterations))
    exe = os.path.join(work, "profile")
    subprocess.run(["g++", "-std=c++17"] + args.flags.split() + ["-o", exe, src], check=True)
    times = [0.0] * len(nodes)
    for line in subprocess.run([exe], check=True, capture_output=True, text=True, cwd=work).stdout.strip().split("\n"):
        i, t = line.split()
        times[int(i)] = float(t)
    total = sum(times)
    print("%s: %.1f us per call in %d nodes (%s)" % (os.path.basename(args.model), total, len(nodes), args.flags))
    for i in sorted(range(len(nodes)), key=lambda i: -times[i])[: args.top]:
        print("  %5.1f%%  %9.1f us  %-24s %s" % (100 * times[i] / total, times[i], nodes[i][0], nodes[i][1]))
    by_op = collections.defaultdict(float)
    for (op, _), t in zip(nodes, times):
        by_op[op] += t
    print("by op type:")
    for op, t in sorted(by_op.items(), key=lambda kv: -kv[1]):
        print("  %5.1f%%  %9.1f us  %s" % (100 * t / total, t, op))


if __name__ == "__main__":
    main()
