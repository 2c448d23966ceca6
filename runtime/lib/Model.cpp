//===- Model.cpp - Loading compiled libraries and running models ----------===//
//
// dlopen()s a library, validates its attn_library_v1 table, binds weights
// by name, checks inputs against the declared (possibly symbolic) shapes,
// allocates outputs and calls the entry with one halide_buffer_t per tensor.
// Halide errors are captured through the library's error handler.
//
//===----------------------------------------------------------------------===//
#include "Internal.h"

#include <cctype>
#include <HalideRuntime.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <map>
#include <mutex>
#include <shared_mutex>

using namespace attn::detail;

namespace {

//===-- Error capture -----------------------------------------------------===//
//
// The ABI's handler has no per-call context, so messages are routed by
// thread: the thread running a model captures into its own slot. Halide may
// report from a worker thread; such orphans go to a shared slot that a
// failing call takes when its own slot is empty. They are dropped when no
// call is running, so that no call reports an earlier call's message.

thread_local std::string *captureSlot = nullptr;

struct Orphans {
  std::mutex mutex;
  std::string messages;
  int running = 0; // calls inside a pipeline
};

Orphans &orphans() {
  static Orphans o;
  return o;
}

extern "C" void attnCaptureError(void *, const char *message) {
  if (!message)
    return;
  try {
    if (captureSlot) {
      captureSlot->append(message);
      return;
    }
    Orphans &o = orphans();
    std::lock_guard<std::mutex> lock(o.mutex);
    o.messages.append(message);
  } catch (...) {
    // Out of memory while reporting: the status code still says it failed.
  }
}

//===-- Loaded libraries --------------------------------------------------===//
//
// dlopen loads a file once however many handles open it, and its Halide
// runtime (error handler, thread pool) is global to that copy. So this state
// is kept per library table and shared by its handles: the error handler is
// installed when the first handle opens it, never while its models run, and
// set_num_threads, which stops the pool's workers, waits for the running
// calls (the gate holds new ones back meanwhile).

struct HalideState {
  std::mutex gate;
  std::shared_mutex running; // shared by runs, exclusive for set_num_threads

