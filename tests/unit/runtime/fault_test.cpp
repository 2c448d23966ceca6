//===- fault_test.cpp - Failing the N-th allocation, for every N ----------===//
//
// This binary interposes malloc, calloc, realloc, posix_memalign,
// aligned_alloc and memalign (forwarding to the next definition: libc's, or
// the sanitizer's under `make test-asan`) and the replaceable operator new,
// so that while armed the N-th allocation of the process fails. Over
// opening a weights file, binding it and running a compiled model, every N
// must give an error status (or, where the code recovers, ATTN_OK with the
// right output), never a crash; under LeakSanitizer, no leak.
//
//===----------------------------------------------------------------------===//
#include "attn/runtime.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <filesystem>
#include <malloc.h>
#include <new>
#include <unistd.h>

// The interposed functions run before the sanitizers have set up (the
// dynamic loader allocates early): they and what they call are not
// instrumented, and use plain globals with atomic builtins.
#define NO_SANITIZE __attribute__((no_sanitize_address, no_sanitize_undefined))

namespace {

bool armed = false;
long countdown = 0; // allocations left before the one that fails
long injected = 0;

// True when this allocation must fail.
NO_SANITIZE bool failNow() {
  if (!__atomic_load_n(&armed, __ATOMIC_RELAXED))
    return false;
  if (__atomic_fetch_sub(&countdown, 1, __ATOMIC_RELAXED) != 1)
    return false;
  __atomic_fetch_add(&injected, 1, __ATOMIC_RELAXED);
  return true;
}

// dlsym may itself allocate (calloc): served from here while resolving.
alignas(64) char bootstrap[4096];
size_t bootstrapUsed = 0;
bool resolving = false;

NO_SANITIZE void *bootstrapAlloc(size_t n) {
  n = (n + 63) / 64 * 64;
  if (bootstrapUsed + n > sizeof bootstrap)
    return nullptr;
  void *p = bootstrap + bootstrapUsed;
  bootstrapUsed += n;
  return p; // zeroed: static storage
}
NO_SANITIZE bool fromBootstrap(void *p) {
  return p >= (void *)bootstrap && p < (void *)(bootstrap + sizeof bootstrap);
}

// The next definitions (libc's, or the sanitizer's), resolved on first use.
struct Real {
  void *(*malloc)(size_t);
  void *(*calloc)(size_t, size_t);
  void *(*realloc)(void *, size_t);
  void (*free)(void *);
  int (*posix_memalign)(void **, size_t, size_t);
  void *(*aligned_alloc)(size_t, size_t);
  void *(*memalign)(size_t, size_t);
} realFns;
bool resolved = false;

NO_SANITIZE Real &real() {
  if (!__atomic_load_n(&resolved, __ATOMIC_ACQUIRE)) {
    resolving = true;
    Real &r = realFns;
    r.malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    r.calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    r.realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    r.free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    r.posix_memalign =
        (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
    r.aligned_alloc =
        (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
    r.memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
    resolving = false;
    __atomic_store_n(&resolved, true, __ATOMIC_RELEASE);
  }
  return realFns;
}

} // namespace

extern "C" {
NO_SANITIZE void *malloc(size_t n) {
  if (resolving)
    return bootstrapAlloc(n);
  return failNow() ? nullptr : real().malloc(n);
}
NO_SANITIZE void *calloc(size_t n, size_t size) {
  if (resolving)
    return bootstrapAlloc(n * size);
  return failNow() ? nullptr : real().calloc(n, size);
}
NO_SANITIZE void *realloc(void *p, size_t n) {
  return failNow() ? nullptr : real().realloc(p, n);
}
NO_SANITIZE void free(void *p) {
  if (p && !fromBootstrap(p))
    real().free(p);
}
NO_SANITIZE int posix_memalign(void **out, size_t align, size_t n) {
  return failNow() ? ENOMEM : real().posix_memalign(out, align, n);
}
NO_SANITIZE void *aligned_alloc(size_t align, size_t n) {
  return failNow() ? nullptr : real().aligned_alloc(align, n);
}
NO_SANITIZE void *memalign(size_t align, size_t n) {
  return failNow() ? nullptr : real().memalign(align, n);
}
}

// operator new goes through malloc above (a sanitizer's own operator new
// would not), so that C++ allocations fail too.
void *operator new(size_t n) {
  if (void *p = malloc(n ? n : 1))
    return p;
  throw std::bad_alloc();
}
void *operator new[](size_t n) { return operator new(n); }
void operator delete(void *p) noexcept { free(p); }
void operator delete[](void *p) noexcept { free(p); }
void operator delete(void *p, size_t) noexcept { free(p); }
void operator delete[](void *p, size_t) noexcept { free(p); }
void *operator new(size_t n, const std::nothrow_t &) noexcept {
  return malloc(n ? n : 1);
}
void *operator new[](size_t n, const std::nothrow_t &) noexcept {
  return malloc(n ? n : 1);
}
void operator delete(void *p, const std::nothrow_t &) noexcept { free(p); }
void operator delete[](void *p, const std::nothrow_t &) noexcept { free(p); }

namespace {

// A tensor of `d`'s shape with every size 3, filled with small values.
attn::Tensor tensorFor(const attn_tensor_desc &d) {
  std::vector<int64_t> dims;
  for (int32_t i = 0; i < d.rank; ++i)
    dims.push_back(ATTN_DIM_IS_SYMBOLIC(d.dims[i]) ? 3 : d.dims[i]);
  auto t = attn::Tensor::create(d.dtype, dims);
  EXPECT_TRUE(t.ok()) << t.status().message;
  attn::Tensor x = t.take();
  if (d.dtype == ATTN_F32)
    for (int64_t i = 0; i < x.numel(); ++i)
      x.data<float>()[i] = (float)(i % 7) * 0.25f - 0.5f;
  return x;
}

// Opens `weights`, binds it to `model` and runs it once: the first
// failing status, or ATTN_OK with the outputs in `out`.
attn_status bindAndRun(attn_model *model, const std::string &weights,
                       const std::vector<const attn_tensor *> &inputs,
                       std::vector<attn_tensor *> &out) {
  attn_weights *w = nullptr;
  attn_status st = attn_weights_open(weights.c_str(), &w);
  if (st == ATTN_OK)
    st = attn_model_bind_weights(model, w);
  attn_weights_close(w);
  if (st == ATTN_OK)
    st = attn_model_run(model, (int32_t)inputs.size(), inputs.data(),
                        (int32_t)out.size(), out.data());
  return st;
}

TEST(FaultInjection, EveryFailedAllocationIsAnErrorNotACrash) {
  auto lib = attn::Library::open(FAULT_MODEL_PATH);
  ASSERT_TRUE(lib.ok()) << lib.status().message;
  // One thread: the allocations are then the same on every run.
  ASSERT_TRUE(lib->setNumThreads(1).ok());
  auto model = lib->model("mm_proj");
  ASSERT_TRUE(model.ok()) << model.status().message;

  std::string dir = testing::TempDir() + "attn_fault_" +
                    std::to_string(getpid());
  std::filesystem::create_directories(dir);
  std::string weights = dir + "/w.safetensors";
  std::vector<attn::Tensor> params, inputs;
  std::vector<std::pair<std::string, attn::TensorView>> named;
  for (const attn_tensor_desc *p : model->params())
    params.push_back(tensorFor(*p));
  for (size_t i = 0; i < params.size(); ++i)
    named.emplace_back(model->params()[i]->weight_name, params[i]);
  ASSERT_TRUE(attn::Weights::write(weights, named).ok());
  std::vector<const attn_tensor *> in;
  for (const attn_tensor_desc *d : model->inputs()) {
    inputs.push_back(tensorFor(*d));
    in.push_back(inputs.back().get());
  }

  // The expected output, and a warm-up (the Halide runtime's first-run
  // allocations).
  std::vector<attn_tensor *> want(model->outputs().size(), nullptr);
  ASSERT_EQ(bindAndRun(model->get(), weights, in, want), ATTN_OK)
      << attn_last_error();

  long failures = 0, last = 0;
  for (long n = 1;; ++n) {
    last = n;
    std::vector<attn_tensor *> out(want.size(), nullptr);
    __atomic_store_n(&injected, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&countdown, n, __ATOMIC_RELAXED);
    __atomic_store_n(&armed, true, __ATOMIC_SEQ_CST);
    attn_status st = bindAndRun(model->get(), weights, in, out);
    __atomic_store_n(&armed, false, __ATOMIC_SEQ_CST);
    if (injected == 0) { // n is past the last allocation: done
      EXPECT_EQ(st, ATTN_OK) << attn_last_error();
      EXPECT_GT(n, 10) << "too few allocations seen: is malloc interposed?";
      for (attn_tensor *t : out)
        attn_tensor_free(t);
      break;
    }
    if (st != ATTN_OK) {
      ++failures;
      EXPECT_STRNE(attn_last_error(), "") << "allocation " << n;
      for (attn_tensor *t : out)
        EXPECT_EQ(t, nullptr) << "allocation " << n;
      continue;
    }
    // Recovered (a failure the code can do without): the same result.
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_NE(out[i], nullptr);
      EXPECT_EQ(std::memcmp(attn_tensor_data(out[i]), attn_tensor_data(want[i]),
                            attn_tensor_nbytes(want[i])),
                0)
          << "allocation " << n;
      attn_tensor_free(out[i]);
    }
  }
  EXPECT_GT(failures, 0);
  std::printf("%ld allocations failed one by one: %ld errors, %ld "
              "recovered\n",
              last - 1, failures, last - 1 - failures);
  for (attn_tensor *t : want)
    attn_tensor_free(t);
  std::filesystem::remove_all(dir);
}

} // namespace
