/*===- fast_kernels.h - Row kernels of the unfused baselines ------*- C -*-===*\
|* Compiled with -Ofast -march=native (see fast_kernels.c).                  *|
\*===----------------------------------------------------------------------===*/
#ifndef ATTN_BENCH_FAST_KERNELS_H
#define ATTN_BENCH_FAST_KERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

/* Row softmax in place: rows x cols at stride ld. */
void bench_softmax_rows(float *s, long ld, int rows, int cols);
/* Causal: row r keeps its first (first_valid + r) entries (clamped to
 * [0, cols]); the others become 0; a row with none is all zeros. */
void bench_softmax_rows_causal(float *s, long ld, int rows, int cols,
                               long first_valid);
/* x[r] += pre_bias (if not NULL), then
 * out[r] = (x[r] - mean) / sqrt(var + eps) * g + b over n columns. out may be
 * x. */
void bench_layer_norm_rows(float *x, long ld, int rows, int n,
                           const float *pre_bias, const float *g,
                           const float *b, float eps, float *out, long ld_out);
void bench_gelu_erf(float *x, long n);
void bench_gelu_tanh(float *x, long n);
/* Copies `row` (n floats) into each of `rows` rows of c (bias pre-fill). */
void bench_fill_rows(float *c, long ld, int rows, int n, const float *row);

/* c[r] += row for each of `rows` rows (bias after a beta=1 sgemm). */
void bench_add_rows(float *c, long ld, int rows, int n, const float *row);

#ifdef __cplusplus
}
#endif

#endif
