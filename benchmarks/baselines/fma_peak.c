/*===- fma_peak.c - The FMA peak of one ISA, on any x86-64 host -----------===*\
|*                                                                            *|
|* attn_fma_peak(lanes, iters): `iters` steps of 16 independent chains of    *|
|* vector FMAs of `lanes` floats (16: AVX-512 zmm, 8: AVX2+FMA ymm), enough   *|
|* to fill two FMA pipes of latency 4 with no dependency stall; flops =       *|
|* iters * 16 * lanes * 2. Each width is compiled for its own ISA (target     *|
|* attributes), so an AVX-512 host measures both peaks: the AVX2 build of a   *|
|* model is judged against the AVX2 loop (issue 13: "% of the FMA loop of     *|
|* that ISA"). Returns NaN for a width the CPU cannot run. Shared by          *|
|* attn-bench (linked) and torch_peers.py (ctypes, libattn_fma_peak.so).      *|
\*===----------------------------------------------------------------------===*/
#include <immintrin.h>
#include <math.h>

#define FMA_LOOP(V, SET1, FMA, ADD, FIRST)                                    \
  V a[16];                                                                    \
  const V m = SET1(0.999999f), c = SET1(1e-7f);                               \
  for (int i = 0; i < 16; ++i)                                                \
    a[i] = SET1(1.0f + i * 1e-3f);                                            \
  for (long it = 0; it < iters; ++it)                                         \
    for (int i = 0; i < 16; ++i)                                              \
      a[i] = FMA(a[i], m, c);                                                 \
  for (int i = 1; i < 16; ++i)                                                \
    a[0] = ADD(a[0], a[i]);                                                   \
  return FIRST(a[0]);

__attribute__((target("avx512f"))) static float peak16(long iters) {
  FMA_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps,
           _mm512_cvtss_f32)
}

__attribute__((target("avx2,fma"))) static float peak8(long iters) {
  FMA_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps,
           _mm256_cvtss_f32)
}

int attn_fma_supported(int lanes) {
  __builtin_cpu_init();
  if (lanes == 16)
    return __builtin_cpu_supports("avx512f");
  if (lanes == 8)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return 0;
}

float attn_fma_peak(int lanes, long iters) {
  if (!attn_fma_supported(lanes))
    return NAN;
  return lanes == 16 ? peak16(iters) : peak8(iters);
}

int attn_fma_widest(void) {
  return attn_fma_supported(16) ? 16 : attn_fma_supported(8) ? 8 : 0;
}
