//===- Internal.h - Shared internals of the attnc runtime -------*- C++ -*-===//
//
// The concrete handle types behind the opaque C API, the thread-local error
// slot, and the guard that keeps exceptions from crossing the C boundary.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_RUNTIME_INTERNAL_H
#define ATTN_RUNTIME_INTERNAL_H

#include "attn/runtime.h"

#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

// A tensor: dtype, row-major dims and data. `keep` owns whatever backs the
// data (an aligned allocation or a weights mapping); it is empty for
// borrowed data.
struct attn_tensor {
  attn_dtype dtype = ATTN_F32;
  std::vector<int64_t> dims;
  void *data = nullptr;
  std::shared_ptr<void> keep;
};

namespace attn::detail {

// A failure carried from an internal helper to the C boundary.
struct Failure {
  attn_status status;
  std::string message;
};

// Internal helpers throw Failure; the guard turns it into a status.
[[noreturn]] void fail(attn_status status, std::string message);

// Sets the calling thread's error message and returns `status`.
attn_status setError(attn_status status, const std::string &message);
void clearError();

// Runs `body` (returning attn_status, normally ATTN_OK), converting every
// exception into a status plus message. Clears the message first.
template <typename F> attn_status guarded(F &&body) noexcept {
  clearError();
  try {
    return body();
  } catch (const Failure &f) {
    return setError(f.status, f.message);
  } catch (const std::bad_alloc &) {
    return setError(ATTN_ERR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception &e) {
    return setError(ATTN_ERR_INTERNAL,
                    std::string("internal error: ") + e.what());
  } catch (...) {
    return setError(ATTN_ERR_INTERNAL, "internal error: unknown exception");
  }
}

// Runs `body`, turning a std::bad_alloc in it into ATTN_ERR_OUT_OF_MEMORY
// naming `what` (the file, the model), so that no message is a bare "out of
// memory".
template <typename F>
auto namingOutOfMemory(const std::string &what, F &&body) {
  try {
    return body();
  } catch (const std::bad_alloc &) {
    fail(ATTN_ERR_OUT_OF_MEMORY, what + ": out of memory");
  }
}

bool validDtype(int dtype);
// "f32[2, 3]"; "f32[]" for a scalar.
std::string formatShape(attn_dtype dtype, const int64_t *dims, size_t rank);
inline std::string formatShape(const attn_tensor &t) {
  return formatShape(t.dtype, t.dims.data(), t.dims.size());
}
// numel of `dims`, failing (with `what` in the message) on negative dims or
// on byte sizes that overflow.
int64_t checkedNumel(const int64_t *dims, size_t rank, attn_dtype dtype,
                     const std::string &what);
size_t nbytes(const attn_tensor &t);

// An owned, zero-filled, 64-byte-aligned tensor. Running out of memory is
// ATTN_ERR_OUT_OF_MEMORY naming `what` ("input 'x'") and the bytes.
attn_tensor makeOwned(attn_dtype dtype, std::vector<int64_t> dims,
                      const std::string &what);

// Untrusted text (names, dtypes, numbers from a file) made safe for a
// message: control bytes and DEL, which could drive a terminal, become
// \xNN, and text over 200 bytes is cut with "...".
std::string shown(const std::string &s);
// "'name'" quoting of shown(name), used throughout the messages.
inline std::string quote(const std::string &s) { return "'" + shown(s) + "'"; }

// The error text of the last failed system call, for I/O messages.
std::string systemError();

// Opens `path` read-only and returns the descriptor, failing unless it is a
// regular file: a FIFO, socket or device could block or never end. The
// open itself is non-blocking (a FIFO without a writer would block in
// open); reads of a regular file ignore O_NONBLOCK. `size` gets its size.
int openRegularFile(const std::string &path, uint64_t &size);

} // namespace attn::detail

// A safetensors file: one read-only mapping (or, with ATTN_WEIGHTS_COPY,
// one owned copy of the file), tensors viewing into it.
struct attn_weights {
  // One tensor of the file. Every safetensors dtype is read and its size
  // checked, but only those with a runtime dtype (F32, F16, BF16, I32,
  // BOOL) are `viewable`: `tensor.dtype` means nothing for the others
  // (I64, U8, F8_E4M3, ...), which can be listed but not viewed or bound.
  struct Entry {
    std::string name;
    const char *fileDtype; // as the header spells it: "F32", "I64", ...
    bool viewable;
    attn_tensor tensor;
  };
  std::string path;
  std::shared_ptr<void> mapping; // the mapping or the copy
  std::vector<Entry> entries; // in file order
  std::unordered_map<std::string, size_t> index;
};

#endif // ATTN_RUNTIME_INTERNAL_H
