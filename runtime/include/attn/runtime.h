/*===- runtime.h - The attnc runtime C API ------------------------*- C -*-===*\
|*                                                                            *|
|* Loads libraries compiled by attnc, binds their weights, checks inputs and  *|
|* runs models. Also reads and writes the file formats around them: NumPy     *|
|* .npy for inputs/outputs and safetensors for weights.                       *|
|*                                                                            *|
|* Conventions                                                                *|
|*  - Every fallible call returns an attn_status; ATTN_OK is 0. On failure,   *|
|*    attn_last_error() returns the message for the calling thread. Each      *|
|*    call that returns a status resets it: after ATTN_OK it is "". It stays  *|
|*    valid until the next such call on that thread.                          *|
|*  - Output handles are written only on success (otherwise set to NULL).     *|
|*  - Handles are opaque. Each open, create or read call has a matching      *|
|*    close or free call, which accepts NULL. Handles keep what they depend on*|
|*    alive: a model keeps its library loaded and its bound weights mapped,   *|
|*    so they can be closed in any order.                                     *|
|*  - Nothing aborts the caller: no exception leaves these functions, and     *|
|*    bad user input is reported, never asserted. Names and values quoted     *|
|*    from files have control bytes escaped (\xNN) and are cut at 200 bytes.  *|
|*  - Threads: a bound model may be run from many threads at once; see       *|
|*    "threads" below for what else may run concurrently.                     *|
|*  - Shapes are row-major, outermost dimension first (as in NumPy).          *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/
#ifndef ATTN_RUNTIME_H
#define ATTN_RUNTIME_H

#include "attn/abi.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ATTN_RT_API __attribute__((visibility("default")))
#else
#define ATTN_RT_API
#endif

#define ATTN_MAX_RANK 16

typedef enum attn_status {
  ATTN_OK = 0,
  ATTN_ERR_INVALID_ARGUMENT = 1, /* NULL handle, bad count, bad name, ... */
  ATTN_ERR_IO = 2,               /* open/read/write/mmap failed */
  ATTN_ERR_FORMAT = 3,           /* malformed .npy/.safetensors/library */
  ATTN_ERR_DTYPE = 4,            /* element type mismatch or unsupported */
  ATTN_ERR_SHAPE = 5,            /* rank, dim or symbolic size mismatch */
  ATTN_ERR_NOT_FOUND = 6,        /* model, input, weight or symbol missing */
  ATTN_ERR_ABI = 7,              /* library ABI version or table invalid */
  ATTN_ERR_PIPELINE = 8,         /* the compiled pipeline returned non-zero */
  ATTN_ERR_UNSUPPORTED = 9,      /* the library lacks an optional feature */
  ATTN_ERR_OUT_OF_MEMORY = 10,
  ATTN_ERR_INTERNAL = 11,
  ATTN_ERR_RESOURCE = 12, /* a call would exceed the memory limit */
} attn_status;

/*===-- threads -----------------------------------------------------------===*/

/* What may run at the same time (`make test-tsan` checks it under
 * ThreadSanitizer: 16 threads, three models of two libraries, mixed sizes,
 * shared and separately bound handles):
 *  - Runs. attn_model_run and attn_model_run_into may be called on one model
 *    handle from any number of threads at once, and at the same time on any
 *    other models, of the same library or others. A run only reads its
 *    model, its inputs and its params, and writes its outputs and inout
 *    inputs: a tensor that a call writes must not be used by another call
 *    meanwhile; inputs and weights may be shared. Runs of one library share
 *    its Halide thread pool.
 *  - Readers. Calls on const handles (descriptions, counts, names,
 *    attn_weights_get, the tensor accessors) may run alongside each other
 *    and alongside runs. One weights handle may be bound to many models at
 *    once.
 *  - Writers. attn_model_bind_weights and attn_model_bind_param change their
 *    model: no other call may use that model meanwhile. Bind, then run from
 *    many threads.
 *  - Open and close. Open, create, read and write calls (of different
 *    files) may run at any time, also for a library whose models are
 *    running (a file opened twice is loaded once). A close or free must not
 *    overlap another call on the same handle. Handles that keep others
 *    alive (a model its library and weights) may be closed in any order,
 *    from any threads.
 *  - attn_library_set_num_threads may be called at any time: it waits for
 *    the running calls of that library file (through any of its handles) and
 *    holds new ones back until it returns. Libraries linked into the program
 *    (attn_library_from_desc) share one Halide runtime: there it must not
 *    overlap runs of the others.
 *  - Errors. attn_last_error() is per thread. A message that Halide raises
 *    in a pool worker thread (not the calling thread) goes to a slot shared
 *    by the calls running at the time: when several calls fail at once, one
 *    may carry another's message, or none. Each status is its own. */