  std::shared_lock<std::shared_mutex> enterRun() {
    std::lock_guard<std::mutex> lock(gate);
    return std::shared_lock<std::shared_mutex>(running);
  }
};

std::shared_ptr<HalideState> halideState(const attn_library_desc *desc) {
  static std::mutex mutex;
  static std::map<const attn_library_desc *, std::weak_ptr<HalideState>> all;
  std::lock_guard<std::mutex> lock(mutex);
  for (auto it = all.begin(); it != all.end();)
    it = it->second.expired() ? all.erase(it) : std::next(it);
  std::weak_ptr<HalideState> &slot = all[desc];
  if (std::shared_ptr<HalideState> state = slot.lock())
    return state;
  if (desc->set_error_handler)
    desc->set_error_handler(attnCaptureError);
  auto state = std::make_shared<HalideState>();
  slot = state;
  return state;
}

struct LibraryImpl {
  void *handle = nullptr; // NULL for a library linked into the program
  const attn_library_desc *desc = nullptr;
  std::string path;
  std::shared_ptr<HalideState> halide;
  std::atomic<uint64_t> memoryLimit{0}; // 0: none
  // The model's memory entry (abi.h), or NULL when the table has none.
  const attn_model_memory *memory(const attn_model_desc *m) const {
    if (desc->abi_version < 2 || !desc->memory)
      return nullptr;
    return &desc->memory[m - desc->models];
  }
  ~LibraryImpl() {
    halide.reset(); // before the library (and its table) may go
    if (handle)
      dlclose(handle);
  }
};

//===-- Table validation --------------------------------------------------===//

std::string symName(const attn_model_desc &m, attn_dim d) {
  return m.sym_names[ATTN_DIM_SYMBOL(d)];
}

std::string formatType(const attn_model_desc &m, const attn_tensor_desc &t) {
  std::string s = attn_dtype_name(t.dtype);
  s += '[';
  for (int32_t i = 0; i < t.rank; ++i) {
    if (i)
      s += ", ";
    s += ATTN_DIM_IS_SYMBOLIC(t.dims[i]) ? symName(m, t.dims[i])
                                         : std::to_string(t.dims[i]);
  }
  return s + ']';
}

void validateModel(const std::string &path, const attn_model_desc &m,
                   int32_t index) {
  std::string where = path + ": model " + std::to_string(index);
  auto bad = [&](const std::string &what) { fail(ATTN_ERR_ABI, where + what); };
  if (!m.name)
    bad(" has no name");
  where = path + ": model '" + std::string(m.name) + "'";
  if (!m.entry)
    bad(" has no entry function");
  if (m.num_syms < 0 || (m.num_syms > 0 && !m.sym_names))
    bad(" has an invalid symbol table");
  for (int32_t s = 0; s < m.num_syms; ++s)
    if (!m.sym_names[s])
      bad(" has an unnamed symbol " + std::to_string(s));
  if (m.num_tensors < 0 || (m.num_tensors > 0 && !m.tensors))
    bad(" has an invalid tensor table");
  // Inputs (ATTN_INPUT and ATTN_INOUT), then params, then outputs.
  auto order = [](int role) { return role == ATTN_INOUT ? ATTN_INPUT : role; };
  int lastRole = ATTN_INPUT;
  for (int32_t i = 0; i < m.num_tensors; ++i) {
    const attn_tensor_desc &t = m.tensors[i];
    std::string tw = " tensor " + std::to_string(i);
    if (!t.name)
      bad(tw + " has no name");
    tw = " tensor '" + std::string(t.name) + "'";
    if (t.role < ATTN_INPUT || t.role > ATTN_INOUT ||
        order(t.role) < lastRole)
      bad(tw + " has an invalid role or is out of order (inputs, params, "
               "outputs)");
    lastRole = order(t.role);
    if (!validDtype(t.dtype))
      bad(tw + " has invalid dtype " + std::to_string((int)t.dtype));
    if (t.rank < 0 || t.rank > ATTN_MAX_RANK || (t.rank > 0 && !t.dims))
      bad(tw + " has an invalid rank or dims");
    // A symbolic dim d names symbol -d-1, so it must lie in [-num_syms, -1];
    // checked before ATTN_DIM_SYMBOL, which would overflow on INT64_MIN.
    for (int32_t d = 0; d < t.rank; ++d)
      if (t.dims[d] < -(int64_t)m.num_syms)
        bad(tw + " dim " + std::to_string(d) + " names symbol " +
            std::to_string(-(t.dims[d] + 1)) + " of " +
            std::to_string(m.num_syms));
  }
}

// Checks a size program (abi.h) by running its stack depths: valid ops,
// symbols in range, no underflow, one value left.
void validateSizeExpr(const std::string &where, const attn_size_expr &e,
                      int32_t numSyms) {
  if (e.len < 0 || e.len > (1 << 20) || (e.len > 0 && !e.code))
    fail(ATTN_ERR_ABI, where + " has an invalid size program");
  int64_t depth = 0;
  for (int32_t i = 0; i < e.len; ++i) {
    int64_t op = e.code[2 * i], arg = e.code[2 * i + 1];
    int pops = op == ATTN_X_CONST || op == ATTN_X_SYM ? 0
               : op == ATTN_X_NOT                     ? 1
               : op == ATTN_X_SELECT                  ? 3
                                                      : 2;
    if (op < ATTN_X_CONST || op > ATTN_X_SELECT ||
        (op == ATTN_X_SYM && (arg < 0 || arg >= numSyms)) || depth < pops)
      fail(ATTN_ERR_ABI, where + ": size program step " + std::to_string(i) +
                             " is invalid (op " + std::to_string(op) +
                             ", arg " + std::to_string(arg) + ")");
    depth += 1 - pops;
  }
  if (e.len > 0 && depth != 1)
    fail(ATTN_ERR_ABI, where + ": size program leaves " +
                           std::to_string(depth) + " values");
}

void validateLibrary(const std::string &path, const attn_library_desc *d) {
  if (!d)
    fail(ATTN_ERR_ABI, path + ": attn_library_v1() returned NULL");
  if (d->abi_version != ATTN_ABI_VERSION && d->abi_version != 1)
    fail(ATTN_ERR_ABI, path + ": ABI version " +
                           std::to_string(d->abi_version) +
                           ", but this runtime reads versions 1 and " +
                           std::to_string(ATTN_ABI_VERSION) +
                           " (recompile the model with a matching attnc)");
  if (d->num_models < 0 || (d->num_models > 0 && !d->models))
    fail(ATTN_ERR_ABI, path + ": invalid model table");
  for (int32_t i = 0; i < d->num_models; ++i)
    validateModel(path, d->models[i], i);
  if (d->abi_version >= 2 && d->memory)
    for (int32_t i = 0; i < d->num_models; ++i)
      validateSizeExpr(path + ": model '" + d->models[i].name + "' scratch",
                       d->memory[i].scratch, d->models[i].num_syms);
}

std::shared_ptr<LibraryImpl> adopt(std::unique_ptr<LibraryImpl> lib) {
  validateLibrary(lib->path, lib->desc);
  lib->halide = halideState(lib->desc);
  return std::shared_ptr<LibraryImpl>(std::move(lib));
}

} // namespace

struct attn_library {
  std::shared_ptr<LibraryImpl> impl;
};

struct attn_model {
  std::shared_ptr<LibraryImpl> lib;
  const attn_model_desc *desc = nullptr;
  int32_t numInputs = 0, numParams = 0, numOutputs = 0;
  std::vector<attn_tensor> params;
  std::vector<char> bound; // per param

  const attn_tensor_desc &input(int32_t i) const { return desc->tensors[i]; }
  const attn_tensor_desc &param(int32_t i) const {
    return desc->tensors[numInputs + i];
  }
  const attn_tensor_desc &output(int32_t i) const {
    return desc->tensors[numInputs + numParams + i];
  }
};

