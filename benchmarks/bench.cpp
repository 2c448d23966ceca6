//===- bench.cpp - attn-bench: every competitor, one process, interleaved -===//
//
// Usage:
//   attn-bench --threads 1,2 --outdir DIR [--libdir DIR] [--filter REGEX]
//              [--competitors REGEX] [--budget SECONDS] [--max-call SECONDS]
//              [--no-verify] [--smoke]
//
// With several thread counts the driver re-runs itself once per count, so
// that OpenMP, OpenBLAS and the Halide runtimes start with that count and the
// process is pinned before any worker exists. Each run sets
// OPENBLAS_CORETYPE=SkylakeX, OMP_NUM_THREADS = OPENBLAS_NUM_THREADS =
// HL_NUM_THREADS = T (and unsets OMP_PROC_BIND/OMP_PLACES), re-execs itself
// if anything changed, pins the process with sched_setaffinity to the first
// T allowed CPUs (before any worker thread exists, so every pool inherits
// the mask) and writes DIR/raw_t<T>.json.
//
// Within a run every case (shape) builds all its competitors, calls each once
// (warm-up, and to pick a repetition count from --budget), then times them
// round-robin: repetition r calls every competitor that still needs samples,
// starting at a rotating position, so drift hits all of them alike. Reported:
// median, min, max over the timed calls; GFLOP/s; % of 147 GFLOP/s per
// thread; the baseline's median / this median, and the median over rounds
// of the baseline's time / this time in the same round (paired: the
// machine's drift between rounds cancels); workspace (buffers a
// competitor allocates up front) and the heap high-water mark during timed
// calls (memcount.cpp). In runs with T > 1 threads attnc_fused is also
// timed at one thread (attn_library_set_num_threads) right after each of
// its timed calls: the median of those ratios is the same-run 2T/1T
// speedup. Before timing, each group is verified at a small size
// against the double-precision interpreter of tests/reference, which
// evaluates the same .attn model the attnc libraries are compiled from.
//
//===----------------------------------------------------------------------===//
#include "baselines/baselines.h"
#include "baselines/fast_kernels.h"
#include "baselines/fma_peak.h"
#include "memcount.h"

#include "Compare.h"
#include "Reference.h"
#include "attn/Frontend/Frontend.h"
#include "attn/runtime.h"

#include <nlohmann/json.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <sched.h>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace attn::bench;
using json = nlohmann::json;