/* The calling thread's message for the last failed call ("" after success).
 * Never NULL. */
ATTN_RT_API const char *attn_last_error(void);
/* "ok", "invalid argument", "I/O error", ... Never NULL. */
ATTN_RT_API const char *attn_status_name(attn_status status);

/*===-- dtypes ------------------------------------------------------------===*/

/* "f32", "f16", "bf16", "i32", "bool"; "?" for an invalid value. */
ATTN_RT_API const char *attn_dtype_name(attn_dtype dtype);
/* Bytes per element (bool is one byte); 0 for an invalid value. */
ATTN_RT_API size_t attn_dtype_size(attn_dtype dtype);
/* Parses "f32", "f16", "bf16", "i32", "bool". Returns 0 on success. */
ATTN_RT_API int attn_dtype_from_name(const char *name, attn_dtype *out);

/* Conversions for f16/bf16 storage; rounding is to nearest even. */
ATTN_RT_API uint16_t attn_f32_to_f16(float value);
ATTN_RT_API float attn_f16_to_f32(uint16_t bits);
ATTN_RT_API uint16_t attn_f32_to_bf16(float value);
ATTN_RT_API float attn_bf16_to_f32(uint16_t bits);

/*===-- tensors -----------------------------------------------------------===*/

/* A dense row-major array: dtype, shape and data. The data is either owned
 * (64-byte aligned, freed with the tensor), borrowed from the caller, or a
 * view into a mapped weights file (which it keeps mapped). */
typedef struct attn_tensor attn_tensor;

/* Allocates an owned, zero-filled tensor. */
ATTN_RT_API attn_status attn_tensor_create(attn_dtype dtype, int32_t rank,
                                           const int64_t *dims,
                                           attn_tensor **out);
/* Wraps caller memory of at least numel * dtype size bytes, which must stay
 * valid while the tensor is used. Nothing is copied or freed. */
ATTN_RT_API attn_status attn_tensor_wrap(attn_dtype dtype, int32_t rank,
                                         const int64_t *dims, void *data,
                                         attn_tensor **out);
ATTN_RT_API void attn_tensor_free(attn_tensor *tensor);

ATTN_RT_API attn_dtype attn_tensor_dtype(const attn_tensor *tensor);
ATTN_RT_API int32_t attn_tensor_rank(const attn_tensor *tensor);
/* rank entries, outermost first. */
ATTN_RT_API const int64_t *attn_tensor_dims(const attn_tensor *tensor);
ATTN_RT_API int64_t attn_tensor_numel(const attn_tensor *tensor);
ATTN_RT_API size_t attn_tensor_nbytes(const attn_tensor *tensor);
/* Element data. Tensors viewing a weights file are read-only: do not write
 * through this pointer for them. */
ATTN_RT_API void *attn_tensor_data(const attn_tensor *tensor);

/*===-- NumPy .npy --------------------------------------------------------===*/

/* Reads versions 1.0, 2.0 and 3.0. Accepted descr: '<f4' f32, '<f2' f16,
 * '<u2' bf16 (raw storage), '<i4' i32, '|b1' bool. Any other dtype, Fortran
 * order, a header with anything but spaces after its dict, and truncated
 * data are errors; the file's size is checked against the shape before the
 * tensor is allocated. The path must name a regular file (a FIFO or device
 * is refused rather than read). */
ATTN_RT_API attn_status attn_npy_read(const char *path, attn_tensor **out);
/* Like attn_npy_read, but the array must have `expected` dtype; the path and
 * `what` (for example "input 'x'") prefix the message, which names both
 * dtypes: "x.npy: input 'x': got float64 (<f8) but the model expects f32
 * (<f4)". */
ATTN_RT_API attn_status attn_npy_read_expect(const char *path,
                                             attn_dtype expected,
                                             const char *what,
                                             attn_tensor **out);
/* Writes version 1.0 (2.0 if the header does not fit), C order. bf16 is
 * written as '<u2'. */
ATTN_RT_API attn_status attn_npy_write(const char *path,
                                       const attn_tensor *tensor);

/*===-- safetensors weights -----------------------------------------------===*/

/* A safetensors file, memory-mapped (or copied) and validated on open. Every
 * dtype of the format is accepted: F32, F16, BF16, I32 and BOOL, which are
 * viewed as the runtime dtypes of those names, and F64, I64, U64, C64, U32,
 * I16, U16, I8, U8, F8_E4M3, F8_E5M2, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ,
 * F6_E2M3, F6_E3M2 and F4, which are listed and size-checked but cannot be
 * viewed or bound (a checkpoint's I64 position_ids does not stop it from
 * binding). Any other dtype string is an error (ATTN_ERR_DTYPE) naming the
 * file, the tensor and the dtype. "__metadata__" (an object of strings) is
 * ignored.
 *
 * The file is untrusted input, checked as strictly as the format's reference
 * implementation: it must be a regular file (a FIFO or device is refused
 * rather than read); the header is at most 100,000,000 bytes of JSON without
 * duplicate keys or NUL bytes in names, read without recursion (nesting
 * deeper than 64 levels is an error); every shape's byte size must fit in 64 bits and match its
 * data_offsets; and the tensors must fill the data section back to back,
 * without overlap, gap or trailing bytes. Offsets need not be aligned to the
 * element size (the reference does not ask it): binding copies a misaligned
 * tensor to aligned memory. Every failure is ATTN_ERR_FORMAT (or _DTYPE,
 * _IO, _OUT_OF_MEMORY) with a message naming the file and the tensor. */