namespace {

const char *weightName(const attn_tensor_desc &p) {
  return p.weight_name ? p.weight_name : p.name;
}

std::string paramLabel(const attn_tensor_desc &p) {
  return "param " + quote(p.name) + " (weights name " + quote(weightName(p)) +
         ")";
}

// Symbolic sizes bound so far, with who bound them (for messages).
struct Bindings {
  std::vector<int64_t> value;
  std::vector<std::string> binder;
  explicit Bindings(int32_t n) : value(n, -1), binder(n) {}
};

// Checks `t` against `d`, binding symbolic sizes. `label` names the tensor
// in messages ("input 'x'"), `binder` is what later conflicts cite ("'x'").
void bindTensor(const attn_model_desc &m, const attn_tensor_desc &d,
                const attn_tensor &t, const std::string &label,
                const std::string &binder, Bindings &b) {
  std::string want = formatType(m, d);
  if (t.dtype != d.dtype)
    fail(ATTN_ERR_DTYPE,
         label + ": got " + formatShape(t) + " but the model expects " + want);
  if ((int32_t)t.dims.size() != d.rank)
    fail(ATTN_ERR_SHAPE, label + ": got rank " + std::to_string(t.dims.size()) +
                             " " + formatShape(t) +
                             " but the model expects rank " +
                             std::to_string(d.rank) + " " + want);
  for (int32_t i = 0; i < d.rank; ++i) {
    int64_t got = t.dims[i];
    if (got > INT32_MAX)
      fail(ATTN_ERR_SHAPE, label + " dim " + std::to_string(i) + " is " +
                               std::to_string(got) +
                               ", above the 32-bit extent limit");
    if (!ATTN_DIM_IS_SYMBOLIC(d.dims[i])) {
      if (got != d.dims[i])
        fail(ATTN_ERR_SHAPE, label + " dim " + std::to_string(i) + " is " +
                                 std::to_string(got) +
                                 " but the model expects " +
                                 std::to_string(d.dims[i]) + " (" + want +
                                 "; got " + formatShape(t) + ")");
      continue;
    }
    int k = ATTN_DIM_SYMBOL(d.dims[i]);
    std::string sym = m.sym_names[k];
    if (b.value[k] < 0) {
      b.value[k] = got;
      b.binder[k] = binder;
    } else if (b.value[k] != got) {
      fail(ATTN_ERR_SHAPE, label + " dim " + std::to_string(i) + " is " + sym +
                               "=" + std::to_string(got) + " but " +
                               b.binder[k] + " bound " + sym + "=" +
                               std::to_string(b.value[k]));
    }
  }
}

// Symbols named as sums ("T+1", "P+S": derived sizes, see abi.h) take the
// sum of their terms; one that an input bound as well must agree.
void bindDerived(const attn_model_desc &m, Bindings &b) {
  for (int32_t k = 0; k < m.num_syms; ++k) {
    std::string name = m.sym_names[k];
    if (name.find('+') == std::string::npos)
      continue;
    int64_t sum = 0;
    size_t from = 0;
    while (true) {
      size_t to = name.find('+', from);
      std::string term = name.substr(from, to == std::string::npos ? to : to - from);
      int64_t v = -1;
      if (!term.empty() && std::isdigit((unsigned char)term[0])) {
        v = std::strtoll(term.c_str(), nullptr, 10);
      } else {
        for (int32_t j = 0; j < m.num_syms; ++j)
          if (term == m.sym_names[j])
            v = b.value[j];
      }
      if (v < 0)
        fail(ATTN_ERR_SHAPE, "size " + name + " needs " + term +
                                 ", which no input binds");
      sum += v;
      if (to == std::string::npos)
        break;
      from = to + 1;
    }
    if (b.value[k] >= 0 && b.value[k] != sum)
      fail(ATTN_ERR_SHAPE, b.binder[k] + " has " + name + "=" +
                               std::to_string(b.value[k]) + " but " + name +
                               " is " + std::to_string(sum));
    b.value[k] = sum;
    if (b.binder[k].empty())
      b.binder[k] = "the sizes it sums";
  }
}

// A tensor's data must be aligned to its element size for the pipeline;
// safetensors offsets need not be, so such tensors are copied.
attn_tensor alignedView(const attn_tensor &t, const std::string &what) {
  if ((uintptr_t)t.data % attn_dtype_size(t.dtype) == 0)
    return t;
  attn_tensor copy = makeOwned(t.dtype, t.dims, what);
  std::memcpy(copy.data, t.data, nbytes(t));
  return copy;
}

// "w.safetensors: tensor 'h.0.wq' (param 'wq')", for messages on a param
// bound from a file.
std::string fileLabel(const attn_weights &w, const attn_weights::Entry &e,
                      const attn_tensor_desc &p) {
  return w.path + ": tensor " + quote(e.name) + " (param " + quote(p.name) +
         ")";
}

void bindWeights(attn_model &m, const attn_weights &w) {
  std::vector<const attn_weights::Entry *> found(m.numParams, nullptr);
  std::string missing;
  int numMissing = 0;
  for (int32_t i = 0; i < m.numParams; ++i) {
    auto it = w.index.find(weightName(m.param(i)));
    if (it != w.index.end()) {
      found[i] = &w.entries[it->second];
    } else {
      missing += (numMissing++ ? ", " : "") + paramLabel(m.param(i));
    }
  }
  if (numMissing)
    fail(ATTN_ERR_NOT_FOUND,
         w.path + " lacks " +
             (numMissing > 1 ? "weights for " : "the weight for ") + missing +
             " of model " + quote(m.desc->name));
  Bindings b(m.desc->num_syms);
  for (int32_t i = 0; i < m.numParams; ++i) {
    const attn_tensor_desc &p = m.param(i);
    if (!found[i]->viewable)
      fail(ATTN_ERR_DTYPE,
           w.path + ": tensor " + quote(found[i]->name) + " is " +
               found[i]->fileDtype + " in the file, the model expects " +
               formatType(*m.desc, p) + " for param " + quote(p.name));
    const attn_tensor &t = found[i]->tensor;
    bool sameRank = (int32_t)t.dims.size() == p.rank;
    bool sameStatic = sameRank && t.dtype == p.dtype;
    for (int32_t d = 0; sameStatic && d < p.rank; ++d)
      sameStatic = ATTN_DIM_IS_SYMBOLIC(p.dims[d]) || p.dims[d] == t.dims[d];
    if (!sameStatic)
      fail(t.dtype != p.dtype ? ATTN_ERR_DTYPE : ATTN_ERR_SHAPE,
           w.path + ": tensor " + quote(found[i]->name) + " is " +
               formatShape(t) + " in the file, the model expects " +
               formatType(*m.desc, p) + " for param " + quote(p.name));
    bindTensor(*m.desc, p, t, fileLabel(w, *found[i], p),
               "param " + quote(p.name), b);
  }
  // Tensors the model does not use are ignored, as Hugging Face's
  // from_pretrained ignores unexpected keys: a whole checkpoint binds to a
  // model of one of its layers, and buffers a checkpoint carries (GPT-2's
  // attn.bias, Llama's rotary_emb.inv_freq, BERT's I64 position_ids) do no
  // harm, whatever their dtype. A misspelt weights name still fails, as a
  // missing weight.
  std::vector<attn_tensor> bound;
  for (int32_t i = 0; i < m.numParams; ++i)
    bound.push_back(
        alignedView(found[i]->tensor, fileLabel(w, *found[i], m.param(i))));
  m.params = std::move(bound);
  m.bound.assign(m.numParams, 1);
}

halide_type_t halideType(attn_dtype d) {
  switch (d) {
  case ATTN_F32:
    return halide_type_t(halide_type_float, 32);
  case ATTN_F16:
    return halide_type_t(halide_type_float, 16);
  case ATTN_BF16:
    return halide_type_t(halide_type_bfloat, 16);
  case ATTN_I32:
    return halide_type_t(halide_type_int, 32);
  case ATTN_BOOL:
    return halide_type_t(halide_type_uint, 8);
  }
  return halide_type_t();
}

// Saturating arithmetic: sizes past INT64_MAX stay there.
int64_t addSat(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_add_overflow(a, b, &r) ? (b < 0 ? INT64_MIN : INT64_MAX)
                                          : r;
}
int64_t subSat(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_sub_overflow(a, b, &r) ? (b > 0 ? INT64_MIN : INT64_MAX)
                                          : r;
}
int64_t mulSat(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_mul_overflow(a, b, &r)
             ? ((a < 0) != (b < 0) ? INT64_MIN : INT64_MAX)
             : r;
}

// Evaluates a validated size program (abi.h) for the symbol values `syms`
// in saturating arithmetic; -1 when it is empty or a symbol is unbound.
int64_t evalSize(const attn_size_expr &e, const std::vector<int64_t> &syms) {
  if (e.len == 0)
    return -1;
  std::vector<int64_t> st;
  for (int32_t i = 0; i < e.len; ++i) {
    int64_t op = e.code[2 * i], arg = e.code[2 * i + 1];
    if (op == ATTN_X_CONST || op == ATTN_X_SYM) {
      if (op == ATTN_X_SYM && syms[arg] < 0)
        return -1;
      st.push_back(op == ATTN_X_CONST ? arg : syms[arg]);
      continue;
    }
    if (op == ATTN_X_NOT) {
      st.back() = !st.back();
      continue;
    }
    if (op == ATTN_X_SELECT) {
      int64_t f = st.back();
      st.pop_back();
      int64_t t = st.back();
      st.pop_back();
      st.back() = st.back() ? t : f;
      continue;
    }
    int64_t b = st.back(), r = 0;
    st.pop_back();
    int64_t a = st.back();
    switch (op) {
    case ATTN_X_ADD:
      r = addSat(a, b);
      break;
    case ATTN_X_SUB:
      r = subSat(a, b);
      break;
    case ATTN_X_MUL:
      r = mulSat(a, b);
      break;
    case ATTN_X_DIV:
    case ATTN_X_MOD: {
      if (b == 0 || (a == INT64_MIN && b == -1)) {
        r = 0;
        break;
      }
      int64_t q = a / b, m = a % b;
      if (m != 0 && ((m < 0) != (b < 0))) { // round to -infinity
        --q;
        m += b;
      }
      r = op == ATTN_X_DIV ? q : m;
      break;
    }
    case ATTN_X_MIN:
      r = std::min(a, b);
      break;
    case ATTN_X_MAX:
      r = std::max(a, b);
      break;
    case ATTN_X_LT:
      r = a < b;
      break;
    case ATTN_X_LE:
      r = a <= b;
      break;
    case ATTN_X_EQ:
      r = a == b;
      break;
    case ATTN_X_NE:
      r = a != b;
      break;
    case ATTN_X_AND:
      r = a && b;
      break;
    case ATTN_X_OR:
      r = a || b;
      break;
    }
    st.back() = r;
  }
  return std::max<int64_t>(st.back(), 0);
}

int64_t bytesOf(attn_dtype dtype, const std::vector<int64_t> &dims) {
  int64_t n = (int64_t)attn_dtype_size(dtype);
  for (int64_t d : dims)
    n = mulSat(n, d);
  return n;
}

// Whether the library was compiled with Halide's large_buffers (a feature
// of its target string "x86-64-linux-...-large_buffers-...").
bool hasLargeBuffers(const attn_library_desc &d) {
  std::string target = d.target ? d.target : "";
  for (size_t at = 0; at <= target.size();) {
    size_t end = std::min(target.find('-', at), target.size());
    if (target.compare(at, end - at, "large_buffers") == 0)
      return true;
    at = end + 1;
  }
  return false;
}

// Without large_buffers the pipeline refuses buffers of 2^31 bytes or more:
// said before anything is allocated, with the way out.
void checkBufferSizes(const attn_model &m, const attn_tensor *const *inputs,
                      const std::vector<std::vector<int64_t>> &outDims) {
  if (hasLargeBuffers(*m.lib->desc))
    return;
  auto check = [&](attn_dtype dtype, const std::vector<int64_t> &dims,
                   const std::string &label) {
    int64_t bytes = bytesOf(dtype, dims);
    if (bytes > INT32_MAX)
      fail(ATTN_ERR_UNSUPPORTED,
           "model " + quote(m.desc->name) + ": " + label + " " +
               formatShape(dtype, dims.data(), dims.size()) + " is " +
               std::to_string(bytes) +
               " bytes, over the 2^31 - 1 of a library compiled without "
               "large_buffers (compile it with attnc "
               "--target=host-large_buffers)");
  };
  for (int32_t i = 0; i < m.numInputs; ++i)
    check(inputs[i]->dtype, inputs[i]->dims, "input " + quote(m.input(i).name));
  for (int32_t i = 0; i < m.numParams; ++i)
    check(m.params[i].dtype, m.params[i].dims,
          "param " + quote(m.param(i).name));
  for (int32_t i = 0; i < m.numOutputs; ++i)
    check(m.output(i).dtype, outDims[i], "output " + quote(m.output(i).name));
}

// Fails with ATTN_ERR_RESOURCE when the call's inputs, outputs and scratch
// exceed the library's memory limit.
void checkMemoryLimit(const attn_model &m, const attn_tensor *const *inputs,
                      const std::vector<std::vector<int64_t>> &outDims,
                      const Bindings &b) {
  uint64_t limit = m.lib->memoryLimit.load();
  if (limit == 0)
    return;
  int64_t in = 0, out = 0, scratch = -1, sum; // -1: unknown
  for (int32_t i = 0; i < m.numInputs; ++i)
    in = addSat(in, (int64_t)nbytes(*inputs[i]));
  for (int32_t i = 0; i < m.numOutputs; ++i)
    out = addSat(out, bytesOf(m.output(i).dtype, outDims[i]));
  const attn_model_memory *mem = m.lib->memory(m.desc);
  if (mem)
    scratch = evalSize(mem->scratch, b.value);
  sum = addSat(addSat(in, out), std::max<int64_t>(scratch, 0));
  if ((uint64_t)sum <= limit)
    return;
  const attn_model_desc &md = *m.desc;
  std::string sizes;
  for (int32_t k = 0; k < md.num_syms; ++k)
    sizes += (k ? ", " : "") + std::string(md.sym_names[k]) + "=" +
             std::to_string(b.value[k]);
  fail(ATTN_ERR_RESOURCE,
       "model " + quote(md.name) + ": the call needs " + std::to_string(sum) +
           " bytes (inputs " + std::to_string(in) + ", outputs " +
           std::to_string(out) + ", scratch " +
           (scratch < 0 ? std::string("unknown") : std::to_string(scratch)) +
           ")" + (sizes.empty() ? "" : " for " + sizes) +
           ", above the memory limit of " + std::to_string(limit) + " bytes");
}

// Fills `b` and its `dims` (innermost first in Halide: Halide dim 0 is the
// last, contiguous dim of the row-major tensor).
void makeBuffer(const attn_tensor &t, const std::string &label,
                halide_buffer_t &b, halide_dimension_t *dims) {
  static uint8_t emptyData[64];
  if ((uintptr_t)t.data % attn_dtype_size(t.dtype) != 0)
    fail(ATTN_ERR_INVALID_ARGUMENT,
         label + ": data is not aligned to its " +
             std::to_string(attn_dtype_size(t.dtype)) + "-byte elements");
  b = halide_buffer_t{};
  b.host = t.data ? (uint8_t *)t.data : emptyData;
  b.type = halideType(t.dtype);
  b.dimensions = (int32_t)t.dims.size();
  b.dim = dims;
  int64_t stride = 1;
  for (int32_t i = 0; i < b.dimensions; ++i) {
    int64_t extent = t.dims[b.dimensions - 1 - i];
    if (extent > INT32_MAX || stride > INT32_MAX)
      fail(ATTN_ERR_SHAPE, label + ": " + formatShape(t) +
                               " exceeds Halide's 32-bit extents/strides");
    dims[i] = halide_dimension_t(0, (int32_t)extent, (int32_t)stride);
    stride *= extent ? extent : 1;
  }
}

// Calls the model's entry, with the library's Halide messages for this call
// appended to `captured`.
int callEntry(const attn_model &m, std::vector<void *> &args,
              std::string &captured) {
  std::shared_lock<std::shared_mutex> running = m.lib->halide->enterRun();
  Orphans &o = orphans();
  {
    std::lock_guard<std::mutex> lock(o.mutex);
    ++o.running;
  }
  std::string *previous = captureSlot;
  captureSlot = &captured;
  int rc = m.desc->entry(args.data());
  captureSlot = previous;
  std::lock_guard<std::mutex> lock(o.mutex);
  if (rc != 0 && captured.empty())
    captured.swap(o.messages);
  if (--o.running == 0)
    o.messages.clear();
  return rc;
}

void run(attn_model &m, int32_t numInputs, const attn_tensor *const *inputs,
         int32_t numOutputs, std::vector<attn_tensor> &outs, bool allocate) {
  const attn_model_desc &md = *m.desc;
  std::string modelName = quote(md.name);
  if (numInputs != m.numInputs || (numInputs > 0 && !inputs)) {
    std::string names;
    for (int32_t i = 0; i < m.numInputs; ++i)
      names += (i ? ", " : "") + std::string(m.input(i).name);
    fail(ATTN_ERR_INVALID_ARGUMENT,
         "model " + modelName + " takes " + std::to_string(m.numInputs) +
             (m.numInputs == 1 ? " input" : " inputs") + " (" + names +
             "), got " + std::to_string(numInputs));
  }
  if (numOutputs != m.numOutputs)
    fail(ATTN_ERR_INVALID_ARGUMENT,
         "model " + modelName + " has " + std::to_string(m.numOutputs) +
             (m.numOutputs == 1 ? " output" : " outputs") + ", got room for " +
             std::to_string(numOutputs));
  Bindings b(md.num_syms);
  for (int32_t i = 0; i < m.numParams; ++i) {
    const attn_tensor_desc &p = m.param(i);
    if (!m.bound[i])
      fail(ATTN_ERR_NOT_FOUND, "model " + modelName + ": " + paramLabel(p) +
                                   " is not bound; bind the weights first");
    bindTensor(md, p, m.params[i], paramLabel(p), "param " + quote(p.name), b);
  }
  for (int32_t i = 0; i < m.numInputs; ++i) {
    const attn_tensor_desc &d = m.input(i);
    if (!inputs[i])
      fail(ATTN_ERR_INVALID_ARGUMENT, "input " + quote(d.name) + " is NULL");
    bindTensor(md, d, *inputs[i], "input " + quote(d.name), quote(d.name), b);
  }
  bindDerived(md, b);
  std::vector<std::vector<int64_t>> outDims(m.numOutputs);
  for (int32_t i = 0; i < m.numOutputs; ++i) {
    const attn_tensor_desc &d = m.output(i);
    std::vector<int64_t> &dims = outDims[i];
    dims.resize(d.rank);
    for (int32_t k = 0; k < d.rank; ++k) {
      if (!ATTN_DIM_IS_SYMBOLIC(d.dims[k])) {
        dims[k] = d.dims[k];
        continue;
      }
      int s = ATTN_DIM_SYMBOL(d.dims[k]);
      if (b.value[s] < 0)
        fail(ATTN_ERR_NOT_FOUND,
             "output " + quote(d.name) + " dim " + std::to_string(k) + " is " +
                 md.sym_names[s] + ", which no input or param determines");
      dims[k] = b.value[s];
    }
  }
  checkBufferSizes(m, inputs, outDims);
  checkMemoryLimit(m, inputs, outDims, b);
  for (int32_t i = 0; i < m.numOutputs; ++i) {
    const attn_tensor_desc &d = m.output(i);
    std::vector<int64_t> &dims = outDims[i];
    if (allocate) {
      outs.push_back(
          makeOwned(d.dtype, std::move(dims),
                    "model " + modelName + ": output " + quote(d.name)));
      continue;
    }
    const attn_tensor &o = outs[i];
    if (o.dtype != d.dtype || o.dims != dims)
      fail(o.dtype != d.dtype ? ATTN_ERR_DTYPE : ATTN_ERR_SHAPE,
           "output " + quote(d.name) + ": got " + formatShape(o) +
               " but the model produces " +
               formatShape(d.dtype, dims.data(), dims.size()) +
               " for these inputs");
  }

  // Every output empty (a size of 0, as PyTorch allows): nothing to compute,
  // and the pipeline is not called (its clamped reads of empty inputs would
  // fail its bounds checks).
  bool allEmpty = m.numOutputs > 0;
  for (const attn_tensor &o : outs)
    allEmpty &= std::find(o.dims.begin(), o.dims.end(), 0) != o.dims.end();
  if (allEmpty)
    return;

  // One halide_buffer_t per tensor, in table order.
  int32_t n = md.num_tensors;
  std::vector<halide_buffer_t> bufs(n);
  std::vector<halide_dimension_t> dims((size_t)n * ATTN_MAX_RANK);
  std::vector<void *> args(n);
  for (int32_t i = 0; i < n; ++i) {
    const attn_tensor *t;
    std::string label;
    if (i < m.numInputs) {
      t = inputs[i];
      label = "input " + quote(md.tensors[i].name);
    } else if (i < m.numInputs + m.numParams) {
      t = &m.params[i - m.numInputs];
      label = paramLabel(md.tensors[i]);
    } else {
      t = &outs[i - m.numInputs - m.numParams];
      label = "output " + quote(md.tensors[i].name);
    }
    makeBuffer(*t, label, bufs[i], &dims[(size_t)i * ATTN_MAX_RANK]);
    args[i] = &bufs[i];
  }

  std::string captured;
  int rc = callEntry(m, args, captured);
  if (rc == 0)
    return;
  while (!captured.empty() &&
         (captured.back() == '\n' || captured.back() == ' '))
    captured.pop_back();
  std::string message =
      captured.empty() ? "the library reported no message" : captured;
  // A size of 0 that leaves an output non-empty (attention over no keys)
  // fails inside the pipeline, which needs the sizes it reduces over to be
  // at least 1: say so, with the pipeline's own message after.
  std::string zero;
  for (int32_t k = 0; k < md.num_syms; ++k)
    if (b.value[k] == 0)
      zero += std::string(zero.empty() ? "" : ", ") + md.sym_names[k] +
              "=0 (from " + b.binder[k] + ")";
  if (!zero.empty())
    fail(ATTN_ERR_SHAPE,
         "model " + modelName + ": " + zero +
             " with an output that is not empty; sizes of 0 are supported "
             "only when every output is empty (the pipeline failed with "
             "Halide error code " +
             std::to_string(rc) + ": " + message + ")");
  fail(ATTN_ERR_PIPELINE, "model " + modelName + " failed (Halide error code " +
                              std::to_string(rc) + "): " + message);
}

std::unique_ptr<LibraryImpl> dlopenLibrary(const char *pathC) {
  if (!pathC || !*pathC)
    fail(ATTN_ERR_INVALID_ARGUMENT, "attn_library_open: empty path");
  auto lib = std::make_unique<LibraryImpl>();
  lib->path = pathC;
  // dlopen searches the library path for names without '/'; a user naming
  // a file means that file.
  std::string open =
      lib->path.find('/') == std::string::npos ? "./" + lib->path : lib->path;
  dlerror();
  lib->handle = dlopen(open.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib->handle) {
    const char *err = dlerror();
    fail(ATTN_ERR_IO, "cannot load " + lib->path + ": " +
                          (err ? err : "unknown dlopen error"));
  }
  using EntryFn = const attn_library_desc *(*)();
  auto fn = (EntryFn)dlsym(lib->handle, "attn_library_v1");
  if (!fn)
    fail(ATTN_ERR_ABI, lib->path + " does not export attn_library_v1 (not "
                                   "a library compiled by attnc?)");
  lib->desc = fn();
  return lib;
}

int32_t countRole(const attn_model_desc &m, attn_tensor_role role) {
  int32_t n = 0;
  for (int32_t i = 0; i < m.num_tensors; ++i)
    n += m.tensors[i].role == role ||
         (role == ATTN_INPUT && m.tensors[i].role == ATTN_INOUT);
  return n;
}

} // namespace

