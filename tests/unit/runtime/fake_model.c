/*===- fake_model.c - A hand-written attnc library for runtime tests ------===*\
|*                                                                            *|
|* Implements attn_library_v1 by hand over halide_buffer_t, as a compiled     *|
|* library would, with three models:                                          *|
|*   axpy<B, S>(x: f32[B, S, 4], lengths: i32[B]) -> y: f32[B, S, 4]          *|
|*     param w: f32[4]; y[b, s, c] = s < lengths[b] ? x[b, s, c] * w[c] : 0   *|
|*   failing<N>(x: f32[N]) -> y: f32[N]                                       *|
|*     copies x, but reports an error through the handler if x[0] < 0         *|
|*   mixed<S>(a: f16[2], b: bf16[2], c: bool[3], p: i32[S])                   *|
|*       -> (u: f32[2], v: i32[S]); param scale: bf16[2] = "model.scale"      *|
|*     u = a + b * scale, v = p + count(c); checks every buffer's type code   *|
|* axpy says it needs 8 * B * S bytes of scratch, mixed 64; failing says      *|
|* nothing. Built five times: as is, with FAKE_SINGLE_MODEL (axpy only), with *|
|* FAKE_ABI_VERSION=99, with FAKE_ABI_VERSION=1 (a version 1 table, whose     *|
|* memory field must not be read), and with FAKE_NO_ENTRY.                    *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/
#include "attn/abi.h"

#include <HalideRuntime.h>

#include <stdio.h>
#include <string.h>

#ifndef FAKE_ABI_VERSION
#define FAKE_ABI_VERSION ATTN_ABI_VERSION
#endif

static attn_error_handler error_handler;
static int num_threads = -1;

static void set_error_handler(attn_error_handler handler) {
  error_handler = handler;
}

static int set_num_threads(int n) {
  int old = num_threads;
  num_threads = n;
  return old;
}

/* Lets the tests observe what set_num_threads received. */
int fake_num_threads(void) { return num_threads; }

/* Reports like Halide's runtime: message to the handler, non-zero return. */
static int report(int code, const char *message) {
  if (error_handler)
    error_handler(NULL, message);
  return code;
}

static int has_type(const halide_buffer_t *b, int code, int bits) {
  return b->type.code == code && b->type.bits == bits && b->type.lanes == 1;
}

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f,
           mant = h & 0x3ff, bits;
  float f;
  if (exp == 0) {
    f = (float)mant / 16777216.0f;
    return sign ? -f : f;
  }
  bits = sign | (exp == 31 ? 0x7f800000u : (exp + 112) << 23) | (mant << 13);
  memcpy(&f, &bits, 4);
  return f;
}