typedef struct attn_weights attn_weights;

/* Flags of attn_weights_open_ex.
 *
 * By default the file is mapped read-only: opening costs no memory or copy
 * and pages are read on first use and shared with the page cache, but the
 * file must not shrink while the handle or a model bound from it lives.
 * Pages past the new end of a truncated mapped file raise SIGBUS in the
 * process when touched (by the run of a bound model, or attn_weights_get's
 * view), which no status can report. Replace a weights file by writing a
 * new one and renaming it over the old (the mapping keeps the old inode).
 *
 * ATTN_WEIGHTS_COPY reads the whole file into memory at open instead: the
 * file can then change or vanish at any time, at the cost of its size in
 * memory, held until the handle and every model bound from it are closed
 * (and of the read at open). */
typedef enum attn_weights_flags {
  ATTN_WEIGHTS_MAP = 0,
  ATTN_WEIGHTS_COPY = 1,
} attn_weights_flags;

/* attn_weights_open_ex(path, ATTN_WEIGHTS_MAP, out). */
ATTN_RT_API attn_status attn_weights_open(const char *path, attn_weights **out);
/* Opens a safetensors file with `flags`, a bitwise or of attn_weights_flags;
 * unknown bits are ATTN_ERR_INVALID_ARGUMENT. */
ATTN_RT_API attn_status attn_weights_open_ex(const char *path, uint32_t flags,
                                             attn_weights **out);
ATTN_RT_API void attn_weights_close(attn_weights *weights);
ATTN_RT_API int32_t attn_weights_count(const attn_weights *weights);
/* Tensor names in file order; NULL if index is out of range. */
ATTN_RT_API const char *attn_weights_name(const attn_weights *weights,
                                          int32_t index);
/* The dtype of tensor `index` as the file spells it ("F32", "I64", ...);
 * NULL if index is out of range. */
ATTN_RT_API const char *attn_weights_file_dtype(const attn_weights *weights,
                                                int32_t index);
/* A read-only view of one tensor, valid until attn_weights_close. A tensor
 * of a dtype the runtime lacks (I64, U8, ...) fails with ATTN_ERR_DTYPE. */
ATTN_RT_API attn_status attn_weights_get(const attn_weights *weights,
                                         const char *name,
                                         const attn_tensor **out);

/* Writes `count` tensors under `names` (which must be distinct). The data is
 * laid out by decreasing element size, so each tensor is aligned to it. */
ATTN_RT_API attn_status attn_safetensors_write(
    const char *path, int32_t count, const char *const *names,
    const attn_tensor *const *tensors);

/*===-- libraries and models ----------------------------------------------===*/

typedef struct attn_library attn_library;

/* dlopen()s a compiled library (RTLD_NOW | RTLD_LOCAL), calls its
 * attn_library_v1, checks the ABI version and validates the model table.
 * A path without '/' is taken relative to the working directory. */
ATTN_RT_API attn_status attn_library_open(const char *path, attn_library **out);
/* The same for a library linked into the program (the .a + header form):
 * attn_library_from_desc(attn_library_v1(), &lib). */
ATTN_RT_API attn_status attn_library_from_desc(const attn_library_desc *desc,
                                               attn_library **out);
ATTN_RT_API void attn_library_close(attn_library *library);
/* The library's own description table. */
ATTN_RT_API const attn_library_desc *
attn_library_get_desc(const attn_library *library);
/* Sets the worker thread count of the library's Halide runtime (0 = its
 * default, the number of cores or HL_NUM_THREADS), for every handle of the
 * library file. It waits for the library's running calls, then stops its
 * worker threads, which start again with the new count on the next run. */
ATTN_RT_API attn_status attn_library_set_num_threads(attn_library *library,
                                                     int n);

/* Limits the memory of each later run of the library's models (opened
 * through this handle) to `bytes`; 0 (the default) means no limit. A run
 * whose inputs, outputs and scratch together exceed it fails with
 * ATTN_ERR_RESOURCE before it allocates anything, with a message naming
 * the bytes needed, the limit and the call's symbolic sizes. Scratch is
 * what the library's table says the pipeline allocates for those sizes
 * (attn_model_memory in abi.h: its buffers computed at root; small
 * per-tile buffers are not counted); libraries that do not say (ABI
 * version 1) count inputs and outputs only. Params are not counted: they
 * are held already, by the bound weights. May be called at any time; runs
 * that have passed the check are not affected. */