namespace {

constexpr double kPeakPerCore = 147.0; // GFLOP/s, DESIGN.md section 6

struct Options {
  std::vector<int> threads{1, 2};
  std::string outdir = "benchmarks/results";
  std::string libdir;
  std::string filter, competitors; // regexes on case labels / names
  double budget = 1.0; // seconds of timed calls per competitor and case
  double maxCall = 15.0; // skip a competitor whose call would take longer
  bool verify = true;
  bool smoke = false;
};

double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// CPU time of the whole process (all threads), seconds.
double cpuNow() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

bool fileExists(const std::string &p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

std::string readFile(const std::string &p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Deterministic uniform values in [-a, a].
void fillUniform(float *p, size_t n, float a, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = a * (float((x >> 40) & 0xFFFFFF) / float(0x800000) - 1.0f);
  }
}

//===-- Cases and competitors ---------------------------------------------===//

/// A tensor the case owns, by the model's argument or param name.
struct Named {
  std::string name;
  attn_dtype dtype;
  std::vector<int64_t> dims;
  void *data;
};

struct Competitor {
  std::string name;
  std::string skip; // non-empty: not run, with this reason
  std::function<void()> run;
  const float *out = nullptr;
  size_t workspace = 0;
  // attnc libraries: sets the library's Halide thread count. In a run with
  // T > 1 threads, attnc_fused is also timed at one thread right after each
  // of its timed calls (same process, same round), for a 2T/1T ratio that
  // machine drift between the 1- and 2-thread processes cannot skew.
  std::function<void(int)> setThreads;
  // results: times[i] was taken in round rounds[i]; times1[i] is the
  // one-thread call that followed it (when measured)
  std::vector<double> times, cpuShare, times1;
  std::vector<int> rounds;
  double warmup = 0; // seconds of the warm-up call
  // A helper is timed with the others but reported only through a ratio:
  // attention_causal runs the non-causal attnc library on the same inputs,
  // for causal / non-causal paired per repetition.
  bool helper = false;
  long peakExtra = 0;
  int reps = 0;
  std::string error;
};

struct Case {
  std::string group, label;
  int S = 0;
  double flops = 0;
  std::string baseline;
  std::string modelFile, modelName; // for the reference and attnc
  std::vector<Named> inputs, params;
  std::vector<int64_t> outDims;
  size_t outCount = 0;
  std::vector<std::unique_ptr<Competitor>> comps;
  std::vector<std::shared_ptr<void>> keep;

  float *buffer(size_t n) {
    auto b = std::make_shared<Buffer>(n);
    keep.push_back(b);
    return b->data;
  }
  float *output() { return buffer(outCount); }
  Competitor &add(const std::string &name) {
    comps.push_back(std::make_unique<Competitor>());
    comps.back()->name = name;
    return *comps.back();
  }
  void skip(const std::string &name, const std::string &why) {
    add(name).skip = why;
  }
  /// A baseline competitor: `impl` is kept alive with the case, gets its own
  /// output buffer, reports its workspace, and runs as `run(*impl, out)`.
  template <class Impl, class Run>
  void addBaseline(const std::string &name, std::shared_ptr<Impl> impl,
                   Run run) {
    keep.push_back(impl);
    float *out = output();
    Competitor &comp = add(name);
    comp.out = out;
    comp.workspace = impl->workspaceBytes();
    comp.run = [impl, out, run]() { run(*impl, out); };
  }
  const Named &input(const std::string &n) const {
    for (auto &x : inputs)
      if (x.name == n)
        return x;
    throw std::runtime_error("no input " + n);
  }
  const float *param(const std::string &n) const {
    for (auto &x : params)
      if (x.name == n)
        return static_cast<const float *>(x.data);
    throw std::runtime_error("no param " + n);
  }
};

//===-- attnc libraries through the runtime C API -------------------------===//

// The attnc variants: (competitor name, library subdirectory). bench.sh builds
// DIR/<variant>/<model>.so (or leaves <model>.err with the compiler's
// message); the compile flags of each variant live in bench.sh only.
const std::vector<std::pair<std::string, std::string>> kAttncVariants = {
    {"attnc_fused", "fused"}, {"attnc_unfused", "unfused"}};

struct LibraryCache {
  std::map<std::string, attn_library *> libs;
  ~LibraryCache() {
    for (auto &[p, l] : libs)
      attn_library_close(l);
  }
} gLibs;

std::string firstLines(const std::string &text, int n) {
  std::string out;
  std::istringstream in(text);
  std::string line;
  for (int i = 0; i < n && std::getline(in, line); ++i)
    out += (i ? " | " : "") + line;
  return out;
}

/// Adds the attnc competitors of `c` (its model from every variant's
/// library), or with `otherModel` set, that model's fused library alone as
/// the helper competitor `helperName` (see Competitor::helper).
void addAttnc(Case &c, const Options &o, int threads,
              const std::string &otherModel = "",
              const std::string &helperName = "") {
  for (auto [name, variant] : kAttncVariants) {
    if (!otherModel.empty()) {
      if (variant != "fused")
        continue;
      name = helperName;
    }
    const std::string base =
        o.libdir + "/" + variant + "/" +
        (otherModel.empty() ? c.modelName : otherModel);
    const std::string so = base + ".so";
    if (o.libdir.empty() || !fileExists(so)) {
      std::string why = "no library " + so;
      if (fileExists(base + ".err")) {
        // bench.sh writes "skip: REASON" for a variant it did not build,
        // otherwise the file holds attnc's error message.
        const std::string err = firstLines(readFile(base + ".err"), 2);
        why = err.rfind("skip: ", 0) == 0
                  ? err.substr(6)
                  : "attnc could not compile " + c.modelName + ": " + err;
      }
      c.skip(name, why);
      continue;
    }
    attn_library *lib = gLibs.libs[so];
    if (!lib) {
      if (attn_library_open(so.c_str(), &lib) != ATTN_OK) {
        c.skip(name, std::string("cannot load ") + so + ": " + attn_last_error());
        continue;
      }
      gLibs.libs[so] = lib;
      attn_library_set_num_threads(lib, threads);
    }
    attn_model *model = nullptr;
    if (attn_model_open(lib, nullptr, &model) != ATTN_OK) {
      c.skip(name, std::string("attn_model_open: ") + attn_last_error());
      continue;
    }
    auto holder = std::shared_ptr<attn_model>(model, attn_model_close);
    c.keep.push_back(holder);
    std::vector<attn_tensor *> tensors;
    auto wrap = [&](const Named &n) {
      attn_tensor *t = nullptr;
      if (attn_tensor_wrap(n.dtype, int32_t(n.dims.size()), n.dims.data(),
                           n.data, &t) != ATTN_OK)
        throw std::runtime_error(attn_last_error());
      c.keep.push_back(std::shared_ptr<attn_tensor>(t, attn_tensor_free));
      return t;
    };
    std::string why;
    for (int32_t i = 0; i < attn_model_num_params(model) && why.empty(); ++i) {
      const attn_tensor_desc *d = attn_model_param(model, i);
      auto it = std::find_if(c.params.begin(), c.params.end(),
                             [&](const Named &n) { return n.name == d->name; });
      if (it == c.params.end())
        why = std::string("the harness has no param ") + d->name;
      else if (attn_model_bind_param(model, d->name, wrap(*it)) != ATTN_OK)
        why = std::string("bind ") + d->name + ": " + attn_last_error();
    }
    std::vector<const attn_tensor *> ins;
    for (int32_t i = 0; i < attn_model_num_inputs(model) && why.empty(); ++i) {
      const attn_tensor_desc *d = attn_model_input(model, i);
      auto it = std::find_if(c.inputs.begin(), c.inputs.end(),
                             [&](const Named &n) { return n.name == d->name; });
      if (it == c.inputs.end())
        why = std::string("the harness has no input ") + d->name;
      else
        ins.push_back(wrap(*it));
    }
    if (!why.empty()) {
      c.skip(name, why);
      continue;
    }
    float *out = c.output();
    attn_tensor *outT =
        wrap(Named{"out", ATTN_F32, c.outDims, static_cast<void *>(out)});
    Competitor &comp = c.add(name);
    comp.out = out;
    comp.helper = !otherModel.empty();
    comp.setThreads = [lib](int n) { attn_library_set_num_threads(lib, n); };
    comp.run = [model, ins, outT]() {
      attn_tensor *outs[1] = {outT};
      if (attn_model_run_into(model, int32_t(ins.size()), ins.data(), 1,
                              outs) != ATTN_OK)
        throw std::runtime_error(std::string("attn_model_run_into: ") +
                                 attn_last_error());
    };
  }
}

//===-- Case builders -----------------------------------------------------===//

std::string srcPath(const std::string &rel) {
  return std::string(ATTN_SOURCE_DIR) + "/" + rel;
}

std::unique_ptr<Case> makeAttention(const std::string &group, int S, int Hq,
                                    int Hkv, bool causal, int threads,
                                    const Options &o, bool verifying) {
  auto c = std::make_unique<Case>();
  c->group = group;
  c->S = S;
  c->label = group + "/S=" + std::to_string(S);
  c->baseline = "openblas_unfused";
  c->modelName = group;
  c->modelFile = srcPath("benchmarks/models/" + group + ".attn");
  AttnShape s;
  s.Hq = Hq;
  s.Hkv = Hkv;
  s.Sq = s.Sk = S;
  s.causal = causal;
  c->flops = attentionFlops(s);
  const size_t nq = size_t(Hq) * S * 64, nkv = size_t(Hkv) * S * 64;
  float *q = c->buffer(nq), *k = c->buffer(nkv), *v = c->buffer(nkv);
  fillUniform(q, nq, 2.0f, 1); // scores with std ~0.7: a peaked softmax
  fillUniform(k, nkv, 1.0f, 2);
  fillUniform(v, nkv, 1.0f, 3);
  c->inputs = {{"q", ATTN_F32, {1, Hq, S, 64}, q},
               {"k", ATTN_F32, {1, Hkv, S, 64}, k},
               {"v", ATTN_F32, {1, Hkv, S, 64}, v}};
  c->outDims = {1, Hq, S, 64};
  c->outCount = nq;

  addAttnc(*c, o, threads);
  if (causal && Hq == Hkv && !verifying) // (its output is not causal)
    addAttnc(*c, o, threads, "attention", "attnc_fused_noncausal");
  HeadView qv = s.qView(q), kv = s.kvView(k), vv = s.kvView(v);
  c->addBaseline("openblas_unfused",
                 std::make_shared<BlasAttention>(s, threads),
                 [=](BlasAttention &impl, float *out) {
                   impl.run(qv, kv, vv, s.qView(out));
                 });
  if (causal && Hq != Hkv) {
    c->skip("onednn", "causal GQA not written for oneDNN");
  } else {
    try {
      c->addBaseline("onednn", std::make_shared<DnnlAttention>(s, threads),
                     [=](DnnlAttention &impl, float *out) {
                       impl.run(q, k, v, out);
                     });
    } catch (const std::exception &e) {
      c->skip("onednn", std::string("oneDNN setup failed: ") + e.what());
    }
  }
  if (S <= 512 || verifying) {
    c->addBaseline("naive", std::make_shared<NaiveAttention>(s),
                   [=](NaiveAttention &impl, float *out) {
                     impl.run(q, k, v, out);
                   });
  } else {
    c->skip("naive", "naive loops only run at S <= 512");
  }
  return c;
}

std::unique_ptr<Case> makeGemm(int N, int K, int S, int threads,
                               const Options &o) {
  auto c = std::make_unique<Case>();
  c->group = "gemm_" + std::to_string(N) + "x" + std::to_string(K);
  c->S = S;
  c->label = c->group + "/S=" + std::to_string(S);
  c->baseline = "openblas_sgemm";
  c->modelName = c->group;
  c->modelFile = srcPath("benchmarks/models/" + c->group + ".attn");
  c->flops = 2.0 * S * N * K;
  float *x = c->buffer(size_t(S) * K), *w = c->buffer(size_t(N) * K),
        *b = c->buffer(N);
  fillUniform(x, size_t(S) * K, 1.0f, 4);
  fillUniform(w, size_t(N) * K, 1.0f / std::sqrt(float(K)), 5);
  fillUniform(b, N, 0.1f, 6);
  c->inputs = {{"x", ATTN_F32, {1, S, K}, x}};
  c->params = {{"w", ATTN_F32, {N, K}, w}, {"b", ATTN_F32, {N}, b}};
  c->outDims = {1, S, N};
  c->outCount = size_t(S) * N;
  addAttnc(*c, o, threads);
  GemmShape gs{S, N, K};
  c->addBaseline("openblas_sgemm", std::make_shared<BlasGemm>(gs, threads),
                 [=](BlasGemm &impl, float *out) { impl.run(x, w, b, out); });
  try {
    c->addBaseline("onednn_matmul", std::make_shared<DnnlGemm>(gs, threads),
                   [=](DnnlGemm &impl, float *out) { impl.run(x, w, b, out); });
  } catch (const std::exception &e) {
    c->skip("onednn_matmul", std::string("oneDNN setup failed: ") + e.what());
  }
  return c;
}

/// Params of a layer model, shaped from the model's own `param` statements.
void makeLayerParams(Case &c, const attn::ast::Model &m) {
  uint64_t seed = 100;
  for (const attn::ast::Stmt &st : m.body) {
    if (st.kind != attn::ast::Stmt::Param)
      continue;
    std::vector<int64_t> dims;
    size_t n = 1;
    for (auto &d : st.type.dims) {
      dims.push_back(d.size);
      n *= size_t(d.size);
    }
    float *p = c.buffer(n);
    const std::string &nm = st.name;
    if (dims.size() == 2) {
      fillUniform(p, n, 1.0f / std::sqrt(float(dims[1])), seed++);
    } else if (nm.find("ln") != std::string::npos &&
               (nm.back() == 'g')) { // layer-norm gains
      fillUniform(p, n, 0.1f, seed++);
      for (size_t i = 0; i < n; ++i)
        p[i] += 1.0f;
    } else {
      fillUniform(p, n, 0.05f, seed++);
    }
    c.params.push_back({nm, ATTN_F32, dims, p});
  }
}

std::optional<attn::ast::Module> parseModelFile(const std::string &path,
                                                std::string &error) {
  std::ostringstream diag;
  attn::SourceDiagnostics diags(path, readFile(path), diag);
  std::optional<attn::ast::Module> module = attn::parseModule(diags);
  if (!module || !attn::checkModule(*module, diags)) {
    error = diag.str();
    return std::nullopt;
  }
  return module;
}

std::unique_ptr<Case> makeLayer(BlasLayer::Kind kind, int S, int threads,
                                const Options &o) {
  auto c = std::make_unique<Case>();
  const bool bert = kind == BlasLayer::Bert;
  c->group = bert ? "bert_layer" : "gpt2_block";
  c->S = S;
  c->label = c->group + "/S=" + std::to_string(S);
  c->baseline = "openblas_layer";
  c->modelName = c->group;
  c->modelFile = srcPath("examples/" + c->group + ".attn");
  const double H = 768, F = 3072;
  AttnShape as;
  as.Sq = as.Sk = S;
  as.causal = !bert;
  c->flops = 2.0 * S * (4 * H * H + 2 * H * F) + attentionFlops(as);
  std::string err;
  auto module = parseModelFile(c->modelFile, err);
  if (!module)
    throw std::runtime_error("cannot read " + c->modelFile + ": " + err);
  makeLayerParams(*c, module->models.front());
  float *x = c->buffer(size_t(S) * 768);
  fillUniform(x, size_t(S) * 768, 1.0f, 7);
  auto lengths = std::make_shared<int32_t>(S);
  c->keep.push_back(lengths);
  c->inputs = {{"x", ATTN_F32, {1, S, 768}, x}};
  if (bert)
    c->inputs.push_back({"lengths", ATTN_I32, {1}, lengths.get()});
  c->outDims = {1, S, 768};
  c->outCount = size_t(S) * 768;
  addAttnc(*c, o, threads);
  LayerParams lp;
  for (auto &p : c->params)
    lp.items.push_back({p.name, static_cast<const float *>(p.data)});
  const int32_t *len = bert ? lengths.get() : nullptr;
  c->addBaseline("openblas_layer",
                 std::make_shared<BlasLayer>(kind, S, threads),
                 [=](BlasLayer &impl, float *out) {
                   impl.run(x, len, lp, out);
                 });
  return c;
}

//===-- The case list -----------------------------------------------------===//

struct CaseSpec {
  std::string label, group;
  std::function<std::unique_ptr<Case>(int threads, bool verifying)> make;
  int verifyS; // the size the group is verified at
};

std::vector<CaseSpec> allCases(const Options &o) {
  std::vector<CaseSpec> v;
  auto att = [&](const std::string &g, int S, int Hq, int Hkv, bool causal) {
    v.push_back({g + "/S=" + std::to_string(S), g,
                 [=, &o](int t, bool verifying) {
                   return makeAttention(g, S, Hq, Hkv, causal, t, o, verifying);
                 },
                 0});
  };
  for (int S : {128, 512, 2048, 4096, 8192})
    att("attention", S, 12, 12, false);
  att("attention_causal", 2048, 12, 12, true);
  att("attention_gqa", 2048, 32, 8, false);
  for (int S : {128, 512})
    for (auto [N, K] : {std::pair{768, 768}, {3072, 768}, {768, 3072}}) {
      std::string g = "gemm_" + std::to_string(N) + "x" + std::to_string(K);
      v.push_back({g + "/S=" + std::to_string(S), g,
                   [=, &o](int t, bool) { return makeGemm(N, K, S, t, o); }, 0});
    }
  for (int S : {128, 512})
    v.push_back({"bert_layer/S=" + std::to_string(S), "bert_layer",
                 [=, &o](int t, bool) {
                   return makeLayer(BlasLayer::Bert, S, t, o);
                 },
                 0});
  v.push_back({"gpt2_block/S=1024", "gpt2_block",
               [&o](int t, bool) { return makeLayer(BlasLayer::Gpt2, 1024, t, o); },
               0});
  return v;
}

/// A small case of `group` for verification (odd-free but not a tile
/// multiple where the model allows it).
std::unique_ptr<Case> makeVerifyCase(const std::string &group, int threads,
                                     const Options &o) {
  if (group == "attention")
    return makeAttention(group, 100, 12, 12, false, threads, o, true);
  if (group == "attention_causal")
    return makeAttention(group, 100, 12, 12, true, threads, o, true);
  if (group == "attention_gqa")
    return makeAttention(group, 100, 32, 8, false, threads, o, true);
  if (group.rfind("gemm_", 0) == 0) {
    int N = std::stoi(group.substr(5)), K = std::stoi(group.substr(group.find('x') + 1));
    return makeGemm(N, K, 37, threads, o);
  }
  if (group == "bert_layer")
    return makeLayer(BlasLayer::Bert, 24, threads, o);
  return makeLayer(BlasLayer::Gpt2, 24, threads, o);
}

//===-- Verification ------------------------------------------------------===//

json verifyGroup(const std::string &group, int threads, const Options &o) {
  json rows = json::array();
  std::unique_ptr<Case> c = makeVerifyCase(group, threads, o);
  std::string err;
  auto module = parseModelFile(c->modelFile, err);
  if (!module) {
    std::printf("verify %s: cannot parse %s\n", group.c_str(), err.c_str());
    return rows;
  }
  const attn::ast::Model &m = module->models.front();
  std::map<std::string, attn::RefTensor> ins, ws;
  auto toRef = [](const Named &n) {
    attn::RefTensor t;
    t.shape = n.dims;
    size_t count = attn::RefTensor::countElements(n.dims);
    t.data.resize(count);
    if (n.dtype == ATTN_I32) {
      t.dtype = attn::ast::DType::I32;
      for (size_t i = 0; i < count; ++i)
        t.data[i] = static_cast<const int32_t *>(n.data)[i];
    } else {
      for (size_t i = 0; i < count; ++i)
        t.data[i] = static_cast<const float *>(n.data)[i];
    }
    return t;
  };
  for (auto &n : c->inputs)
    ins[n.name] = toRef(n);
  for (const attn::ast::Stmt &st : m.body)
    if (st.kind == attn::ast::Stmt::Param)
      for (auto &n : c->params)
        if (n.name == st.name)
          ws[st.weightName.empty() ? st.name : st.weightName] = toRef(n);
  std::vector<attn::RefTensor> outs;
  if (!attn::evaluate(m, ins, ws, outs, err)) {
    std::printf("verify %s: reference failed: %s\n", group.c_str(), err.c_str());
    return rows;
  }
  const attn::RefTensor &ref = outs.front();
  double refMax = 0;
  for (double x : ref.data)
    refMax = std::max(refMax, std::fabs(x));
  for (auto &comp : c->comps) {
    json r = {{"group", group}, {"S", c->S}, {"threads", threads},
              {"competitor", comp->name}};
    if (!comp->skip.empty()) {
      r["status"] = "skipped";
      r["reason"] = comp->skip;
      std::printf("verify %-16s S=%-4d %-18s skipped: %s\n", group.c_str(),
                  c->S, comp->name.c_str(), comp->skip.c_str());
      rows.push_back(r);
      continue;
    }
    try {
      comp->run();
    } catch (const std::exception &e) {
      r["status"] = "failed";
      r["reason"] = e.what();
      std::printf("verify %-16s S=%-4d %-18s FAILED: %s\n", group.c_str(),
                  c->S, comp->name.c_str(), e.what());
      rows.push_back(r);
      continue;
    }
    double maxAbs = 0;
    bool finite = true;
    for (size_t i = 0; i < c->outCount; ++i) {
      double g = comp->out[i];
      if (!std::isfinite(g))
        finite = false;
      maxAbs = std::max(maxAbs, std::fabs(g - ref.data[i]));
    }
    // Outputs are O(1); 1e-3 absolute (1e-2 for the layers, whose layer
    // norms amplify f32 rounding) flags a wrong competitor, not rounding.
    const double tol = c->group.find("layer") != std::string::npos ||
                               c->group.find("block") != std::string::npos
                           ? 1e-2
                           : 1e-3;
    const bool ok = finite && maxAbs <= tol;
    r["status"] = ok ? "ok" : "wrong";
    r["max_abs_err"] = finite ? maxAbs : INFINITY;
    r["ref_max_abs"] = refMax;
    r["tolerance"] = tol;
    std::printf("verify %-16s S=%-4d %-18s max|err| = %.3g (|ref| <= %.3g) %s\n",
                group.c_str(), c->S, comp->name.c_str(), maxAbs, refMax,
                ok ? "ok" : "WRONG");
    rows.push_back(r);
  }
  std::fflush(stdout);
  return rows;
}

//===-- Timing ------------------------------------------------------------===//

// Seconds per flop of each group/competitor at the last size it ran.
std::map<std::string, double> gSecondsPerFlop;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string pinToFirst(int t);

/// Times one call of `p` with one thread (Competitor::times1), as in the
/// one-thread process: the calling thread, which does all the work, pinned
/// to the first CPU of the run's set; then restores `threads` and the set.
void timeOneThreadTwin(Competitor &p, int threads) {
  cpu_set_t all;
  sched_getaffinity(0, sizeof all, &all);
  pinToFirst(1);
  p.setThreads(1);
  const double t0 = now();
  try {
    p.run();
  } catch (const std::exception &e) {
    p.error = e.what();
  }
  p.times1.push_back(now() - t0);
  p.setThreads(threads);
  sched_setaffinity(0, sizeof all, &all);
}

double measurePeak(int threads, int runs = 9, long iters = 8000000);

json runCase(Case &c, int threads, const Options &o) {
  std::vector<Competitor *> live;
  if (!o.competitors.empty()) {
    std::regex keep(o.competitors);
    for (auto &p : c.comps)
      if (p->skip.empty() && !std::regex_search(p->name, keep))
        p->skip = "not selected (--competitors)";
  }
  for (auto &p : c.comps) {
    // A competitor that ran at a smaller size of this group and would take
    // longer than --max-call seconds here is skipped, with the estimate.
    auto it = gSecondsPerFlop.find(c.group + "/" + p->name);
    if (p->skip.empty() && it != gSecondsPerFlop.end() &&
        it->second * c.flops > o.maxCall) {
      char why[160];
      std::snprintf(why, sizeof why,
                    "too slow: about %.0f s per call (extrapolated from a "
                    "smaller S), over --max-call %.0f s",
                    it->second * c.flops, o.maxCall);
      p->skip = why;
    }
  }
  for (auto &p : c.comps)
    if (p->skip.empty())
      live.push_back(p.get());
  // Warm-up, which also sizes the repetition counts.
  const int minReps = o.smoke ? 2 : 3, maxReps = o.smoke ? 3 : 25;
  for (Competitor *p : live) {
    double t0 = now();
    try {
      p->run();
    } catch (const std::exception &e) {
      p->error = e.what();
      continue;
    }
    double t = now() - t0;
    p->warmup = t;
    p->reps = std::clamp(int(o.budget / std::max(t, 1e-6)), minReps, maxReps);
    if (t > 4.0)
      p->reps = t > 10.0 ? 1 : 2; // very slow competitors at large S
    gSecondsPerFlop[c.group + "/" + p->name] = t / c.flops;
  }
  int rounds = 0;
  for (Competitor *p : live)
    rounds = std::max(rounds, p->error.empty() ? p->reps : 0);
  const size_t n = live.size();
  // The FMA loop at the start of every round (the median of 3 runs of about
  // 4 ms, touching no memory): the peak the machine offers during that
  // round, for each call's share of it (pct_round_peak).
  std::vector<double> roundPeak;
  for (int r = 0; r < rounds; ++r) {
    roundPeak.push_back(measurePeak(threads, 3, 1000000));
    for (size_t i = 0; i < n; ++i) {
      Competitor *p = live[(i + r) % n];
      if (!p->error.empty() || int(p->times.size()) >= p->reps)
        continue;
      memResetPeak();
      const long before = memLiveBytes();
      const double c0 = cpuNow();
      double t0 = now();
      try {
        p->run();
      } catch (const std::exception &e) {
        p->error = e.what();
        continue;
      }
      const double wall = now() - t0;
      p->times.push_back(wall);
      p->rounds.push_back(r);
      p->cpuShare.push_back((cpuNow() - c0) / (wall * threads));
      p->peakExtra = std::max(p->peakExtra, memPeakBytes() - before);
      // Changing the count restarts the library's thread pool, so the next
      // multi-thread call spawns its workers again (tens of microseconds):
      // only calls of 10 ms and more get a one-thread twin.
      if (threads > 1 && p->setThreads && p->name == "attnc_fused" &&
          p->warmup >= 0.01)
        timeOneThreadTwin(*p, threads);
    }
  }

  const Competitor *base = nullptr;
  for (Competitor *p : live)
    if (p->name == c.baseline && p->error.empty() && !p->times.empty())
      base = p;
  const double baseMed = base ? median(base->times) : 0;
  // a's time / b's time within each round both ran in (a competitor runs
  // at most once per round): drift of the machine's speed between rounds
  // cancels.
  auto paired = [rounds](const Competitor &a, const Competitor &b) {
    std::vector<double> inRound(rounds, 0.0), q;
    for (size_t j = 0; j < a.times.size(); ++j)
      inRound[a.rounds[j]] = a.times[j];
    for (size_t i = 0; i < b.times.size(); ++i)
      if (double t = inRound[b.rounds[i]]; t > 0)
        q.push_back(t / b.times[i]);
    return q;
  };
  auto pairedRatios = [&](const Competitor &p) {
    return base ? paired(*base, p) : std::vector<double>();
  };
  const Competitor *helper = nullptr; // see Competitor::helper
  for (Competitor *p : live)
    if (p->helper && p->error.empty() && !p->times.empty())
      helper = p;
  json rows = json::array();
  const double peak = kPeakPerCore * threads;
  for (auto &p : c.comps) {
    if (p->helper) {
      if (p->error.empty() && !p->times.empty())
        std::printf("%-24s T=%d %-18s %10.3f ms  (helper: reported as a "
                    "ratio)\n",
                    c.label.c_str(), threads, p->name.c_str(),
                    median(p->times) * 1e3);
      continue;
    }
    json r = {{"group", c.group}, {"case", c.label}, {"S", c.S},
              {"threads", threads}, {"competitor", p->name},
              {"baseline", c.baseline}, {"flops", c.flops}};
    if (!p->skip.empty() || !p->error.empty() || p->times.empty()) {
      r["status"] = p->skip.empty() ? "failed" : "skipped";
      r["reason"] = p->skip.empty() ? p->error : p->skip;
      std::printf("%-24s T=%d %-18s %s: %s\n", c.label.c_str(), threads,
                  p->name.c_str(), r["status"].get<std::string>().c_str(),
                  r["reason"].get<std::string>().c_str());
      rows.push_back(r);
      continue;
    }
    const double med = median(p->times);
    gSecondsPerFlop[c.group + "/" + p->name] = med / c.flops;
    const double gflops = c.flops / med * 1e-9;
    r["status"] = "ok";
    r["median_ms"] = med * 1e3;
    r["min_ms"] = *std::min_element(p->times.begin(), p->times.end()) * 1e3;
    r["max_ms"] = *std::max_element(p->times.begin(), p->times.end()) * 1e3;
    r["reps"] = p->times.size();
    // Every timed call and its repetition (round), for paired comparisons
    // of any two competitors (benchmarks/ab.py).
    json ms = json::array();
    for (double t : p->times)
      ms.push_back(t * 1e3);
    r["times_ms"] = ms;
    r["rounds"] = p->rounds;
    // Process CPU time / (wall time x threads), median over the calls: well
    // below 1 means the run was descheduled (a loaded machine) or threads
    // sat idle.
    r["cpu_share"] = median(p->cpuShare);
    r["gflops"] = gflops;
    r["pct_peak"] = 100.0 * gflops / peak;
    // Each call's GFLOP/s over the FMA loop's of its round, median over the
    // calls: % of the peak measured alongside, robust to the machine's
    // speed drifting between rounds (not to phases that slow memory only).
    std::vector<double> share;
    for (size_t i = 0; i < p->times.size(); ++i)
      share.push_back(100.0 * c.flops / p->times[i] * 1e-9 /
                      roundPeak[p->rounds[i]]);
    r["pct_round_peak"] = median(share);
    if (baseMed > 0)
      r["speedup_vs_baseline"] = baseMed / med;
    if (auto q = pairedRatios(*p); !q.empty()) {
      r["paired_speedup_vs_baseline"] = median(q);
      r["pairs"] = q.size();
    }
    if (helper && p->name == "attnc_fused") {
      // This (causal) time / the non-causal library's, paired.
      r["noncausal_median_ms"] = median(helper->times) * 1e3;
      if (auto q = paired(*p, *helper); !q.empty())
        r["paired_time_vs_noncausal"] = median(q);
    }
    if (!p->times1.empty()) {
      std::vector<double> q;
      for (size_t i = 0; i < p->times1.size(); ++i)
        q.push_back(p->times1[i] / p->times[i]);
      r["one_thread_median_ms"] = median(p->times1) * 1e3;
      r["speedup_vs_1_thread_same_run"] = median(q);
    }
    r["workspace_bytes"] = p->workspace;
    r["call_peak_alloc_bytes"] = p->peakExtra;
    r["extra_bytes"] = p->workspace + size_t(std::max(0L, p->peakExtra));
    std::printf("%-24s T=%d %-18s %10.3f ms  %7.1f GFLOP/s  %5.1f%%  x%.2f  "
                "extra %.1f MiB  cpu %.2f (%zu reps)\n",
                c.label.c_str(), threads, p->name.c_str(), med * 1e3, gflops,
                100.0 * gflops / peak, baseMed > 0 ? baseMed / med : 0.0,
                (p->workspace + std::max(0L, p->peakExtra)) / 1048576.0,
                median(p->cpuShare), p->times.size());
    rows.push_back(r);
  }
  std::fflush(stdout);
  return rows;
}

//===-- Process set-up ----------------------------------------------------===//

/// Sets the environment for a run with `t` threads; returns true if it
/// changed anything (then the process must re-exec for it to take effect).
bool setRunEnv(int t) {
  const std::string ts = std::to_string(t);
  // OpenBLAS 0.3.21 takes AVX-512 CPUs of the Sapphire Rapids class for
  // Prescott: name the core there, and only there (its SkylakeX kernels die
  // with SIGILL on a CPU without AVX-512; it detects those correctly).
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const std::pair<const char *, std::string> want[] = {
      {"OPENBLAS_CORETYPE", avx512 ? "SkylakeX" : ""},
      {"OMP_NUM_THREADS", ts},
      {"OPENBLAS_NUM_THREADS", ts},
      {"HL_NUM_THREADS", ts},
      // Competitors alternate, so an idle pool must not spin on the cores
      // the next competitor needs: OpenMP workers sleep at once, OpenBLAS
      // workers after 2^4 cycles (its default spins for ~2^28).
      {"OMP_WAIT_POLICY", "passive"},
      {"OPENBLAS_THREAD_TIMEOUT", "4"}};
  bool changed = false;
  for (auto &[k, v] : want) {
    const char *cur = std::getenv(k);
    if (v.empty()) { // not to be set
      if (cur) {
        unsetenv(k);
        changed = true;
      }
    } else if (!cur || v != cur) {
      setenv(k, v.c_str(), 1);
      changed = true;
    }
  }
  // No OMP_PROC_BIND/OMP_PLACES: libgomp would bind the main thread to one
  // core at start-up, and the Halide and OpenBLAS workers it spawns would
  // inherit that one-core mask. The process is pinned to T cores instead.
  for (const char *k : {"OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY"})
    if (std::getenv(k)) {
      unsetenv(k);
      changed = true;
    }
  return changed;
}

std::string pinToFirst(int t) {
  cpu_set_t allowed, set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
    return "sched_getaffinity failed";
  std::string cpus;
  int got = 0;
  for (int c = 0; c < CPU_SETSIZE && got < t; ++c)
    if (CPU_ISSET(c, &allowed)) {
      CPU_SET(c, &set);
      cpus += (got++ ? "," : "") + std::to_string(c);
    }
  if (got < t)
    return "only " + std::to_string(got) + " CPUs allowed";
  if (sched_setaffinity(0, sizeof(set), &set) != 0)
    return "sched_setaffinity failed";
  return cpus;
}

std::string cpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0)
      return line.substr(line.find(':') + 2);
  return "?";
}

