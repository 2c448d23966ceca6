/*===- probe_lib.c - A hand-written attnc library for the Python tests ----===*\
|*                                                                            *|
|* Implements attn_library_v1 by hand over halide_buffer_t, as a compiled     *|
|* library would, with two models that let test_attnc.py see what reaches    *|
|* the pipeline:                                                              *|
|*   addresses<N>(x: f32[N], c: inout f32[N]) -> (y: f32[N], addr: i32[6])   *|
|*     y = 2 x, c += 1 in place, and addr the host pointers of x, c and y as   *|
|*     (low, high) 32-bit halves: the memory the pipeline was handed.          *|
|*   wait_flag(flag: inout i32[2]) -> out: i32[1]                             *|
|*     sets flag[1] = 1 ("running"), then waits until another thread sets     *|
|*     flag[0] (out[0] = flag[0]). Gives up after 30 s with an error: the     *|
|*     thread that was to set it never ran (the GIL was held).                *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/
#include "attn/abi.h"

#include <HalideRuntime.h>

#include <stdint.h>
#include <time.h>

static attn_error_handler error_handler;

static void set_error_handler(attn_error_handler handler) {
  error_handler = handler;
}

static void put_address(int32_t *out, const halide_buffer_t *b) {
  uint64_t a = (uint64_t)(uintptr_t)b->host;
  out[0] = (int32_t)(uint32_t)a;
  out[1] = (int32_t)(uint32_t)(a >> 32);
}

/* buffers: x, c, y, addr (inputs, then outputs; no params). */
static int addresses_entry(void **buffers) {
  halide_buffer_t *x = buffers[0], *c = buffers[1], *y = buffers[2],
                  *addr = buffers[3];
  const float *xs = (const float *)x->host;
  float *cs = (float *)c->host, *ys = (float *)y->host;
  for (int32_t i = 0; i < x->dim[0].extent; ++i) {
    ys[i] = 2 * xs[i];
    cs[i] += 1;
  }
  int32_t *out = (int32_t *)addr->host;
  put_address(out, x);
  put_address(out + 2, c);
  put_address(out + 4, y);
  return 0;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int wait_flag_entry(void **buffers) {
  volatile int32_t *flag = (volatile int32_t *)((halide_buffer_t *)buffers[0])->host;
  int32_t *out = (int32_t *)((halide_buffer_t *)buffers[1])->host;
  flag[1] = 1;
  const struct timespec ms = {0, 1000000};
  for (double end = now_s() + 30; !flag[0];) {
    if (now_s() > end) {
      if (error_handler)
        error_handler(NULL, "wait_flag: flag[0] was not set within 30 s");
      return -1;
    }
    nanosleep(&ms, NULL);
  }
  out[0] = flag[0];
  return 0;
}

static const char *const n_syms[] = {"N"};
static const attn_dim dims_n[] = {-1};
static const attn_dim dims_6[] = {6};
static const attn_dim dims_2[] = {2};
static const attn_dim dims_1[] = {1};
static const attn_tensor_desc addresses_tensors[] = {
    {"x", NULL, ATTN_INPUT, ATTN_F32, 1, dims_n},
    {"c", NULL, ATTN_INOUT, ATTN_F32, 1, dims_n},
    {"y", NULL, ATTN_OUTPUT, ATTN_F32, 1, dims_n},
    {"addr", NULL, ATTN_OUTPUT, ATTN_I32, 1, dims_6},
};
static const attn_tensor_desc wait_flag_tensors[] = {
    {"flag", NULL, ATTN_INOUT, ATTN_I32, 1, dims_2},
    {"out", NULL, ATTN_OUTPUT, ATTN_I32, 1, dims_1},
};

static const attn_model_desc models[] = {
    {"addresses", 1, n_syms, 4, addresses_tensors, addresses_entry},
    {"wait_flag", 0, NULL, 2, wait_flag_tensors, wait_flag_entry},
};

static const attn_library_desc library = {
    ATTN_ABI_VERSION, "x86-64-linux-probe", 2, models, NULL,
    set_error_handler, NULL};

const attn_library_desc *attn_library_v1(void) { return &library; }