//===-- C API: libraries --------------------------------------------------===//

attn_status attn_library_open(const char *path, attn_library **out) {
  return guarded([&] {
    if (!out)
      fail(ATTN_ERR_INVALID_ARGUMENT, "attn_library_open: out is NULL");
    *out = nullptr;
    auto impl = adopt(dlopenLibrary(path));
    *out = new attn_library{std::move(impl)};
    return ATTN_OK;
  });
}

attn_status attn_library_from_desc(const attn_library_desc *desc,
                                   attn_library **out) {
  return guarded([&] {
    if (!out)
      fail(ATTN_ERR_INVALID_ARGUMENT, "attn_library_from_desc: out is NULL");
    *out = nullptr;
    auto lib = std::make_unique<LibraryImpl>();
    lib->path = "<linked library>";
    lib->desc = desc;
    *out = new attn_library{adopt(std::move(lib))};
    return ATTN_OK;
  });
}

void attn_library_close(attn_library *library) { delete library; }

const attn_library_desc *attn_library_get_desc(const attn_library *library) {
  return library ? library->impl->desc : nullptr;
}

attn_status attn_library_set_num_threads(attn_library *library, int n) {
  return guarded([&] {
    if (!library || n < 0)
      fail(ATTN_ERR_INVALID_ARGUMENT,
           "attn_library_set_num_threads: NULL library or negative count");
    if (!library->impl->desc->set_num_threads)
      fail(ATTN_ERR_UNSUPPORTED,
           library->impl->path + " does not support setting a thread count");
    HalideState &state = *library->impl->halide;
    std::lock_guard<std::mutex> gate(state.gate);
    std::unique_lock<std::shared_mutex> alone(state.running);
    library->impl->desc->set_num_threads(n);
    return ATTN_OK;
  });
}

