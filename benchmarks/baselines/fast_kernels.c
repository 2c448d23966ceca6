/*===- fast_kernels.c - Row kernels of the unfused baselines ------*- C -*-===*\
|*                                                                            *|
|* Softmax, layer norm and GELU rows for the OpenBLAS baselines. This file is *|
|* compiled on its own with -Ofast -march=native -mprefer-vector-width=512 so *|
|* that expf/erff/tanhf vectorise through glibc's libmvec (_ZGVeN16v_expf);   *|
|* `make -C build-bench check-mvec` (target bench-check-mvec) greps the       *|
|* disassembly for it. Nothing else in the harness gets -Ofast.               *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/
#include "fast_kernels.h"

#include <math.h>
#include <string.h>

/* One row: the first `valid` entries get softmax, the rest 0. A row with no
 * valid entry is all zeros (the contract for fully masked rows). */
static inline void softmax_row(float *restrict x, int n, int valid) {
  if (valid > n)
    valid = n;
  if (valid <= 0) {
    memset(x, 0, sizeof(float) * (size_t)n);
    return;
  }
  float m = x[0];
  for (int j = 1; j < valid; ++j)
    m = fmaxf(m, x[j]);
  float sum = 0.0f;
  for (int j = 0; j < valid; ++j) {
    float e = expf(x[j] - m);
    x[j] = e;
    sum += e;
  }
  const float inv = 1.0f / sum;
  for (int j = 0; j < valid; ++j)
    x[j] *= inv;
  if (valid < n)
    memset(x + valid, 0, sizeof(float) * (size_t)(n - valid));
}

void bench_softmax_rows(float *s, long ld, int rows, int cols) {
  for (int r = 0; r < rows; ++r)
    softmax_row(s + (long)r * ld, cols, cols);
}

void bench_softmax_rows_causal(float *s, long ld, int rows, int cols,
                               long first_valid) {
  for (int r = 0; r < rows; ++r) {
    long v = first_valid + r;
    softmax_row(s + (long)r * ld, cols, v < 0 ? 0 : (v > cols ? cols : (int)v));
  }
}

void bench_layer_norm_rows(float *x, long ld, int rows, int n,
                           const float *pre_bias, const float *g,
                           const float *b, float eps, float *out, long ld_out) {
  for (int r = 0; r < rows; ++r) {
    float *xr = x + (long)r * ld;
    float *o = out + (long)r * ld_out;
    if (pre_bias)
      for (int j = 0; j < n; ++j)
        xr[j] += pre_bias[j];
    float mean = 0.0f;
    for (int j = 0; j < n; ++j)
      mean += xr[j];
    mean /= (float)n;
    float var = 0.0f;
    for (int j = 0; j < n; ++j) {
      float d = xr[j] - mean;
      var += d * d;
    }
    var /= (float)n;
    const float rstd = 1.0f / sqrtf(var + eps);
    for (int j = 0; j < n; ++j)
      o[j] = (xr[j] - mean) * rstd * g[j] + b[j];
  }
}

void bench_gelu_erf(float *x, long n) {
  for (long i = 0; i < n; ++i)
    x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void bench_gelu_tanh(float *x, long n) {
  for (long i = 0; i < n; ++i) {
    float v = x[i];
    x[i] = 0.5f * v *
           (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
  }
}

void bench_fill_rows(float *c, long ld, int rows, int n, const float *row) {
  for (int r = 0; r < rows; ++r)
    memcpy(c + (long)r * ld, row, sizeof(float) * (size_t)n);
}

void bench_add_rows(float *c, long ld, int rows, int n, const float *row) {
  for (int r = 0; r < rows; ++r) {
    float *restrict cr = c + (long)r * ld;
    for (int j = 0; j < n; ++j)
      cr[j] += row[j];
  }
}