ATTN_RT_API attn_status attn_library_set_memory_limit(attn_library *library,
                                                      uint64_t bytes);

/* One model of a library, with its bound weights. */
typedef struct attn_model attn_model;

/* Finds a model by name; a NULL name picks the only model of the library. */
ATTN_RT_API attn_status attn_model_open(attn_library *library, const char *name,
                                        attn_model **out);
ATTN_RT_API void attn_model_close(attn_model *model);
ATTN_RT_API const attn_model_desc *attn_model_get_desc(const attn_model *model);

ATTN_RT_API int32_t attn_model_num_inputs(const attn_model *model);
ATTN_RT_API int32_t attn_model_num_params(const attn_model *model);
ATTN_RT_API int32_t attn_model_num_outputs(const attn_model *model);
/* Tensor descriptions by position within their role; NULL if out of range. */
ATTN_RT_API const attn_tensor_desc *attn_model_input(const attn_model *model,
                                                     int32_t i);
ATTN_RT_API const attn_tensor_desc *attn_model_param(const attn_model *model,
                                                     int32_t i);
ATTN_RT_API const attn_tensor_desc *attn_model_output(const attn_model *model,
                                                      int32_t i);
/* Position of the input called `name`, or -1. */
ATTN_RT_API int32_t attn_model_input_index(const attn_model *model,
                                           const char *name);

/* Formats a tensor description as "f32[B, S, 768]" into buf (always NUL
 * terminated if size > 0). Returns the full length, like snprintf. */
ATTN_RT_API int attn_model_format_type(const attn_model *model,
                                       const attn_tensor_desc *tensor,
                                       char *buf, size_t size);

/* The scratch bytes that a run of `model` allocates for the symbolic sizes
 * `sizes` (num_syms values, in the order of attn_model_desc::sym_names):
 * `*out` gets the bytes, or -1 when the library does not say. */
ATTN_RT_API attn_status attn_model_scratch_bytes(const attn_model *model,
                                                 int32_t num_sizes,
                                                 const int64_t *sizes,
                                                 int64_t *out);

/* Binds every param to the tensor of its weights name in `weights`. Fails,
 * binding nothing, if a weight is missing or has the wrong dtype or shape
 * (an I64 tensor for an f32 param: "w.safetensors: tensor 'wq' is I64 in
 * the file, the model expects f32[768, 768] for param 'wq'"; messages name
 * the file and the tensor). Tensors of the file that the model does not use
 * are ignored whatever their dtype (as Hugging Face's from_pretrained does),
 * so a whole checkpoint binds to a model of one of its layers. The model keeps the file mapped (or its
 * copy, see ATTN_WEIGHTS_COPY). Symbolic dims of params are bound by the
 * weights. */
ATTN_RT_API attn_status attn_model_bind_weights(attn_model *model,
                                                const attn_weights *weights);
/* Binds one param by its model name to caller data (borrowed: `tensor` and
 * its data must stay valid until the param is rebound or the model closed). */
ATTN_RT_API attn_status attn_model_bind_param(attn_model *model,
                                              const char *name,
                                              const attn_tensor *tensor);

/* Checks inputs (count, dtypes, ranks, static dims, symbolic sizes),
 * allocates the outputs with the resolved sizes and runs the model. When
 * every output is empty (a size of 0) the model is not run; a size of 0
 * with a non-empty output (attention over no keys) fails with
 * ATTN_ERR_SHAPE naming the size.
 * `inputs` holds one tensor per model input in declaration order. On
 * success outputs[i] receives a new tensor the caller frees. */
ATTN_RT_API attn_status attn_model_run(attn_model *model, int32_t num_inputs,
                                       const attn_tensor *const *inputs,
                                       int32_t num_outputs,
                                       attn_tensor **outputs);
/* Both runs check, before allocating: the memory limit (see
 * attn_library_set_memory_limit), and, for a library compiled without
 * Halide's large_buffers (its target string lacks it), that no input, param
 * or output reaches 2^31 bytes (ATTN_ERR_UNSUPPORTED otherwise: compile
 * with attnc --target=host-large_buffers). */
/* Like attn_model_run, into caller-provided outputs whose dtypes and shapes
 * must match the resolved output types. */
ATTN_RT_API attn_status attn_model_run_into(attn_model *model,
                                            int32_t num_inputs,
                                            const attn_tensor *const *inputs,
                                            int32_t num_outputs,
                                            attn_tensor *const *outputs);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_RUNTIME_H */
