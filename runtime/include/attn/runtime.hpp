//===- runtime.hpp - Thin C++ wrapper over the attnc runtime ----*- C++ -*-===//
//
// RAII handles over runtime.h. Fallible calls return `Expected<T>` (a value
// or a `Status`) or a plain `Status`; nothing throws. Example:
//
//   auto lib = attn::Library::open("libbert.so");
//   if (!lib) { fprintf(stderr, "%s\n", lib.status().message.c_str()); ... }
//   auto model = lib->model("bert_layer");
//   auto weights = attn::Weights::open("bert.safetensors");
//   if (auto st = model->bindWeights(*weights); !st) ...
//   auto outs = model->run({&x, &lengths}); // std::vector<attn::Tensor>
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_RUNTIME_HPP
#define ATTN_RUNTIME_HPP

#include "attn/runtime.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace attn {

// A status code with its message; true when the call succeeded.
struct Status {
  attn_status code = ATTN_OK;
  std::string message;

  bool ok() const { return code == ATTN_OK; }
  explicit operator bool() const { return ok(); }
  // The calling thread's last error as a Status.
  static Status fromLast(attn_status code) {
    return Status{code, code == ATTN_OK ? "" : attn_last_error()};
  }
};

// A value or the Status explaining why there is none.
template <typename T> class Expected {
public:
  Expected(T value) : value_(std::move(value)) {}
  Expected(Status status) : status_(std::move(status)) {}

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Status &status() const { return status_; }
  T &operator*() { return *value_; }
  const T &operator*() const { return *value_; }
  T *operator->() { return &*value_; }
  const T *operator->() const { return &*value_; }
  // Moves the value out (only when ok()).
  T take() { return std::move(*value_); }

private:
  std::optional<T> value_;
  Status status_;
};

