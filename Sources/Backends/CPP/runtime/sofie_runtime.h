// swift-sofie's C++ runtime: the kernels every emitted header carries. sofie embeds this file,
// with the parts it includes inlined, into each header it writes (the include guard and the
// namespace are renamed after a hash of the text, so headers from different sofie versions can
// share a translation unit). Standalone, it compiles as ordinary C++17: Tests/cpp tests each
// kernel against a naive loop. See README.md in this directory.
#ifndef SOFIE_RUNTIME_V2
#define SOFIE_RUNTIME_V2
#include "base.h"
#include "math.h"
#include "gemm.h"
#include "conv.h"
#include "blocked.h"
#include "ops.h"
#undef SOFIE_MATH
#endif  // SOFIE_RUNTIME_V2