/// The machine's FMA peak with `threads` threads, GFLOP/s: the median of
/// `runs` runs of attn_fma_peak (16 independent chains of the widest FMA
/// this CPU runs; 8M iterations take about 30 ms) on every thread at once.
double measurePeak(int threads, int runs, long iters) {
  const int lanes = attn_fma_widest();
  const double flops = double(iters) * 16 * lanes * 2 * threads;
  std::vector<double> g;
  static volatile float sink; // keeps the calls
  for (int r = 0; r < runs; ++r) {
    const double t0 = now();
#pragma omp parallel num_threads(threads)
    sink = attn_fma_peak(lanes, iters);
    g.push_back(flops / (now() - t0) * 1e-9);
  }
  return median(g);
}

int runOne(int threads, const Options &o, char **argv) {
  if (setRunEnv(threads)) {
    execv("/proc/self/exe", argv);
    std::perror("execv");
    return 1;
  }
  const std::string pinned = pinToFirst(threads);
  omp_set_num_threads(threads);
  std::printf("== attn-bench: %d thread(s), pinned to CPU %s, %s\n", threads,
              pinned.c_str(), blasConfig().c_str());
  std::fflush(stdout);

  std::regex filter(o.filter.empty() ? ".*" : o.filter);
  std::vector<CaseSpec> specs = allCases(o);
  if (o.smoke)
    specs = {specs.front()}; // attention S=128
  json results = json::array(), verify = json::array();
  if (o.verify) {
    std::vector<std::string> groups;
    for (auto &s : specs)
      if (std::regex_search(s.label, filter) &&
          std::find(groups.begin(), groups.end(), s.group) == groups.end())
        groups.push_back(s.group);
    for (auto &g : groups)
      try {
        for (auto &r : verifyGroup(g, threads, o))
          verify.push_back(r);
      } catch (const std::exception &e) {
        std::printf("verify %s: %s\n", g.c_str(), e.what());
      }
  }
  const double peakBefore = measurePeak(threads);
  // With more threads, the one-thread peak in the same process: the
  // machine's own scaling, the ceiling of any kernel's.
  const double peak1 = threads > 1 ? measurePeak(1) : peakBefore;
  std::printf("peak (FMA loop, %d thread(s)): %.1f GFLOP/s; 1 thread %.1f\n",
              threads, peakBefore, peak1);
  const double t0 = now();
  const std::string loadBefore = readFile("/proc/loadavg");
  for (auto &s : specs) {
    if (!std::regex_search(s.label, filter))
      continue;
    try {
      std::unique_ptr<Case> c = s.make(threads, false);
      for (auto &r : runCase(*c, threads, o))
        results.push_back(r);
    } catch (const std::exception &e) {
      std::printf("%s: %s\n", s.label.c_str(), e.what());
    }
  }
  const double peakAfter = measurePeak(threads);
  std::printf("peak (FMA loop, %d thread(s)) after the cases: %.1f GFLOP/s\n",
              threads, peakAfter);
  char date[64];
  std::time_t tt = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S%z", std::localtime(&tt));
  json meta = {
      {"threads", threads},
      {"pinned_cpus", pinned},
      {"cpu", cpuModel()},
      {"date", date},
      {"openblas", blasConfig()},
      {"peak_gflops_per_core", kPeakPerCore},
      // This run's FMA peak for all its threads, before and after the cases.
      {"peak_measured_gflops",
       {{"before", peakBefore}, {"after", peakAfter}, {"one_thread", peak1}}},
      {"budget_s", o.budget},
      {"seconds", now() - t0},
      // The machine is shared: other jobs' load shows here.
      {"loadavg_before", loadBefore.substr(0, loadBefore.find('\n'))},
      {"loadavg_after", firstLines(readFile("/proc/loadavg"), 1)},
      {"flop_convention",
       "attention: 4*B*Hq*Sq*Sk*D (QK^T and PV multiply-adds, 2 flops each), "
       "halved when causal; GEMM: 2*M*N*K; layers: their GEMMs plus attention"},
      {"memory_method",
       "workspace_bytes: buffers the competitor allocates up front (scores, "
       "intermediates, oneDNN scratchpads); call_peak_alloc_bytes: high-water "
       "mark of the heap (interposed malloc/free/aligned variants, whole "
       "process incl. Halide runtime and libraries) during timed calls minus "
       "the live total before the call; extra_bytes = their sum"},
  };
  json env = json::object();
  for (const char *k : {"OPENBLAS_CORETYPE", "OMP_NUM_THREADS",
                        "OPENBLAS_NUM_THREADS", "HL_NUM_THREADS",
                        "OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT"})
    if (const char *v = std::getenv(k))
      env[k] = v;
  meta["env"] = env;
  if (!o.libdir.empty() && fileExists(o.libdir + "/variants.json"))
    meta["attnc_variants"] = json::parse(readFile(o.libdir + "/variants.json"),
                                         nullptr, false);
  json doc = {{"meta", meta}, {"results", results}, {"verify", verify}};
  mkdir(o.outdir.c_str(), 0755);
  const std::string out = o.outdir + "/raw_t" + std::to_string(threads) + ".json";
  std::ofstream(out) << doc.dump(1) << "\n";
  std::printf("== wrote %s (%.0f s)\n", out.c_str(), now() - t0);
  int bad = 0;
  for (auto &r : verify)
    bad += r["status"] == "wrong" || r["status"] == "failed";
  // A wrong competitor is reported, not a harness failure, except in the
  // smoke test (which only runs the baselines).
  return o.smoke && bad ? 1 : 0;
}

} // namespace