attn_status attn_library_set_memory_limit(attn_library *library,
                                          uint64_t bytes) {
  return guarded([&] {
    if (!library)
      fail(ATTN_ERR_INVALID_ARGUMENT,
           "attn_library_set_memory_limit: NULL library");
    library->impl->memoryLimit.store(bytes);
    return ATTN_OK;
  });
}

//===-- C API: models -----------------------------------------------------===//

attn_status attn_model_open(attn_library *library, const char *name,
                            attn_model **out) {
  return guarded([&] {
    if (!library || !out)
      fail(ATTN_ERR_INVALID_ARGUMENT, "attn_model_open: NULL argument");
    *out = nullptr;
    const attn_library_desc &d = *library->impl->desc;
    std::string all;
    for (int32_t i = 0; i < d.num_models; ++i)
      all += (i ? ", " : "") + std::string(d.models[i].name);
    const attn_model_desc *found = nullptr;
    if (!name) {
      if (d.num_models != 1)
        fail(ATTN_ERR_INVALID_ARGUMENT,
             library->impl->path + " holds " + std::to_string(d.num_models) +
                 " models (" + all + "); name the one to run");
      found = &d.models[0];
    } else {
      for (int32_t i = 0; i < d.num_models && !found; ++i)
        if (std::strcmp(d.models[i].name, name) == 0)
          found = &d.models[i];
      if (!found)
        fail(ATTN_ERR_NOT_FOUND, library->impl->path + " has no model " +
                                     quote(name) + " (models: " + all + ")");
    }
    auto m = std::make_unique<attn_model>();
    m->lib = library->impl;
    m->desc = found;
    m->numInputs = countRole(*found, ATTN_INPUT);
    m->numParams = countRole(*found, ATTN_PARAM);
    m->numOutputs = countRole(*found, ATTN_OUTPUT);
    m->params.resize(m->numParams);
    m->bound.assign(m->numParams, 0);
    *out = m.release();
    return ATTN_OK;
  });
}