namespace detail {
// A move-only owner of a C handle.
template <typename H, void (*Free)(H *)> class Handle {
public:
  Handle() = default;
  explicit Handle(H *h) : h_(h) {}
  Handle(Handle &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  Handle &operator=(Handle &&o) noexcept {
    if (this != &o) {
      Free(h_);
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  Handle(const Handle &) = delete;
  Handle &operator=(const Handle &) = delete;
  ~Handle() { Free(h_); }
  H *get() const { return h_; }

private:
  H *h_ = nullptr;
};
} // namespace detail

// A non-owning view of a tensor (for example a weight inside a Weights).
class TensorView {
public:
  TensorView(const attn_tensor *t = nullptr) : t_(t) {}
  const attn_tensor *get() const { return t_; }
  attn_dtype dtype() const { return attn_tensor_dtype(t_); }
  std::vector<int64_t> shape() const {
    const int64_t *d = attn_tensor_dims(t_);
    return std::vector<int64_t>(d, d + attn_tensor_rank(t_));
  }
  int64_t numel() const { return attn_tensor_numel(t_); }
  size_t nbytes() const { return attn_tensor_nbytes(t_); }
  template <typename T = void> const T *data() const {
    return static_cast<const T *>(attn_tensor_data(t_));
  }

protected:
  const attn_tensor *t_;
};

// An owned tensor handle.
class Tensor : public TensorView {
public:
  Tensor() = default;
  explicit Tensor(attn_tensor *t) : TensorView(t), h_(t) {}
  Tensor(Tensor &&o) noexcept
      : TensorView(std::exchange(o.t_, nullptr)), h_(std::move(o.h_)) {}
  Tensor &operator=(Tensor &&o) noexcept {
    h_ = std::move(o.h_);
    t_ = std::exchange(o.t_, nullptr);
    return *this;
  }

  // Zero-filled storage.
  static Expected<Tensor> create(attn_dtype dtype,
                                 const std::vector<int64_t> &shape) {
    attn_tensor *t;
    attn_status s =
        attn_tensor_create(dtype, (int32_t)shape.size(), shape.data(), &t);
    if (s != ATTN_OK)
      return Status::fromLast(s);
    return Tensor(t);
  }
  // Borrows `data`, which must outlive the tensor.
  static Expected<Tensor> wrap(attn_dtype dtype,
                               const std::vector<int64_t> &shape, void *data) {
    attn_tensor *t;
    attn_status s =
        attn_tensor_wrap(dtype, (int32_t)shape.size(), shape.data(), data, &t);
    if (s != ATTN_OK)
      return Status::fromLast(s);
    return Tensor(t);
  }
  static Expected<Tensor> readNpy(const std::string &path) {
    attn_tensor *t;
    attn_status s = attn_npy_read(path.c_str(), &t);
    if (s != ATTN_OK)
      return Status::fromLast(s);
    return Tensor(t);
  }
  Status writeNpy(const std::string &path) const {
    return Status::fromLast(attn_npy_write(path.c_str(), t_));
  }
  template <typename T = void> T *data() {
    return static_cast<T *>(attn_tensor_data(t_));
  }
  attn_tensor *get() const { return h_.get(); }

private:
  detail::Handle<attn_tensor, attn_tensor_free> h_;
};

// A mapped (or, with ATTN_WEIGHTS_COPY, copied) safetensors file.
class Weights {
public:
  static Expected<Weights> open(const std::string &path,
                                uint32_t flags = ATTN_WEIGHTS_MAP) {
    attn_weights *w;
    attn_status s = attn_weights_open_ex(path.c_str(), flags, &w);
    if (s != ATTN_OK)
      return Status::fromLast(s);
    return Weights(w);
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (int32_t i = 0; i < attn_weights_count(h_.get()); ++i)
      out.push_back(attn_weights_name(h_.get(), i));
    return out;
  }
  // The file's dtype of tensor `index` ("F32", "I64", ...), "" if out of
  // range. Only F32, F16, BF16, I32 and BOOL tensors can be viewed by get().
  std::string fileDtype(int32_t index) const {
    const char *d = attn_weights_file_dtype(h_.get(), index);
    return d ? d : "";
  }
  Expected<TensorView> get(const std::string &name) const {
    const attn_tensor *t;
    attn_status s = attn_weights_get(h_.get(), name.c_str(), &t);
    if (s != ATTN_OK)
      return Status::fromLast(s);
    return TensorView(t);
  }
  attn_weights *get() const { return h_.get(); }

  static Status
  write(const std::string &path,
        const std::vector<std::pair<std::string, TensorView>> &tensors) {
    std::vector<const char *> names;
    std::vector<const attn_tensor *> ts;
    for (const auto &[name, view] : tensors) {
      names.push_back(name.c_str());
      ts.push_back(view.get());
    }
    return Status::fromLast(attn_safetensors_write(
        path.c_str(), (int32_t)names.size(), names.data(), ts.data()));
  }

private:
  explicit Weights(attn_weights *w) : h_(w) {}
  detail::Handle<attn_weights, attn_weights_close> h_;
};

class Model;

// A loaded library of compiled models.
class Library {
public:
  static Expected<Library> open(const std::string &path) {
    attn_library *l;
    attn_status s = attn_library_open(path.c_str(), &l);
    if (s != ATTN_OK)
      return Status::fromLast(s);
    return Library(l);
  }
  static Expected<Library> fromDesc(const attn_library_desc *desc) {
    attn_library *l;
    attn_status s = attn_library_from_desc(desc, &l);
    if (s != ATTN_OK)
      return Status::fromLast(s);
    return Library(l);
  }
  const attn_library_desc *desc() const {
    return attn_library_get_desc(h_.get());
  }
  Status setNumThreads(int n) {
    return Status::fromLast(attn_library_set_num_threads(h_.get(), n));
  }
  // 0 = no limit; see attn_library_set_memory_limit.
  Status setMemoryLimit(uint64_t bytes) {
    return Status::fromLast(attn_library_set_memory_limit(h_.get(), bytes));
  }
  // An empty name picks the only model.
  inline Expected<Model> model(const std::string &name = "");
  attn_library *get() const { return h_.get(); }

private:
  explicit Library(attn_library *l) : h_(l) {}
  detail::Handle<attn_library, attn_library_close> h_;
};

// One model with its bound weights.
class Model {
public:
  explicit Model(attn_model *m) : h_(m) {}
  const attn_model_desc *desc() const { return attn_model_get_desc(h_.get()); }
  std::vector<const attn_tensor_desc *> inputs() const {
    return collect(attn_model_num_inputs, attn_model_input);
  }
  std::vector<const attn_tensor_desc *> params() const {
    return collect(attn_model_num_params, attn_model_param);
  }
  std::vector<const attn_tensor_desc *> outputs() const {
    return collect(attn_model_num_outputs, attn_model_output);
  }
  // "f32[B, S, 768]"
  std::string typeString(const attn_tensor_desc *t) const {
    int n = attn_model_format_type(h_.get(), t, nullptr, 0);
    if (n < 0)
      return "?";
    std::string s(n + 1, '\0');
    attn_model_format_type(h_.get(), t, &s[0], s.size());
    s.resize(n);
    return s;
  }
  Status bindWeights(const Weights &w) {
    return Status::fromLast(attn_model_bind_weights(h_.get(), w.get()));
  }
  Status bindParam(const std::string &name, TensorView t) {
    return Status::fromLast(
        attn_model_bind_param(h_.get(), name.c_str(), t.get()));
  }
  Expected<std::vector<Tensor>> run(const std::vector<TensorView> &inputs) {
    std::vector<const attn_tensor *> in;
    for (const TensorView &t : inputs)
      in.push_back(t.get());
    int32_t n = attn_model_num_outputs(h_.get());
    std::vector<attn_tensor *> out(n, nullptr);
    attn_status s =
        attn_model_run(h_.get(), (int32_t)in.size(), in.data(), n, out.data());
    if (s != ATTN_OK)
      return Status::fromLast(s);
    std::vector<Tensor> result;
    for (attn_tensor *t : out)
      result.emplace_back(t);
    return result;
  }
  Status runInto(const std::vector<TensorView> &inputs,
                 std::vector<Tensor> &outputs) {
    std::vector<const attn_tensor *> in;
    for (const TensorView &t : inputs)
      in.push_back(t.get());
    std::vector<attn_tensor *> out;
    for (Tensor &t : outputs)
      out.push_back(t.get());
    return Status::fromLast(attn_model_run_into(h_.get(), (int32_t)in.size(),
                                                in.data(), (int32_t)out.size(),
                                                out.data()));
  }
  attn_model *get() const { return h_.get(); }

private:
  std::vector<const attn_tensor_desc *>
  collect(int32_t (*count)(const attn_model *),
          const attn_tensor_desc *(*at)(const attn_model *, int32_t)) const {
    std::vector<const attn_tensor_desc *> v;
    for (int32_t i = 0; i < count(h_.get()); ++i)
      v.push_back(at(h_.get(), i));
    return v;
  }
  detail::Handle<attn_model, attn_model_close> h_;
};

inline Expected<Model> Library::model(const std::string &name) {
  attn_model *m;
  attn_status s =
      attn_model_open(h_.get(), name.empty() ? nullptr : name.c_str(), &m);
  if (s != ATTN_OK)
    return Status::fromLast(s);
  return Model(m);
}

} // namespace attn

#endif // ATTN_RUNTIME_HPP
