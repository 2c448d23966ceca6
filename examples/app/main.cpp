//===- main.cpp - A program that links a compiled model directly ----------===//
//
// The zero-dependency path: attnc compiles examples/decomposed_attention.attn
// into libdecomposed_attention.a + decomposed_attention.h at build time, and
// this program calls the generated function `attn_decomposed_attention`
// directly with Halide buffers. It links neither the attnc runtime nor
// libHalide; HalideBuffer.h is header-only.
//
//===----------------------------------------------------------------------===//
#include "decomposed_attention.h"

#include "HalideBuffer.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

using Halide::Runtime::Buffer;

/// Fills `b` with a fixed-seed pseudo-random pattern in [-scale, scale).
static void fill(Buffer<float> &b, uint32_t seed, float scale) {
  uint32_t s = seed;
  b.for_each_value([&](float &v) {
    s = s * 1664525u + 1013904223u;
    v = scale * ((float)(s >> 8) / (float)(1u << 24) * 2.0f - 1.0f);
  });
}

int main(int argc, char **argv) {
  const int B = 2, S = argc > 1 ? std::atoi(argv[1]) : 33, E = 256;
  // Halide buffers list dims innermost first: x is [B, S, E] in the model.
  Buffer<float> x(E, S, B), wq(E, E), wk(E, E), wv(E, E), out(E, S, B);
  Buffer<int32_t> lengths(B);
  fill(x, 1, 1.0f);
  fill(wq, 2, 1.0f / std::sqrt((float)E));
  fill(wk, 3, 1.0f / std::sqrt((float)E));
  fill(wv, 4, 1.0f / std::sqrt((float)E));
  lengths(0) = S;
  lengths(1) = S / 2;

  // Arguments: inputs, then params, in declaration order, then the output.
  int err = attn_decomposed_attention(x, lengths, wq, wk, wv, out);
  if (err != 0) {
    std::fprintf(stderr, "attn_decomposed_attention failed: %d\n", err);
    return 1;
  }
  double sum = 0, sumAbs = 0;
  bool finite = true;
  out.for_each_value([&](float v) {
    sum += v;
    sumAbs += std::fabs(v);
    finite &= std::isfinite(v);
  });
  std::printf("decomposed_attention B=%d S=%d: sum=%.6f sum|x|=%.6f%s\n", B,
              S, sum, sumAbs, finite ? "" : " (NOT FINITE)");
  return finite && sumAbs > 0 ? 0 : 1;
}