void attn_model_close(attn_model *model) { delete model; }

const attn_model_desc *attn_model_get_desc(const attn_model *model) {
  return model ? model->desc : nullptr;
}

int32_t attn_model_num_inputs(const attn_model *m) {
  return m ? m->numInputs : 0;
}
int32_t attn_model_num_params(const attn_model *m) {
  return m ? m->numParams : 0;
}
int32_t attn_model_num_outputs(const attn_model *m) {
  return m ? m->numOutputs : 0;
}

const attn_tensor_desc *attn_model_input(const attn_model *m, int32_t i) {
  return m && i >= 0 && i < m->numInputs ? &m->input(i) : nullptr;
}
const attn_tensor_desc *attn_model_param(const attn_model *m, int32_t i) {
  return m && i >= 0 && i < m->numParams ? &m->param(i) : nullptr;
}
const attn_tensor_desc *attn_model_output(const attn_model *m, int32_t i) {
  return m && i >= 0 && i < m->numOutputs ? &m->output(i) : nullptr;
}

int32_t attn_model_input_index(const attn_model *m, const char *name) {
  if (!m || !name)
    return -1;
  for (int32_t i = 0; i < m->numInputs; ++i)
    if (std::strcmp(m->input(i).name, name) == 0)
      return i;
  return -1;
}

