/*===- fma_peak.h - The FMA peak of one ISA (see fma_peak.c) ------*- C -*-===*/
#ifndef ATTN_BENCH_FMA_PEAK_H
#define ATTN_BENCH_FMA_PEAK_H
#ifdef __cplusplus
extern "C" {
#endif
/* 1 when this CPU runs FMAs of `lanes` floats (16: AVX-512F, 8: AVX2+FMA). */
int attn_fma_supported(int lanes);
/* `iters` x 16 vector FMAs of `lanes` floats in independent chains (flops =
 * iters * 16 * lanes * 2); NaN when unsupported. */
float attn_fma_peak(int lanes, long iters);
/* The widest supported width: 16, 8, or 0. */
int attn_fma_widest(void);
#ifdef __cplusplus
}
#endif
#endif
