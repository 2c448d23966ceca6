//===- memcount.cpp - Interposed malloc with a high-water mark --*- C++ -*-===//
//
// The harness executable defines malloc & co., so every allocation in the
// process goes through here: its own code, OpenBLAS, oneDNN, libstdc++ and
// the Halide runtime inside attnc libraries (halide_malloc calls malloc).
// Each block is counted by malloc_usable_size, and the peak of the live total
// is kept. `extra memory` of a call = peak during the call - live total
// before it. Not seen: mmap() done directly by a library (OpenBLAS maps its
// GEMM buffers once at start-up, not per call) and stack (alloca) memory.
//
//===----------------------------------------------------------------------===//
#include "memcount.h"

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <malloc.h>

extern "C" {
void *__libc_malloc(size_t);
void __libc_free(void *);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void *__libc_memalign(size_t, size_t);
void *__libc_valloc(size_t);
void *__libc_pvalloc(size_t);
}

static std::atomic<long> gLive{0}, gPeak{0};

static inline void account(void *p, long sign) {
  if (!p)
    return;
  long n = sign * long(malloc_usable_size(p));
  long now = gLive.fetch_add(n, std::memory_order_relaxed) + n;
  long peak = gPeak.load(std::memory_order_relaxed);
  while (now > peak &&
         !gPeak.compare_exchange_weak(peak, now, std::memory_order_relaxed))
    ;
}

extern "C" {
void *malloc(size_t n) {
  void *p = __libc_malloc(n);
  account(p, 1);
  return p;
}
void free(void *p) {
  account(p, -1);
  __libc_free(p);
}
void *calloc(size_t a, size_t b) {
  void *p = __libc_calloc(a, b);
  account(p, 1);
  return p;
}
void *realloc(void *old, size_t n) {
  long before = old ? long(malloc_usable_size(old)) : 0;
  void *p = __libc_realloc(old, n);
  if (p || n == 0) {
    gLive.fetch_sub(before, std::memory_order_relaxed);
    account(p, 1);
  }
  return p;
}
void *memalign(size_t align, size_t n) {
  void *p = __libc_memalign(align, n);
  account(p, 1);
  return p;
}
void *aligned_alloc(size_t align, size_t n) { return memalign(align, n); }
int posix_memalign(void **out, size_t align, size_t n) {
  void *p = __libc_memalign(align, n);
  if (!p)
    return ENOMEM;
  account(p, 1);
  *out = p;
  return 0;
}
void *valloc(size_t n) {
  void *p = __libc_valloc(n);
  account(p, 1);
  return p;
}
void *pvalloc(size_t n) {
  void *p = __libc_pvalloc(n);
  account(p, 1);
  return p;
}
}

namespace attn::bench {
long memLiveBytes() { return gLive.load(std::memory_order_relaxed); }
void memResetPeak() { gPeak.store(gLive.load(std::memory_order_relaxed)); }
long memPeakBytes() { return gPeak.load(std::memory_order_relaxed); }
} // namespace attn::bench