int attn_model_format_type(const attn_model *m, const attn_tensor_desc *t,
                           char *buf, size_t size) {
  if (!m || !t)
    return -1;
  try {
    std::string s = formatType(*m->desc, *t);
    if (buf && size)
      std::snprintf(buf, size, "%s", s.c_str());
    return (int)s.size();
  } catch (...) {
    return -1;
  }
}

attn_status attn_model_scratch_bytes(const attn_model *model,
                                     int32_t num_sizes, const int64_t *sizes,
                                     int64_t *out) {
  return guarded([&] {
    if (!model || !out || (num_sizes > 0 && !sizes))
      fail(ATTN_ERR_INVALID_ARGUMENT, "attn_model_scratch_bytes: NULL argument");
    if (num_sizes != model->desc->num_syms)
      fail(ATTN_ERR_INVALID_ARGUMENT,
           "model " + quote(model->desc->name) + " has " +
               std::to_string(model->desc->num_syms) + " sizes, got " +
               std::to_string(num_sizes));
    const attn_model_memory *mem = model->lib->memory(model->desc);
    *out = mem ? evalSize(mem->scratch,
                          std::vector<int64_t>(sizes, sizes + num_sizes))
               : -1;
    return ATTN_OK;
  });
}

attn_status attn_model_bind_weights(attn_model *model,
                                    const attn_weights *weights) {
  return guarded([&] {
    if (!model || !weights)
      fail(ATTN_ERR_INVALID_ARGUMENT, "attn_model_bind_weights: NULL argument");
    namingOutOfMemory(weights->path + ": binding to model " +
                          quote(model->desc->name),
                      [&] { bindWeights(*model, *weights); });
    return ATTN_OK;
  });
}