int main(int argc, char **argv) {
  Options o;
  bool child = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "attn-bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--threads") {
      o.threads.clear();
      std::stringstream ss(next());
      std::string t;
      while (std::getline(ss, t, ','))
        o.threads.push_back(std::stoi(t));
    } else if (a == "--outdir")
      o.outdir = next();
    else if (a == "--libdir")
      o.libdir = next();
    else if (a == "--filter")
      o.filter = next();
    else if (a == "--competitors")
      o.competitors = next();
    else if (a == "--budget")
      o.budget = std::stod(next());
    else if (a == "--max-call")
      o.maxCall = std::stod(next());
    else if (a == "--no-verify")
      o.verify = false;
    else if (a == "--smoke")
      o.smoke = true;
    else if (a == "--child")
      child = true;
    else {
      std::fprintf(stderr,
                   "usage: attn-bench [--threads 1,2] [--outdir DIR] "
                   "[--libdir DIR] [--filter REGEX] [--competitors REGEX] "
                   "[--budget S] [--max-call S] "
                   "[--no-verify] [--smoke]\n");
      return 2;
    }
  }
  if (o.threads.size() == 1 || child)
    return runOne(o.threads.front(), o, argv);
  // Driver: one child process per thread count.
  int status = 0;
  for (int t : o.threads) {
    pid_t pid = fork();
    if (pid == 0) {
      std::vector<std::string> args;
      for (int i = 0; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--threads") {
          ++i;
          continue;
        }
        args.push_back(a);
      }
      args.push_back("--threads");
      args.push_back(std::to_string(t));
      std::vector<char *> cargs;
      for (auto &s : args)
        cargs.push_back(s.data());
      cargs.push_back(nullptr);
      setRunEnv(t);
      execv("/proc/self/exe", cargs.data());
      std::perror("execv");
      _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      std::fprintf(stderr, "attn-bench: the %d-thread run failed (status %d)\n",
                   t, st);
      status = 1;
    }
  }
  return status;
}
