/*===- abi.h - What a compiled attnc library exports ---------------*- C -*-===*\
|*                                                                            *|
|* Every library that attnc produces (.so, or .a + header) exports one       *|
|* function, `attn_library_v1`, that returns a table describing its models.  *|
|* The runtime reads only this table: nothing about a model is guessed.      *|
|* This header is shared by the compiler (which generates the table) and     *|
|* the runtime (which reads it). It is plain C and depends on nothing.       *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/
#ifndef ATTN_ABI_H
#define ATTN_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version 2 added attn_library_desc::memory. The runtime also loads
 * version 1 tables, which have no such field (their scratch is unknown). */
#define ATTN_ABI_VERSION 2

typedef enum attn_dtype {
  ATTN_F32 = 0,
  ATTN_F16 = 1,
  ATTN_BF16 = 2,
  ATTN_I32 = 3,
  ATTN_BOOL = 4, /* one byte per element, 0 or 1 */
} attn_dtype;

typedef enum attn_tensor_role {
  ATTN_INPUT = 0,
  ATTN_PARAM = 1,
  ATTN_OUTPUT = 2,
  /* An input that the model writes in place (a KV cache declared `inout`):
   * listed with the inputs, in declaration order, and counted as one. */
  ATTN_INOUT = 3,
} attn_tensor_role;

/* One dimension: a static size (>= 0), or symbolic size number k encoded
 * as -(k + 1), where k indexes attn_model_desc::sym_names. A symbol whose
 * name is a sum of other symbols' names and integers ("T+1", "P+S") is a
 * derived size: its value is that sum (an input that carries it must
 * agree). */
typedef int64_t attn_dim;
#define ATTN_DIM_IS_SYMBOLIC(d) ((d) < 0)
/* -((d) + 1) rather than -(d) - 1: no overflow for any negative d. Only
 * meaningful for d in [-num_syms, -1], which the runtime checks first. */
#define ATTN_DIM_SYMBOL(d) ((int)(-((d) + 1)))

typedef struct attn_tensor_desc {
  const char *name;        /* argument, param or output name */
  const char *weight_name; /* params: the tensor's name in the weights file;
                              NULL otherwise */
  attn_tensor_role role;
  attn_dtype dtype;
  int32_t rank;
  const attn_dim *dims; /* rank entries, outermost first (row-major) */
} attn_tensor_desc;

/* Runs the model. `buffers` holds one `struct halide_buffer_t *` per tensor,
 * in the order of attn_model_desc::tensors (inputs, then params, then
 * outputs). Returns 0 on success, otherwise a Halide error code; the message
 * goes to the handler installed by attn_library_v1::set_error_handler. */
typedef int (*attn_entry_fn)(void **buffers);

typedef struct attn_model_desc {
  const char *name;
  int32_t num_syms;
  const char *const *sym_names;
  int32_t num_tensors;
  const attn_tensor_desc *tensors; /* inputs, then params, then outputs */
  attn_entry_fn entry;
} attn_model_desc;

/* A size in bytes as a function of a model's symbolic sizes: a program
 * for a stack machine, `len` pairs (op, arg) of int64_t read in order.
 * ATTN_X_CONST pushes arg, ATTN_X_SYM pushes symbol arg's value (an index
 * into attn_model_desc::sym_names); every other op pops its operands (b
 * on top of a) and pushes the result: add a+b, sub a-b, mul a*b, div and
 * mod (Halide's: rounding to -infinity, x/0 = x%0 = 0), min, max, the
 * comparisons (1 or 0), and/or (of non-zero), not, and select(c, t, f)
 * (f on top). The program leaves exactly one value. The runtime evaluates
 * it in saturating 64-bit arithmetic. */
typedef enum attn_expr_op {
  ATTN_X_CONST = 0,
  ATTN_X_SYM = 1,
  ATTN_X_ADD = 2,
  ATTN_X_SUB = 3,
  ATTN_X_MUL = 4,
  ATTN_X_DIV = 5,
  ATTN_X_MOD = 6,
  ATTN_X_MIN = 7,
  ATTN_X_MAX = 8,
  ATTN_X_LT = 9,
  ATTN_X_LE = 10,
  ATTN_X_EQ = 11,
  ATTN_X_NE = 12,
  ATTN_X_AND = 13,
  ATTN_X_OR = 14,
  ATTN_X_NOT = 15,
  ATTN_X_SELECT = 16,
} attn_expr_op;

typedef struct attn_size_expr {
  int32_t len;         /* number of (op, arg) pairs; 0 = unknown */
  const int64_t *code; /* 2 * len entries */
} attn_size_expr;

/* What a model allocates besides its inputs, params and outputs. */
typedef struct attn_model_memory {
  /* The bytes of the pipeline's buffers computed at root (the
   * intermediates that live for the whole call), summed: exact for those
   * buffers. Not counted: per-tile buffers inside loops (bounded by the
   * tile sizes, a few KiB to MiB per thread, independent of the symbolic
   * sizes), buffers of models this one calls, and device memory. Unknown
   * (len 0) where the compiler could not express the size. A model split
   * into several pipelines (attnc --segment-ops): the most that one of
   * them holds at once, its root buffers and the tensors between
   * pipelines that are alive while it runs. */
  attn_size_expr scratch;
} attn_model_memory;

typedef void (*attn_error_handler)(void *user_context, const char *message);

typedef struct attn_library_desc {
  int32_t abi_version; /* ATTN_ABI_VERSION */
  const char *target;  /* the Halide target string it was compiled for */
  int32_t num_models;
  const attn_model_desc *models;
  /* Sets the number of worker threads of the library's own Halide runtime,
   * from its next run on: attnc's libraries stop their workers here (Halide
   * 14 keeps the workers it has whatever the count says). */
  int (*set_num_threads)(int n);
  /* Routes the library's Halide runtime errors to `handler` instead of
   * stderr. The pipeline still returns a non-zero code; nothing aborts. */
  void (*set_error_handler)(attn_error_handler handler);
  /* Since version 2: one entry per model, in the order of `models`; may be
   * NULL (nothing known). Absent from version 1 tables: not read there. */
  const attn_model_memory *memory;
} attn_library_desc;

/* The one symbol a compiled library exports for the runtime. */
const attn_library_desc *attn_library_v1(void);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_ABI_H */
