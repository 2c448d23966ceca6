/*===- callbench.c - Timed loops of runtime calls, for python_overhead.py -===*\
|*                                                                            *|
|* The C side of the Python per-call overhead benchmark: loaded with ctypes   *|
|* into the same process as the Python side, it calls the runtime C API on    *|
|* the same model handle and tensors, `calls` times, and stores each call's   *|
|* time in ns[i] (CLOCK_MONOTONIC around the call alone). Returns the first   *|
|* failing status (its message is attn_last_error()), else ATTN_OK.           *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/
#include "attn/runtime.h"

#include <time.h>

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return 1e9 * (double)t.tv_sec + (double)t.tv_nsec;
}

/* attn_model_run_into on caller tensors: what the Python binding calls. */
int attn_callbench_run_into(attn_model *model, int32_t num_inputs,
                            const attn_tensor *const *inputs,
                            int32_t num_outputs, attn_tensor *const *outputs,
                            int32_t calls, double *ns) {
  for (int32_t i = 0; i < calls; ++i) {
    double t0 = now_ns();
    attn_status s =
        attn_model_run_into(model, num_inputs, inputs, num_outputs, outputs);
    ns[i] = now_ns() - t0;
    if (s != ATTN_OK)
      return s;
  }
  return ATTN_OK;
}

/* attn_model_run, which allocates the outputs (freed, untimed, after each
 * call; at most 16 outputs). */
int attn_callbench_run(attn_model *model, int32_t num_inputs,
                       const attn_tensor *const *inputs, int32_t num_outputs,
                       int32_t calls, double *ns) {
  attn_tensor *outs[16];
  if (num_outputs > 16)
    return ATTN_ERR_INVALID_ARGUMENT;
  for (int32_t i = 0; i < calls; ++i) {
    double t0 = now_ns();
    attn_status s = attn_model_run(model, num_inputs, inputs, num_outputs, outs);
    ns[i] = now_ns() - t0;
    if (s != ATTN_OK)
      return s;
    for (int32_t k = 0; k < num_outputs; ++k)
      attn_tensor_free(outs[k]);
  }
  return ATTN_OK;
}
