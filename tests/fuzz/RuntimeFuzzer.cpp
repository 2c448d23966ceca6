//===- RuntimeFuzzer.cpp - Fuzz a compiled model's input checks -----------===//
//
// Models compiled by attnc at build time (ATTN_FUZZ_MODEL_LIBS, a list of
// libraries separated by ':') are opened once, with every param bound to
// deterministic values. Each input then picks a model and builds its
// inputs from the bytes: count, dtype, rank, dims and data, or NULL. The
// run must return a status (an error, or success for inputs that fit);
// it must never crash. Tensors are capped at kMaxElems elements so that
// runs stay fast.
//
//===----------------------------------------------------------------------===//
#include "attn/runtime.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr int64_t kMaxElems = 4096;

/// The libraries, models and params, opened once and never closed (held by
/// a leaked pointer, so LeakSanitizer sees them as reachable).
struct Fixture {
  std::vector<attn_library *> libs;
  std::vector<attn_model *> models;
  std::vector<attn_tensor *> params;
};

[[noreturn]] void die(const char *what) {
  std::fprintf(stderr, "%s: %s\n", what, attn_last_error());
  std::abort();
}

/// A tensor of `desc`'s dtype and dims (symbolic ones 1) with small values.
attn_tensor *makeParam(const attn_tensor_desc &desc) {
  std::vector<int64_t> dims(desc.dims, desc.dims + desc.rank);
  for (int64_t &d : dims)
    d = d < 0 ? 1 : d;
  attn_tensor *t = nullptr;
  if (attn_tensor_create(desc.dtype, desc.rank, dims.data(), &t) != ATTN_OK)
    die("attn_tensor_create");
  if (desc.dtype == ATTN_F32) {
    float *f = static_cast<float *>(attn_tensor_data(t));
    for (int64_t i = 0; i < attn_tensor_numel(t); ++i)
      f[i] = float(i % 7 - 3) * 0.05f;
  }
  return t;
}

Fixture &fixture() {
  static Fixture *fx = [] {
    auto *fx = new Fixture;
    std::string libs = ATTN_FUZZ_MODEL_LIBS;
    for (size_t pos = 0; pos <= libs.size();) {
      size_t end = std::min(libs.find(':', pos), libs.size());
      std::string path = libs.substr(pos, end - pos);
      pos = end + 1;
      attn_library *lib = nullptr;
      if (attn_library_open(path.c_str(), &lib) != ATTN_OK)
        die("attn_library_open");
      fx->libs.push_back(lib);
      const attn_library_desc *desc = attn_library_get_desc(lib);
      for (int32_t m = 0; m < desc->num_models; ++m) {
        attn_model *model = nullptr;
        if (attn_model_open(lib, desc->models[m].name, &model) != ATTN_OK)
          die("attn_model_open");
        fx->models.push_back(model);
        for (int32_t p = 0; p < attn_model_num_params(model); ++p) {
          const attn_tensor_desc *d = attn_model_param(model, p);
          fx->params.push_back(makeParam(*d));
          if (attn_model_bind_param(model, d->name, fx->params.back()) !=
              ATTN_OK)
            die("attn_model_bind_param");
        }
      }
    }
    return fx;
  }();
  return *fx;
}

/// Reads the fuzz bytes in order; zeros once they run out.
struct Bytes {
  const uint8_t *data;
  size_t size;
  uint8_t next() { return size ? (--size, *data++) : 0; }
};

/// A dim from one byte: mostly small sizes, sometimes 0, -1 or huge.
int64_t dimFrom(uint8_t b) {
  switch (b) {
  case 0xff:
    return -1;
  case 0xfe:
    return INT64_MAX;
  case 0xfd:
    return int64_t(1) << 40;
  default:
    return b % 40;
  }
}

/// A tensor from the bytes, or nullptr (a NULL input, or one too large or
/// that attn_tensor_create rejects).
attn_tensor *tensorFrom(Bytes &in) {
  uint8_t kind = in.next();
  if (kind == 0xff)
    return nullptr;
  auto dtype = static_cast<attn_dtype>(kind % 6); // 5: not a dtype
  int32_t rank = in.next() % 19;                  // up to 18 > ATTN_MAX_RANK
  std::vector<int64_t> dims(rank);
  int64_t elems = 1;
  for (int64_t &d : dims) {
    d = dimFrom(in.next());
    if (d > 0 && elems <= kMaxElems)
      elems = d > kMaxElems ? kMaxElems + 1 : elems * d;
  }
  bool valid = true;
  for (int64_t d : dims)
    valid &= d >= 0;
  if (valid && elems > kMaxElems)
    return nullptr;
  attn_tensor *t = nullptr;
  if (attn_tensor_create(dtype, rank, dims.data(), &t) != ATTN_OK)
    return nullptr;
  // A count, then that many bytes of data from its start; zeros after.
  auto *p = static_cast<uint8_t *>(attn_tensor_data(t));
  size_t n = std::min<size_t>(in.next(), attn_tensor_nbytes(t));
  for (size_t i = 0; i < n; ++i)
    p[i] = dtype == ATTN_BOOL ? in.next() & 1 : in.next();
  return t;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::vector<attn_model *> &all = fixture().models;
  Bytes in{data, size};
  attn_model *model = all[in.next() % all.size()];
  int32_t expected = attn_model_num_inputs(model);
  int32_t numInputs = expected + int32_t(in.next() % 3) - 1;
  int32_t numOutputs =
      attn_model_num_outputs(model) + int32_t(in.next() % 3) - 1;
  std::vector<attn_tensor *> inputs(numInputs > 0 ? numInputs : 0);
  for (attn_tensor *&t : inputs)
    t = tensorFrom(in);
  std::vector<attn_tensor *> outputs(8, nullptr);
  attn_status status = attn_model_run(
      model, numInputs, inputs.data(), numOutputs,
      numOutputs >= 0 && numOutputs <= 8 ? outputs.data() : nullptr);
  if (status == ATTN_OK && numOutputs > 0)
    for (int32_t i = 0; i < numOutputs && i < 8; ++i)
      attn_tensor_free(outputs[i]);
  for (attn_tensor *t : inputs)
    attn_tensor_free(t);
  return 0;
}