static float bf16_to_float(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/*===-- axpy --------------------------------------------------------------===*/

static int axpy_entry(void **buffers) {
  const halide_buffer_t *x = buffers[0], *lengths = buffers[1], *w = buffers[2];
  const halide_buffer_t *y = buffers[3];
  int B, S, C, b, s, c;
  if (!has_type(x, halide_type_float, 32) ||
      !has_type(lengths, halide_type_int, 32) ||
      !has_type(w, halide_type_float, 32) ||
      !has_type(y, halide_type_float, 32))
    return report(-1, "axpy: wrong buffer type\n");
  if (x->dimensions != 3 || y->dimensions != 3 || lengths->dimensions != 1 ||
      w->dimensions != 1 || x->dim[0].stride != 1)
    return report(-2, "axpy: wrong buffer dimensions\n");
  C = x->dim[0].extent;
  S = x->dim[1].extent;
  B = x->dim[2].extent;
  for (b = 0; b < B; ++b) {
    int len = ((const int32_t *)lengths->host)[b * lengths->dim[0].stride];
    for (s = 0; s < S; ++s) {
      for (c = 0; c < C; ++c) {
        const float *xp = (const float *)x->host + b * x->dim[2].stride +
                          s * x->dim[1].stride + c * x->dim[0].stride;
        float *yp = (float *)y->host + b * y->dim[2].stride +
                    s * y->dim[1].stride + c * y->dim[0].stride;
        float wc = ((const float *)w->host)[c * w->dim[0].stride];
        *yp = s < len ? *xp * wc : 0.0f;
      }
    }
  }
  return 0;
}

static const char *const axpy_syms[] = {"B", "S"};
static const attn_dim axpy_x_dims[] = {-1, -2, 4};
static const attn_dim axpy_len_dims[] = {-1};
static const attn_dim axpy_w_dims[] = {4};
static const attn_tensor_desc axpy_tensors[] = {
    {"x", NULL, ATTN_INPUT, ATTN_F32, 3, axpy_x_dims},
    {"lengths", NULL, ATTN_INPUT, ATTN_I32, 1, axpy_len_dims},
    {"w", "w", ATTN_PARAM, ATTN_F32, 1, axpy_w_dims},
    {"y", NULL, ATTN_OUTPUT, ATTN_F32, 3, axpy_x_dims},
};

/*===-- failing -----------------------------------------------------------===*/

static int failing_entry(void **buffers) {
  const halide_buffer_t *x = buffers[0], *y = buffers[1];
  const float *xp = (const float *)x->host;
  char message[128];
  if (x->dim[0].extent > 0 && xp[0] < 0) {
    snprintf(message, sizeof message,
             "fake pipeline failure: x[0] = %g is negative\n", xp[0]);
    return report(-27, message);
  }
  memcpy(y->host, x->host, (size_t)x->dim[0].extent * sizeof(float));
  return 0;
}

static const char *const failing_syms[] = {"N"};
static const attn_dim failing_dims[] = {-1};
static const attn_tensor_desc failing_tensors[] = {
    {"x", NULL, ATTN_INPUT, ATTN_F32, 1, failing_dims},
    {"y", NULL, ATTN_OUTPUT, ATTN_F32, 1, failing_dims},
};

/*===-- mixed -------------------------------------------------------------===*/

static int mixed_entry(void **buffers) {
  const halide_buffer_t *a = buffers[0], *b = buffers[1], *c = buffers[2],
                        *p = buffers[3], *scale = buffers[4], *u = buffers[5],
                        *v = buffers[6];
  int i, count = 0;
  if (!has_type(a, halide_type_float, 16) ||
      !has_type(b, halide_type_bfloat, 16) ||
      !has_type(c, halide_type_uint, 8) || !has_type(p, halide_type_int, 32) ||
      !has_type(scale, halide_type_bfloat, 16) ||
      !has_type(u, halide_type_float, 32) || !has_type(v, halide_type_int, 32))
    return report(-1, "mixed: wrong buffer type\n");
  for (i = 0; i < c->dim[0].extent; ++i)
    count += c->host[i] != 0;
  for (i = 0; i < 2; ++i)
    ((float *)u->host)[i] =
        half_to_float(((const uint16_t *)a->host)[i]) +
        bf16_to_float(((const uint16_t *)b->host)[i]) *
            bf16_to_float(((const uint16_t *)scale->host)[i]);
  for (i = 0; i < p->dim[0].extent; ++i)
    ((int32_t *)v->host)[i] = ((const int32_t *)p->host)[i] + count;
  return 0;
}

static const char *const mixed_syms[] = {"S"};
static const attn_dim dims_2[] = {2};
static const attn_dim dims_3[] = {3};
static const attn_dim dims_s[] = {-1};
static const attn_tensor_desc mixed_tensors[] = {
    {"a", NULL, ATTN_INPUT, ATTN_F16, 1, dims_2},
    {"b", NULL, ATTN_INPUT, ATTN_BF16, 1, dims_2},
    {"c", NULL, ATTN_INPUT, ATTN_BOOL, 1, dims_3},
    {"p", NULL, ATTN_INPUT, ATTN_I32, 1, dims_s},
    {"scale", "model.scale", ATTN_PARAM, ATTN_BF16, 1, dims_2},
    {"u", NULL, ATTN_OUTPUT, ATTN_F32, 1, dims_2},
    {"v", NULL, ATTN_OUTPUT, ATTN_I32, 1, dims_s},
};

/*===-- the library table -------------------------------------------------===*/

static const attn_model_desc models[] = {
    {"axpy", 2, axpy_syms, 4, axpy_tensors, axpy_entry},
    {"failing", 1, failing_syms, 2, failing_tensors, failing_entry},
    {"mixed", 1, mixed_syms, 7, mixed_tensors, mixed_entry},
};

#ifdef FAKE_SINGLE_MODEL
#define FAKE_NUM_MODELS 1
#else
#define FAKE_NUM_MODELS 3
#endif

static const int64_t axpy_scratch[] = {ATTN_X_SYM,   0, ATTN_X_SYM,   1,
                                       ATTN_X_MUL,   0, ATTN_X_CONST, 8,
                                       ATTN_X_MUL,   0};
static const int64_t mixed_scratch[] = {ATTN_X_CONST, 64};
static const attn_model_memory memory[] = {
    {{5, axpy_scratch}}, {{0, NULL}}, {{1, mixed_scratch}}};

static const attn_library_desc library = {
    FAKE_ABI_VERSION, "x86-64-linux-fake", FAKE_NUM_MODELS,
    models,           set_num_threads,     set_error_handler,
#if FAKE_ABI_VERSION == 1
    (const attn_model_memory *)1, /* not there in version 1: never read */
#else
    memory,
#endif
};

#ifdef FAKE_NO_ENTRY
const attn_library_desc *not_attn_library_v1(void) { return &library; }
#else
const attn_library_desc *attn_library_v1(void) { return &library; }
#endif