attn_status attn_model_bind_param(attn_model *model, const char *name,
                                  const attn_tensor *tensor) {
  return guarded([&] {
    if (!model || !name || !tensor)
      fail(ATTN_ERR_INVALID_ARGUMENT, "attn_model_bind_param: NULL argument");
    for (int32_t i = 0; i < model->numParams; ++i) {
      const attn_tensor_desc &p = model->param(i);
      if (std::strcmp(p.name, name) != 0)
        continue;
      Bindings b(model->desc->num_syms);
      bindTensor(*model->desc, p, *tensor, paramLabel(p),
                 "param " + quote(p.name), b);
      model->params[i] = alignedView(*tensor, paramLabel(p));
      model->bound[i] = 1;
      return ATTN_OK;
    }
    fail(ATTN_ERR_NOT_FOUND,
         "model " + quote(model->desc->name) + " has no param " + quote(name));
  });
}

attn_status attn_model_run(attn_model *model, int32_t num_inputs,
                           const attn_tensor *const *inputs,
                           int32_t num_outputs, attn_tensor **outputs) {
  return guarded([&] {
    if (!model || (num_outputs > 0 && !outputs))
      fail(ATTN_ERR_INVALID_ARGUMENT, "attn_model_run: NULL argument");
    for (int32_t i = 0; i < num_outputs && i < model->numOutputs; ++i)
      outputs[i] = nullptr;
    std::vector<attn_tensor> outs;
    namingOutOfMemory("model " + quote(model->desc->name), [&] {
      run(*model, num_inputs, inputs, num_outputs, outs, /*allocate=*/true);
    });
    std::vector<std::unique_ptr<attn_tensor>> result;
    for (attn_tensor &t : outs)
      result.push_back(std::make_unique<attn_tensor>(std::move(t)));
    for (size_t i = 0; i < result.size(); ++i)
      outputs[i] = result[i].release();
    return ATTN_OK;
  });
}

attn_status attn_model_run_into(attn_model *model, int32_t num_inputs,
                                const attn_tensor *const *inputs,
                                int32_t num_outputs,
                                attn_tensor *const *outputs) {
  return guarded([&] {
    if (!model || (num_outputs > 0 && !outputs))
      fail(ATTN_ERR_INVALID_ARGUMENT, "attn_model_run_into: NULL argument");
    std::vector<attn_tensor> outs;
    for (int32_t i = 0; i < num_outputs; ++i) {
      if (!outputs[i])
        fail(ATTN_ERR_INVALID_ARGUMENT,
             "attn_model_run_into: output " + std::to_string(i) + " is NULL");
      outs.push_back(*outputs[i]); // shares the caller's data
    }
    run(*model, num_inputs, inputs, num_outputs, outs, /*allocate=*/false);
    return ATTN_OK;
  });
}
