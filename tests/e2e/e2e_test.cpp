//===- e2e_test.cpp - Compile, run and compare with the reference ---------===//
//
// For every model in tests/e2e/models/*.attn and examples/*.attn:
//
//   1. compile it once per process with attnc (--emit=shared, into a
//      temporary directory; later tests of the same file reuse the .so);
//   2. for several sets of symbolic sizes (1, odd sizes, sizes that are not
//      multiples of a tile, at least three values of every symbol, all on
//      the same .so) generate deterministic inputs and weights (the
//      model's params and those its model calls bind, under their
//      prefixed weight names);
//   3. run the model through the runtime's C++ API and the same values
//      through the double-precision reference (tests/reference);
//   4. compare every output, and every `inout` input after the run (the
//      runtime writes it in place) with the reference's buffer after the
//      run, and require that nothing is NaN or Inf.
//
// A model file picks its sizes with comment directives:
//
//   # e2e-sizes: B=1 S=1 | B=2 S=7 | B=1 S=129 pos_offset=1000
//   # e2e-lengths: Sk        (i32 "length" inputs take values in [0, Sk])
//   # e2e-starts: T-S        (i32 "start" inputs take values in [0, T-S])
//
// `pos_offset` starts the i32 "position" inputs at that value (rope
// precision far from 0). An i32 input whose name contains "start" (a KV
// cache position: cache_write needs start + S <= T) takes values in
// [0, bound] with both ends present whenever it has 2 or more entries (one
// entry: the bound in even size sets, a random value in odd ones); the
// bound is the `e2e-starts` expression (size names and integers joined by
// + and -), by default T - S when the sizes have T and S, else the lengths'
// bound. The examples, which carry no directives, get their sizes from a
// table below (or a generic default).
//
// The error-path tests at the end run a compiled model through the runtime
// with bad inputs and weights: every one must return an error status whose
// message names the offending tensor, and nothing may abort.
//
// Run by hand: build/bin/e2e-tests --gtest_filter='*attn_causal*'.
// ATTN_E2E_VERBOSE=1 prints one comparison report per output and size set;
// ATTN_E2E_KEEP=1 keeps the temporary directory with the compiled libraries;
// ATTN_E2E_SIZES="B=1 Sq=300 Sk=1000 | B=2 Sq=5 Sk=5" replaces the size sets
// (to explore a size by hand); ATTN_E2E_CACHE_DIR shares compiled libraries
// between processes (see compile()).
//
//===----------------------------------------------------------------------===//
#include "Compare.h"
#include "Reference.h"

#include "attn/Frontend/Frontend.h"
#include "attn/runtime.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#ifndef ATTNC_PATH
#error "ATTNC_PATH must name the attnc binary"
#endif
#ifndef ATTN_EXAMPLES_DIR
#error "ATTN_EXAMPLES_DIR must name the examples directory"
#endif
#ifndef ATTN_E2E_MODELS_DIR
#error "ATTN_E2E_MODELS_DIR must name tests/e2e/models"
#endif

namespace fs = std::filesystem;
using attn::RefTensor;
using attn::ast::DType;

namespace {

//===----------------------------------------------------------------------===//
// Deterministic random numbers
//===----------------------------------------------------------------------===//

/// splitmix64: tiny, fast and the same on every platform (std::
/// distributions are not specified bit for bit).
class Rng {
public:
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// U(-1, 1), a multiple of 2^-23 (exact in f32).
  float uniform() {
    return static_cast<float>(static_cast<int64_t>(next() >> 40) -
                              (int64_t(1) << 23)) *
           (1.0f / float(1 << 23));
  }
  /// Uniform in [lo, hi].
  int64_t range(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(next() % uint64_t(hi - lo + 1));
  }
  bool bernoulli(double p) { return (next() >> 11) * 0x1.0p-53 < p; }

private:
  uint64_t s;
};

uint64_t fnv1a(const std::string &s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s)
    h = (h ^ c) * 0x100000001b3ull;
  return h;
}

//===----------------------------------------------------------------------===//
// Model discovery and size sets
//===----------------------------------------------------------------------===//

/// One set of symbolic sizes plus the run options that come with it.
struct SizeSet {
  std::map<std::string, int64_t> syms;
  int64_t posOffset = 0;
  std::string str() const {
    std::string s;
    for (const auto &[k, v] : syms)
      s += (s.empty() ? "" : " ") + k + "=" + std::to_string(v);
    if (posOffset)
      s += " pos_offset=" + std::to_string(posOffset);
    return s;
  }
};

struct ModelCase {
  std::string file;  // absolute path of the .attn file
  std::string model; // model name inside it
  std::string label; // test name suffix
  std::vector<SizeSet> sizes;
  std::string lengthsSym; // upper bound of "length" inputs ("" = default)
  std::string startsExpr; // upper bound of "start" inputs ("" = default)
};

std::string readFile(const std::string &path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

/// "B=1 S=1 | B=2 S=7 pos_offset=1000" -> size sets.
std::vector<SizeSet> parseSizes(const std::string &text) {
  std::vector<SizeSet> sets;
  std::stringstream all(text);
  std::string part;
  while (std::getline(all, part, '|')) {
    SizeSet set;
    std::stringstream ss(part);
    std::string tok;
    while (ss >> tok) {
      size_t eq = tok.find('=');
      if (eq == std::string::npos)
        continue;
      std::string key = tok.substr(0, eq);
      int64_t value = std::stoll(tok.substr(eq + 1));
      if (key == "pos_offset")
        set.posOffset = value;
      else
        set.syms[key] = value;
    }
    if (!set.syms.empty() || set.posOffset)
      sets.push_back(set);
  }
  return sets;
}

/// The directives of an example (which carries none in its file).
struct ExampleSizes {
  std::string sizes, lengthsSym, startsExpr;
};

/// Sizes for the examples: BERT, GPT-2 and the Llama block are wide
/// (768/3072), so their long sequence stays at 129 with B=1 to keep the
/// double-precision reference around a second. The whole decoders (gpt2:
/// 124M params, a 50257-token vocabulary; llama: 4 layers, 32000 tokens)
/// run a decode step (S=1) of a batch at different cache starts (0 and
/// T - S among them), a prefill that fills its cache exactly (T = S) and a
/// batch of prefills with caches longer than needed (T not a multiple of
/// anything); GPT-2 only these three (its reference takes about 1.5 s per
/// size set, the weights being 124M doubles).
const std::map<std::string, ExampleSizes> &exampleSizes() {
  static const std::map<std::string, ExampleSizes> t = {
      {"bert_layer", {"B=1 S=1 | B=2 S=7 | B=1 S=129 | B=3 S=5", "S", ""}},
      {"cross_attention",
       {"B=1 T=1 S=1 | B=2 T=7 S=9 | B=1 T=5 S=129 | B=3 T=9 S=3", "S", ""}},
      {"decomposed_attention",
       {"B=1 S=1 | B=2 S=7 | B=1 S=129 | B=3 S=9", "S", ""}},
      {"gpt2_block", {"B=1 S=1 | B=2 S=7 | B=1 S=129 | B=3 S=4", "", ""}},
      {"minilm", {"B=1 S=1 | B=2 S=7 | B=1 S=129 | B=3 S=5", "S", ""}},
      {"llama_block",
       {"B=1 S=1 | B=2 S=7 | B=1 S=129 | B=3 S=9 pos_offset=1000", "", ""}},
      {"gpt2", {"B=2 S=1 T=5 | B=1 S=3 T=3 | B=3 S=2 T=7", "", "T-S"}},
      {"llama",
       {"B=2 S=1 T=5 | B=1 S=3 T=3 | B=3 S=5 T=13 | B=1 S=1 T=1", "", "T-S"}},
  };
  return t;
}

/// Sizes for a model nobody described: all 1, then small odd values, then
/// one long one, so every symbol still takes three values.
std::vector<SizeSet> genericSizes(const std::vector<std::string> &syms) {
  std::vector<SizeSet> sets(3);
  for (size_t i = 0; i < syms.size(); ++i) {
    sets[0].syms[syms[i]] = 1;
    sets[1].syms[syms[i]] = i == 0 ? 2 : 7 + 2 * int64_t(i - 1);
    sets[2].syms[syms[i]] = i == 0 ? 3 : (i == syms.size() - 1 ? 33 : 5);
  }
  return sets;
}

/// Finds every `model NAME<...>` in the .attn files of `dir`.
void discover(const std::string &dir, const std::string &prefix,
              std::vector<ModelCase> &out) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto &e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".attn")
      files.push_back(e.path());
  std::sort(files.begin(), files.end());
  static const std::regex modelRe(
      R"(^\s*model\s+([A-Za-z_][A-Za-z0-9_]*)\s*(<([^>]*)>)?)");
  for (const fs::path &f : files) {
    std::string text = readFile(f.string());
    std::string sizesText, lengthsSym, startsExpr;
    std::stringstream lines(text);
    std::string line;
    std::vector<std::pair<std::string, std::vector<std::string>>> models;
    while (std::getline(lines, line)) {
      std::smatch m;
      if (line.rfind("# e2e-sizes:", 0) == 0)
        sizesText = line.substr(12);
      else if (line.rfind("# e2e-lengths:", 0) == 0)
        lengthsSym = trim(line.substr(14));
      else if (line.rfind("# e2e-starts:", 0) == 0)
        startsExpr = trim(line.substr(13));
      else if (std::regex_search(line, m, modelRe)) {
        std::vector<std::string> syms;
        std::stringstream ss(m[3].str());
        std::string s;
        while (std::getline(ss, s, ','))
          if (!trim(s).empty())
            syms.push_back(trim(s));
        models.push_back({m[1].str(), syms});
      }
    }
    for (const auto &[name, syms] : models) {
      // A model that another model of the file calls is compiled into the
      // library for those calls but not listed in its table: it is checked
      // through its callers.
      bool called = false;
      if (!attn::isBuiltin(name)) {
        std::regex callRe("(^|[^A-Za-z0-9_])" + name + "\\s*\\(");
        for (auto it = std::sregex_iterator(text.begin(), text.end(), callRe);
             it != std::sregex_iterator() && !called; ++it) {
          size_t at = it->position(0);
          size_t lineStart = text.rfind('\n', at);
          std::string before = text.substr(
              lineStart == std::string::npos ? 0 : lineStart + 1,
              at + it->length(1) -
                  (lineStart == std::string::npos ? 0 : lineStart + 1));
          called = !std::regex_search(before, std::regex(R"(^\s*model\s*$)"));
        }
      }
      if (called)
        continue;
      ModelCase c;
      c.file = fs::absolute(f).string();
      c.model = name;
      c.label = prefix + name;
      c.lengthsSym = lengthsSym;
      c.startsExpr = startsExpr;
      auto ex = exampleSizes().find(name);
      if (!sizesText.empty())
        c.sizes = parseSizes(sizesText);
      else if (ex != exampleSizes().end()) {
        c.sizes = parseSizes(ex->second.sizes);
        if (c.lengthsSym.empty())
          c.lengthsSym = ex->second.lengthsSym;
        if (c.startsExpr.empty())
          c.startsExpr = ex->second.startsExpr;
      } else
        c.sizes = genericSizes(syms);
      out.push_back(c);
    }
  }
}

std::vector<ModelCase> allCases() {
  std::vector<ModelCase> cases;
  discover(ATTN_E2E_MODELS_DIR, "", cases);
  discover(ATTN_EXAMPLES_DIR, "example_", cases);
  return cases;
}

//===----------------------------------------------------------------------===//
// Compiling (once per file and process)
//===----------------------------------------------------------------------===//

const std::string &tempDir() {
  // Never destroyed: TempDirCleanup (a global constructed before it) uses it
  // at exit, after function-local statics are gone.
  static const std::string &dir = *new std::string([] {
    std::string tmpl =
        (fs::temp_directory_path() / "attn-e2e-XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    const char *d = mkdtemp(buf.data());
    return std::string(d ? d : "/tmp");
  }());
  return dir;
}

struct TempDirCleanup {
  ~TempDirCleanup() {
    if (!std::getenv("ATTN_E2E_KEEP") && tempDir() != "/tmp") {
      std::error_code ec;
      fs::remove_all(tempDir(), ec);
    }
  }
} cleanup;

/// Runs `argv` and returns its exit status with stdout+stderr in `log`.
int runProcess(const std::vector<std::string> &argv, std::string &log) {
  std::string cmd;
  for (const std::string &a : argv)
    cmd += "'" + a + "' ";
  cmd += "2>&1";
  FILE *p = popen(cmd.c_str(), "r");
  if (!p) {
    log = "popen failed";
    return -1;
  }
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0)
    log.append(buf.data(), n);
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct Compiled {
  bool ok = false;
  std::string lib; // path of the .so
  std::string log; // attnc's output
  double seconds = 0;
};

/// The identity of the attnc binary (size and modification time), so that a
/// rebuilt compiler never reuses a library of the old one.
std::string attncStamp() {
  std::error_code ec;
  auto size = fs::file_size(ATTNC_PATH, ec);
  auto time = fs::last_write_time(ATTNC_PATH, ec).time_since_epoch().count();
  return std::to_string(size) + ":" + std::to_string(time);
}

/// Extra attnc flags from ATTN_E2E_ATTNC_FLAGS (space-separated), e.g.
/// `--no-fusion` to check that the IR as written gives the same numbers.
std::vector<std::string> extraAttncFlags() {
  std::vector<std::string> flags;
  if (const char *env = std::getenv("ATTN_E2E_ATTNC_FLAGS")) {
    std::istringstream in(env);
    for (std::string f; in >> f;)
      flags.push_back(f);
  }
  return flags;
}

/// Compiles `file` once per process; later calls return the cached result.
/// With ATTN_E2E_CACHE_DIR set (ctest sets it, because ctest runs every test
/// in its own process), the library is also shared between processes under
/// a key of the model text and the attnc binary's size and mtime; it is
/// written under a temporary name and renamed, so concurrent tests are safe.
const Compiled &compile(const std::string &file) {
  static std::mutex mu;
  static std::map<std::string, Compiled> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(file);
  if (it != cache.end())
    return it->second;
  Compiled c;
  const std::string stem = fs::path(file).stem().string();
  std::string shared;
  if (const char *dir = std::getenv("ATTN_E2E_CACHE_DIR"); dir && *dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    char key[17];
    std::snprintf(key, sizeof key, "%016llx",
                  static_cast<unsigned long long>(
                      fnv1a(file + "\n" + attncStamp() + "\n" +
                            (std::getenv("ATTN_E2E_ATTNC_FLAGS")
                                 ? std::getenv("ATTN_E2E_ATTNC_FLAGS")
                                 : "") +
                            "\n" + readFile(file))));
    shared = std::string(dir) + "/lib" + stem + "-" + key + ".so";
    if (fs::exists(shared)) {
      c.ok = true;
      c.lib = shared;
      c.log = "(cached " + shared + ")";
      return cache.emplace(file, c).first->second;
    }
  }
  c.lib = tempDir() + "/lib" + stem + "_" + std::to_string(cache.size()) +
          ".so";
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::string> argv = {ATTNC_PATH, file, "-o", c.lib};
  for (const std::string &f : extraAttncFlags())
    argv.push_back(f);
  int rc = runProcess(argv, c.log);
  c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                            t0)
                  .count();
  c.ok = rc == 0 && fs::exists(c.lib);
  if (c.ok && !shared.empty()) {
    std::error_code ec;
    std::string tmp = shared + ".tmp" + std::to_string(getpid());
    fs::copy_file(c.lib, tmp, fs::copy_options::overwrite_existing, ec);
    if (!ec)
      fs::rename(tmp, shared, ec);
    if (ec)
      fs::remove(tmp, ec);
    // Drop this model's libraries from older compilers or sources.
    const std::string prefix = "lib" + stem + "-";
    for (const auto &e :
         fs::directory_iterator(fs::path(shared).parent_path(), ec)) {
      std::string n = e.path().filename().string();
      if (n.rfind(prefix, 0) == 0 && n.size() == prefix.size() + 19 &&
          e.path().string() != shared)
        fs::remove(e.path(), ec);
    }
  }
  return cache.emplace(file, c).first->second;
}

//===----------------------------------------------------------------------===//
// The front end (for the reference)
//===----------------------------------------------------------------------===//

/// The checked AST of `file`, parsed once per process.
const attn::ast::Module *frontEnd(const std::string &file, std::string &err) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<attn::ast::Module>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(file);
  if (it != cache.end())
    return it->second.get();
  std::ostringstream diagText;
  attn::SourceDiagnostics diags(file, readFile(file), diagText);
  std::optional<attn::ast::Module> m = attn::parseModule(diags);
  if (!m || !attn::checkModule(*m, diags)) {
    err = diagText.str();
    return nullptr;
  }
  return cache.emplace(file, std::make_unique<attn::ast::Module>(std::move(*m)))
      .first->second.get();
}

const attn::ast::Model *findModel(const attn::ast::Module &m,
                                  const std::string &name) {
  for (const attn::ast::Model &model : m.models)
    if (model.name == name)
      return &model;
  return nullptr;
}

//===----------------------------------------------------------------------===//
// Inputs, weights and outputs
//===----------------------------------------------------------------------===//

DType toAst(attn_dtype t) {
  switch (t) {
  case ATTN_F32:
    return DType::F32;
  case ATTN_F16:
    return DType::F16;
  case ATTN_BF16:
    return DType::BF16;
  case ATTN_I32:
    return DType::I32;
  case ATTN_BOOL:
    return DType::Bool;
  }
  return DType::F32;
}

/// A tensor for the runtime and the exact same values for the reference.
struct Pair {
  attn::Tensor rt;
  RefTensor ref;
};

std::string lower(std::string s) {
  for (char &c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// An input or param as the source declares it.
struct TensorSpec {
  std::string name;
  std::string weightName; // params: the name in the weights file
  bool isParam = false;
  DType dtype = DType::F32;
  std::vector<attn::ast::Dim> dims;
  bool inout = false; // inputs: written in place by the model
};

/// The model's arguments, or its params: its own, then those its calls bind
/// (Sema's calleeParams, named by their prefixed weight names, as the
/// library's table lists them).
std::vector<TensorSpec> specsOf(const attn::ast::Model &m, bool params) {
  std::vector<TensorSpec> out;
  if (!params) {
    for (const attn::ast::Arg &a : m.args)
      out.push_back({a.name, "", false, a.type.dtype, a.type.dims, a.inout});
    return out;
  }
  for (const attn::ast::Stmt &st : m.body)
    if (st.kind == attn::ast::Stmt::Param)
      out.push_back({st.name, st.weightName.empty() ? st.name : st.weightName,
                     true, st.type.dtype, st.type.dims, false});
  for (const attn::ast::BoundParam &p : m.calleeParams)
    out.push_back({p.weightName, p.weightName, true, p.dtype, p.dims, false});
  return out;
}

attn_dtype toRuntime(DType t) {
  switch (t) {
  case DType::F32:
    return ATTN_F32;
  case DType::F16:
    return ATTN_F16;
  case DType::BF16:
    return ATTN_BF16;
  case DType::I32:
    return ATTN_I32;
  case DType::Bool:
    return ATTN_BOOL;
  }
  return ATTN_F32;
}

/// The shape of `t` under `sizes`.
bool resolveShape(const TensorSpec &t, const SizeSet &sizes,
                  std::vector<int64_t> &shape, std::string &err) {
  shape.clear();
  for (const attn::ast::Dim &d : t.dims) {
    if (d.isStatic()) {
      shape.push_back(d.size);
      continue;
    }
    auto it = sizes.syms.find(d.sym);
    if (it == sizes.syms.end()) {
      err = "the size set gives no value for '" + d.sym + "' (needed by '" +
            t.name + "')";
      return false;
    }
    shape.push_back(it->second);
  }
  return true;
}

/// The runtime's description of `t` must match the source.
::testing::AssertionResult sameDesc(const attn_model_desc *m,
                                    const attn_tensor_desc *d,
                                    const TensorSpec &t) {
  auto fail = [&]() {
    return ::testing::AssertionFailure()
           << "the library describes " << (d ? d->name : "(none)")
           << " differently from the source's " << t.name << ": "
           << attn::ast::dtypeName(t.dtype);
  };
  if (!d || t.name != d->name || toRuntime(t.dtype) != d->dtype ||
      int32_t(t.dims.size()) != d->rank)
    return fail();
  if (t.isParam && t.weightName != (d->weight_name ? d->weight_name : ""))
    return fail() << " (weights name " << t.weightName << ")";
  for (int32_t i = 0; i < d->rank; ++i) {
    const attn::ast::Dim &want = t.dims[size_t(i)];
    attn_dim got = d->dims[i];
    bool ok = want.isStatic()
                  ? got == want.size
                  : ATTN_DIM_IS_SYMBOLIC(got) &&
                        ATTN_DIM_SYMBOL(got) < m->num_syms &&
                        want.sym == m->sym_names[ATTN_DIM_SYMBOL(got)];
    if (!ok)
      return fail() << " (dim " << i << ")";
  }
  return ::testing::AssertionSuccess();
}

/// Generates one input or weight.
///  - float inputs: U(-1, 1); float weights of rank >= 2: U(-1, 1) /
///    sqrt(fan_in) (fan_in = the last dim, PyTorch's [out, in]); rank-1
///    weights (biases, norm gains): U(-1, 1). f16/bf16 values are rounded to
///    the storage type first and the reference gets the stored value exactly.
///  - i32 named *len*: lengths in [0, L] with 0 and L both present.
///  - i32 named *start*: cache starts in [0, startBound], both ends present
///    (see the file header).
///  - i32 named *pos*: offset + s (+ 3*b for [B, S] so that each batch row
///    differs).
///  - bool: keep with probability 0.7.
bool generate(const TensorSpec &d, const std::vector<int64_t> &shape, Rng &rng,
              int64_t lengthBound, int64_t startBound, int64_t posOffset,
              int setIndex, Pair &out, std::string &err) {
  auto t = attn::Tensor::create(toRuntime(d.dtype), shape);
  if (!t) {
    err = t.status().message;
    return false;
  }
  out.rt = t.take();
  out.ref = RefTensor(shape, d.dtype);
  const int64_t n = out.ref.numel();
  const std::string name = lower(d.name);
  switch (d.dtype) {
  case DType::F32:
  case DType::F16:
  case DType::BF16: {
    double scale = 1.0;
    if (d.isParam && shape.size() >= 2 && shape.back() > 0)
      scale = 1.0 / std::sqrt(double(shape.back()));
    for (int64_t i = 0; i < n; ++i) {
      float x = static_cast<float>(rng.uniform() * scale);
      if (d.dtype == DType::F32) {
        out.rt.data<float>()[i] = x;
        out.ref.data[i] = x;
      } else if (d.dtype == DType::F16) {
        uint16_t bits = attn_f32_to_f16(x);
        out.rt.data<uint16_t>()[i] = bits;
        out.ref.data[i] = attn::halfBitsToDouble(bits);
      } else {
        uint16_t bits = attn_f32_to_bf16(x);
        out.rt.data<uint16_t>()[i] = bits;
        out.ref.data[i] = attn::bf16BitsToDouble(bits);
      }
    }
    return true;
  }
  case DType::I32: {
    int32_t *p = out.rt.data<int32_t>();
    // An entry of a [0, bound] range with both ends present.
    auto bounded = [&](int64_t i, int64_t bound) {
      if (n == 1)
        return setIndex % 2 == 0 ? bound : rng.range(0, bound);
      return i % 3 == 0 ? bound : (i % 3 == 1 ? 0 : rng.range(0, bound));
    };
    if (name.find("start") != std::string::npos) {
      if (startBound < 0) {
        err = "the sizes leave no room for a cache start (bound " +
              std::to_string(startBound) + ")";
        return false;
      }
      for (int64_t i = 0; i < n; ++i)
        p[i] = static_cast<int32_t>(bounded(i, startBound));
    } else if (name.find("pos") != std::string::npos) {
      const int64_t S = shape.empty() ? 1 : shape.back();
      for (int64_t i = 0; i < n; ++i)
        p[i] = static_cast<int32_t>(posOffset + (i % S) + 3 * (i / S));
    } else if (name.find("len") != std::string::npos) {
      for (int64_t i = 0; i < n; ++i)
        p[i] = static_cast<int32_t>(bounded(i, lengthBound));
    } else {
      for (int64_t i = 0; i < n; ++i)
        p[i] = static_cast<int32_t>(rng.range(0, 8));
    }
    for (int64_t i = 0; i < n; ++i)
      out.ref.data[i] = p[i];
    return true;
  }
  case DType::Bool: {
    uint8_t *p = out.rt.data<uint8_t>();
    for (int64_t i = 0; i < n; ++i) {
      p[i] = rng.bernoulli(0.7) ? 1 : 0;
      out.ref.data[i] = p[i];
    }
    return true;
  }
  }
  err = "unknown dtype";
  return false;
}

/// The values of a runtime output as doubles (f16/bf16 converted exactly).
std::vector<double> toDoubles(const attn::TensorView &t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < v.size(); ++i) {
    switch (t.dtype()) {
    case ATTN_F32:
      v[i] = t.data<float>()[i];
      break;
    case ATTN_F16:
      v[i] = attn::halfBitsToDouble(t.data<uint16_t>()[i]);
      break;
    case ATTN_BF16:
      v[i] = attn::bf16BitsToDouble(t.data<uint16_t>()[i]);
      break;
    case ATTN_I32:
      v[i] = t.data<int32_t>()[i];
      break;
    case ATTN_BOOL:
      v[i] = t.data<uint8_t>()[i];
      break;
    }
  }
  return v;
}

//===----------------------------------------------------------------------===//
// Tolerance
//===----------------------------------------------------------------------===//
//
// Generated code computes in f32 with Halide's fast-math exp (and the
// backend's own erf/tanh approximations, relative error ~1e-6 or better);
// the reference computes in double. For a reduction of length K over terms
// of size ~1 (our inputs are U(-1,1) and weights are scaled by
// 1/sqrt(fan_in), so every layer's outputs stay O(1)), f32 rounding gives
// an error that grows like eps_f32 * sqrt(K) (random walk; eps_f32 = 6e-8)
// and at worst like eps_f32 * K. Chains of a few layers (the examples: up
// to 7 GEMMs, 2 norms, softmax) multiply that by a small factor, and
// layer_norm/rms_norm divide by a standard deviation that can be ~0.3.
//
//   f32 result:  err_i <= atol + rtol * |ref_i|,
//                rtol = 2e-5 * sqrt(K),  atol = 2e-5 * sqrt(K) * scale
//
// with K the longest reduction in the model (the largest static dim of an
// input or weight, or the largest symbolic size: a softmax/attention row)
// and scale = max(rms(ref), 1e-3). For K = 64 that is 1.6e-4, for
// K = 3072 1.1e-3: ~300x (K=64) to ~20x (K=3072) above eps_f32 * K, so a
// correct implementation passes with margin. A wrong mask, a wrong causal
// offset, a wrong GQA head or a swapped rope pairing changes the affected
// outputs by O(0.1 * scale) or more, which fails by two to four orders of
// magnitude. Checked by building this suite against deliberately broken
// copies of the reference (max scaled error, 1 = the bound):
//   causal top-left aligned (no Sk-Sq)   attn_causal/gqa/mask_and/sliding/
//                                        softmax_masked fail, 3e3 .. 4e4
//   GQA kv head h % Hkv instead of h / g attn_gqa, mini_block, llama 3e3 .. 3e4
//   padding keeps j <= len               6 models fail, 3e3 .. 3e4
//   sliding window one key wider         2 models fail, 4e3 .. 2e4
//   rope pairing swapped                 rope_*, mini_block 2e2 .. 3e4,
//                                        llama_block 73
// while a correct backend stays at 0.025 or below (layer_norm; most < 0.006).
//
// f16/bf16 results: both sides round to the storage type, so they may also
// differ by one unit in the last place: rtol += 2^-10 (f16) or 2^-7 (bf16).
//
// Fully masked rows must be exactly 0 in the contract; with atol >= 2e-5 *
// 1e-3 the metric accepts only values within 1e-8 of 0 there for the
// smallest scale, and the NaN/Inf check below is exact.
struct Tolerance {
  double rtol, atol;
};

Tolerance toleranceFor(DType out, int64_t K, double rms) {
  const double base = 2e-5 * std::sqrt(double(std::max<int64_t>(K, 1)));
  const double scale = std::max(rms, 1e-3);
  Tolerance t{base, base * scale};
  if (out == DType::F16)
    t.rtol += std::ldexp(1.0, -10);
  if (out == DType::BF16)
    t.rtol += std::ldexp(1.0, -7);
  return t;
}

/// The longest reduction of a model under `sizes` (see above).
int64_t reductionLength(const attn::ast::Model &m, const SizeSet &sizes) {
  int64_t K = 1;
  for (bool params : {false, true})
    for (const TensorSpec &t : specsOf(m, params))
      for (const attn::ast::Dim &d : t.dims)
        if (d.isStatic())
          K = std::max(K, d.size);
  for (const auto &[name, v] : sizes.syms)
    K = std::max(K, v);
  return K;
}

double rmsOf(const std::vector<double> &v) {
  if (v.empty())
    return 0;
  double s = 0;
  for (double x : v)
    s += x * x;
  return std::sqrt(s / double(v.size()));
}

bool verbose() { return std::getenv("ATTN_E2E_VERBOSE") != nullptr; }
/// ATTN_E2E_REFERENCE_ONLY=1: generate data and run the reference only
/// (checks the size directives and the reference's cost without attnc).
bool referenceOnly() {
  return std::getenv("ATTN_E2E_REFERENCE_ONLY") != nullptr;
}

//===----------------------------------------------------------------------===//
// One model, all its size sets
//===----------------------------------------------------------------------===//

struct LoadedModel {
  std::optional<attn::Library> lib;
  std::optional<attn::Model> model; // empty in reference-only mode
  const attn::ast::Model *ast = nullptr;
  // The weights, generated and bound once (again only when a param has a
  // symbolic dim and the sizes change): BERT's 7M values are worth reusing.
  std::vector<Pair> params;
  std::map<std::string, RefTensor> refWeights;
  std::string paramsKey;
};

/// Parses, compiles and loads, and checks that the library describes the
/// model exactly as the source declares it.
::testing::AssertionResult load(const std::string &file,
                                const std::string &name, LoadedModel &out) {
  std::string err;
  const attn::ast::Module *m = frontEnd(file, err);
  if (!m)
    return ::testing::AssertionFailure() << "front end failed:\n" << err;
  out.ast = findModel(*m, name);
  if (!out.ast)
    return ::testing::AssertionFailure() << "no model " << name << " in AST";
  if (referenceOnly())
    return ::testing::AssertionSuccess();

  const Compiled &c = compile(file);
  if (!c.ok)
    return ::testing::AssertionFailure()
           << "attnc failed on " << file << ":\n"
           << c.log;
  auto lib = attn::Library::open(c.lib);
  if (!lib)
    return ::testing::AssertionFailure()
           << "cannot open " << c.lib << ": " << lib.status().message;
  out.lib.emplace(lib.take());
  auto model = out.lib->model(name);
  if (!model)
    return ::testing::AssertionFailure()
           << "no model " << name << ": " << model.status().message;
  out.model.emplace(model.take());

  const attn_model_desc *desc = out.model->desc();
  std::vector<TensorSpec> ins = specsOf(*out.ast, false),
                          ps = specsOf(*out.ast, true);
  auto rtIns = out.model->inputs(), rtPs = out.model->params();
  if (rtIns.size() != ins.size() || rtPs.size() != ps.size() ||
      out.model->outputs().size() != out.ast->results.size())
    return ::testing::AssertionFailure()
           << "the library declares " << rtIns.size() << " inputs, "
           << rtPs.size() << " params, " << out.model->outputs().size()
           << " outputs; the source " << ins.size() << ", " << ps.size()
           << ", " << out.ast->results.size();
  for (size_t i = 0; i < ins.size(); ++i) {
    if (auto r = sameDesc(desc, rtIns[i], ins[i]); !r)
      return r;
    if ((rtIns[i]->role == ATTN_INOUT) != ins[i].inout)
      return ::testing::AssertionFailure()
             << "the library lists '" << ins[i].name << "' as "
             << (ins[i].inout ? "not " : "") << "inout, unlike the source";
  }
  for (size_t i = 0; i < ps.size(); ++i)
    if (auto r = sameDesc(desc, rtPs[i], ps[i]); !r)
      return r;
  return ::testing::AssertionSuccess();
}

/// Generated inputs and weights for one size set, and the reference outputs
/// and inout buffers after the run.
struct Workload {
  std::vector<Pair> inputs;
  std::vector<RefTensor> expected;
  std::map<std::string, RefTensor> expectedInouts;
  double refSeconds = 0;
};

/// "T-S", "T - S - 1", "S+2" under `sizes`: names and integers joined by +
/// and -. False (with a message) on anything else.
bool evalSizeSum(const std::string &text, const SizeSet &sizes, int64_t &out,
                 std::string &err) {
  out = 0;
  int sign = 1;
  bool term = false; // a term was just read: an operator (or the end) next
  size_t i = 0;
  auto skip = [&] {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])))
      ++i;
  };
  for (skip(); i < text.size(); skip()) {
    char c = text[i];
    if (term) {
      if (c != '+' && c != '-')
        break;
      sign = c == '+' ? 1 : -1;
      term = false;
      ++i;
      continue;
    }
    size_t j = i;
    while (
        j < text.size() &&
        (std::isalnum(static_cast<unsigned char>(text[j])) || text[j] == '_'))
      ++j;
    std::string tok = text.substr(i, j - i);
    if (tok.empty())
      break;
    if (std::isdigit(static_cast<unsigned char>(tok[0]))) {
      out += sign * std::stoll(tok);
    } else if (sizes.syms.count(tok)) {
      out += sign * sizes.syms.at(tok);
    } else {
      err = "e2e-starts names '" + tok + "', which the size set does not give";
      return false;
    }
    term = true;
    i = j;
  }
  if (!term || i != text.size()) {
    err = "malformed e2e-starts expression '" + text + "'";
    return false;
  }
  return true;
}

/// Generates the inputs (and, when the sizes change them, the weights) of
/// size set `setIndex` and, if `reference`, runs the reference on them.
::testing::AssertionResult prepare(const ModelCase &mc, LoadedModel &lm,
                                   const SizeSet &sizes, int setIndex,
                                   Workload &w, bool reference = true) {
  Rng rng(fnv1a(mc.label) * 31 + uint64_t(setIndex) * 0x1000193ull + 17);
  std::string err;

  int64_t lengthBound = 1;
  std::string lsym = mc.lengthsSym;
  if (lsym.empty())
    lsym = sizes.syms.count("S")
               ? "S"
               : (sizes.syms.empty() ? "" : sizes.syms.rbegin()->first);
  if (sizes.syms.count(lsym))
    lengthBound = sizes.syms.at(lsym);
  int64_t startBound = lengthBound;
  std::string sexpr = mc.startsExpr;
  if (sexpr.empty() && sizes.syms.count("T") && sizes.syms.count("S"))
    sexpr = "T-S";
  if (!sexpr.empty() && !evalSizeSum(sexpr, sizes, startBound, err))
    return ::testing::AssertionFailure() << err;

  std::map<std::string, RefTensor> refInputs;
  for (const TensorSpec &t : specsOf(*lm.ast, false)) {
    std::vector<int64_t> shape;
    Pair p;
    if (!resolveShape(t, sizes, shape, err) ||
        !generate(t, shape, rng, lengthBound, startBound, sizes.posOffset,
                  setIndex, p, err))
      return ::testing::AssertionFailure() << t.name << ": " << err;
    refInputs[t.name] = p.ref;
    w.inputs.push_back(std::move(p));
  }

  std::vector<TensorSpec> params = specsOf(*lm.ast, true);
  bool symbolic = false;
  for (const TensorSpec &t : params)
    for (const attn::ast::Dim &d : t.dims)
      symbolic |= !d.isStatic();
  const std::string key = symbolic ? sizes.str() : "static";
  if (key != lm.paramsKey) {
    lm.params.clear();
    lm.refWeights.clear();
    lm.paramsKey.clear();
    Rng prng(fnv1a(mc.label + "/weights/" + key));
    for (const TensorSpec &t : params) {
      std::vector<int64_t> shape;
      Pair p;
      if (!resolveShape(t, sizes, shape, err) ||
          !generate(t, shape, prng, lengthBound, startBound, 0, 0, p, err))
        return ::testing::AssertionFailure() << t.name << ": " << err;
      // (Moved, not copied: GPT-2's 124M weights are 1 GB as doubles.)
      lm.refWeights[t.weightName] = std::move(p.ref);
      if (lm.model) {
        attn::Status st =
            lm.model->bindParam(t.name, attn::TensorView(p.rt.get()));
        if (!st)
          return ::testing::AssertionFailure()
                 << "bindParam(" << t.name << "): " << st.message;
      }
      lm.params.push_back(std::move(p));
    }
    lm.paramsKey = key;
  }
  if (!reference)
    return ::testing::AssertionSuccess();
  auto t0 = std::chrono::steady_clock::now();
  if (!attn::evaluate(*lm.ast, refInputs, lm.refWeights, w.expected, err,
                      &w.expectedInouts))
    return ::testing::AssertionFailure() << "reference failed: " << err;
  w.refSeconds = std::chrono::duration<double>(
                     std::chrono::steady_clock::now() - t0)
                     .count();
  return ::testing::AssertionSuccess();
}

std::vector<attn::TensorView> views(const std::vector<Pair> &ps) {
  std::vector<attn::TensorView> v;
  for (const Pair &p : ps)
    v.push_back(attn::TensorView(p.rt.get()));
  return v;
}

class E2E : public ::testing::TestWithParam<ModelCase> {};

TEST_P(E2E, MatchesReference) {
  ModelCase mc = GetParam();
  const char *override = std::getenv("ATTN_E2E_SIZES");
  if (override && *override)
    mc.sizes = parseSizes(override);
  LoadedModel lm;
  // GPU targets do not take model calls and KV caches yet: attnc says so.
  if (!referenceOnly() &&
      compile(mc.file).log.find("not supported for GPU targets yet") !=
          std::string::npos)
    GTEST_SKIP() << "attnc: " << compile(mc.file).log;
  ASSERT_TRUE(load(mc.file, mc.model, lm));
  if (verbose() && lm.model)
    std::cout << "[e2e] " << mc.label << ": compiled in "
              << compile(mc.file).seconds << " s\n";
  ASSERT_FALSE(mc.sizes.empty()) << "no size sets";

  // Every symbol must take at least three values across the size sets.
  std::map<std::string, std::set<int64_t>> seen;
  for (const SizeSet &s : mc.sizes)
    for (const auto &[k, v] : s.syms)
      seen[k].insert(v);
  for (const std::string &sym : lm.ast->syms) {
    if (!override) {
      EXPECT_GE(seen[sym].size(), 3u)
          << "symbol " << sym << " takes fewer than 3 values in the size sets";
    }
  }

  std::vector<std::vector<double>> firstRun;    // outputs of size set 0
  std::vector<RefTensor> firstExpected;         // their reference
  std::vector<std::vector<double>> firstInouts; // its inouts after the run
  for (size_t si = 0; si < mc.sizes.size(); ++si) {
    const SizeSet &sizes = mc.sizes[si];
    SCOPED_TRACE("sizes " + sizes.str());
    Workload w;
    ASSERT_TRUE(prepare(mc, lm, sizes, int(si), w));
    if (si == 0)
      firstExpected = w.expected;
    for (const RefTensor &ref : w.expected) {
      size_t refNonFinite = 0;
      for (double v : ref.data)
        refNonFinite += !std::isfinite(v);
      EXPECT_EQ(refNonFinite, 0u) << "NaN/Inf in the reference output";
    }
    if (!lm.model) {
      if (verbose())
        std::cout << "[e2e] " << mc.label << " [" << sizes.str()
                  << "]: reference " << w.refSeconds * 1e3 << " ms\n";
      continue;
    }
    auto t0 = std::chrono::steady_clock::now();
    auto outs = lm.model->run(views(w.inputs));
    double secs = std::chrono::duration<double>(
                      std::chrono::steady_clock::now() - t0)
                      .count();
    ASSERT_TRUE(outs) << "run failed: " << outs.status().message;
    ASSERT_EQ(outs->size(), w.expected.size());
    const int64_t K = reductionLength(*lm.ast, sizes);
    for (size_t o = 0; o < outs->size(); ++o) {
      const attn::Tensor &got = (*outs)[o];
      const RefTensor &ref = w.expected[o];
      SCOPED_TRACE("output " + std::to_string(o));
      ASSERT_EQ(toAst(got.dtype()), ref.dtype)
          << "output dtype " << attn_dtype_name(got.dtype());
      ASSERT_EQ(got.shape(), ref.shape)
          << "shape " << attn::shapeString(got.shape()) << " vs reference "
          << attn::shapeString(ref.shape);
      std::vector<double> vals = toDoubles(got);
      size_t nonFinite = 0;
      for (double v : vals)
        nonFinite += !std::isfinite(v);
      EXPECT_EQ(nonFinite, 0u) << "NaN/Inf in the generated output";
      // Where the reference is exactly 0 (a fully masked attention/softmax
      // row, relu of a negative, rope's sin(0)), the contract gives exactly
      // 0 as well, not a small residue of a masked sum.
      size_t zeroViolations = 0, firstZeroViolation = 0;
      for (size_t i = 0; i < vals.size() && i < ref.data.size(); ++i)
        if (ref.data[i] == 0 && vals[i] != 0 && zeroViolations++ == 0)
          firstZeroViolation = i;
      EXPECT_EQ(zeroViolations, 0u)
          << "reference is exactly 0 but the output is not, first at "
          << firstZeroViolation
          << attn::multiIndexString(firstZeroViolation, ref.shape) << ": "
          << (zeroViolations ? vals[firstZeroViolation] : 0.0);
      Tolerance tol = toleranceFor(ref.dtype, K, rmsOf(ref.data));
      std::string report;
      bool ok = attn::compare(ref, vals.data(), vals.size(), tol.rtol,
                              tol.atol, report);
      EXPECT_TRUE(ok) << mc.label << " [" << sizes.str() << "] output " << o
                      << " (K=" << K << "): " << report;
      if (verbose())
        std::cout << "[e2e] " << mc.label << " [" << sizes.str() << "] out"
                  << o << " (run " << secs * 1e3 << " ms, reference "
                  << w.refSeconds * 1e3 << " ms, K=" << K << "): " << report
                  << "\n";
      if (si == 0)
        firstRun.push_back(std::move(vals));
    }
    // The inout inputs, written in place by the run, against the
    // reference's buffers after its run, at the outputs' tolerance.
    std::vector<TensorSpec> ins = specsOf(*lm.ast, false);
    for (size_t i = 0; i < ins.size(); ++i) {
      if (!ins[i].inout)
        continue;
      SCOPED_TRACE("inout '" + ins[i].name + "'");
      auto it = w.expectedInouts.find(ins[i].name);
      ASSERT_NE(it, w.expectedInouts.end()) << "the reference has no buffer";
      const RefTensor &ref = it->second;
      std::vector<double> vals =
          toDoubles(attn::TensorView(w.inputs[i].rt.get()));
      ASSERT_EQ(vals.size(), ref.data.size());
      size_t nonFinite = 0;
      for (double v : vals)
        nonFinite += !std::isfinite(v);
      EXPECT_EQ(nonFinite, 0u) << "NaN/Inf in the cache after the run";
      Tolerance tol = toleranceFor(ref.dtype, K, rmsOf(ref.data));
      std::string report;
      bool ok = attn::compare(ref, vals.data(), vals.size(), tol.rtol, tol.atol,
                              report);
      EXPECT_TRUE(ok) << mc.label << " [" << sizes.str() << "] inout '"
                      << ins[i].name << "' after the run (K=" << K
                      << "): " << report;
      if (verbose())
        std::cout << "[e2e] " << mc.label << " [" << sizes.str() << "] inout "
                  << ins[i].name << ": " << report << "\n";
      if (si == 0)
        firstInouts.push_back(std::move(vals));
    }
  }
  if (!lm.model)
    return;

  // Back to the first sizes after the others, through run_into with
  // outputs pre-filled with NaN bytes: the same .so must give bit-identical
  // results (no state carried between calls or sizes) and write every
  // element (masked rows too).
  {
    SCOPED_TRACE("rerun (run_into) of sizes " + mc.sizes[0].str());
    Workload w; // the same inputs; no reference needed
    ASSERT_TRUE(prepare(mc, lm, mc.sizes[0], 0, w, /*reference=*/false));
    std::vector<attn::Tensor> outs;
    for (const RefTensor &ref : firstExpected) {
      auto t = attn::Tensor::create(toRuntime(ref.dtype), ref.shape);
      ASSERT_TRUE(t) << t.status().message;
      std::memset(t->data(), 0xff, t->nbytes());
      outs.push_back(t.take());
    }
    attn::Status st = lm.model->runInto(views(w.inputs), outs);
    ASSERT_TRUE(st) << st.message;
    ASSERT_EQ(outs.size(), firstRun.size());
    for (size_t o = 0; o < outs.size(); ++o) {
      std::vector<double> vals = toDoubles(outs[o]);
      ASSERT_EQ(vals.size(), firstRun[o].size());
      size_t diff = 0, first = vals.size();
      for (size_t i = 0; i < vals.size(); ++i)
        if (std::memcmp(&vals[i], &firstRun[o][i], sizeof(double)) != 0) {
          ++diff;
          first = std::min(first, i);
        }
      EXPECT_EQ(diff, 0u) << "output " << o
                          << " differs from the first run at the same sizes"
                          << " (first at " << first << ": "
                          << (first < vals.size() ? vals[first] : 0) << " vs "
                          << (first < vals.size() ? firstRun[o][first] : 0)
                          << ")";
    }
    // The inouts, fresh from prepare(), are written the same way again.
    std::vector<TensorSpec> ins = specsOf(*lm.ast, false);
    size_t k = 0;
    for (size_t i = 0; i < ins.size(); ++i) {
      if (!ins[i].inout)
        continue;
      ASSERT_LT(k, firstInouts.size());
      std::vector<double> vals =
          toDoubles(attn::TensorView(w.inputs[i].rt.get()));
      EXPECT_TRUE(vals == firstInouts[k++])
          << "inout '" << ins[i].name
          << "' differs from the first run at the same sizes";
    }
  }
}

void PrintTo(const ModelCase &c, std::ostream *os) {
  *os << c.model << " (" << fs::path(c.file).filename().string() << ")";
}

INSTANTIATE_TEST_SUITE_P(Models, E2E, ::testing::ValuesIn(allCases()),
                         [](const ::testing::TestParamInfo<ModelCase> &info) {
                           return info.param.label;
                         });

//===----------------------------------------------------------------------===//
// Error paths on a compiled model
//===----------------------------------------------------------------------===//
//
// err_target<B, S>(x: f32[B, S, 16], lengths: i32[B]) with params
// w: f32[16, 16], b: f32[16]. Every bad call must return an error status
// whose message names the offending tensor; afterwards a good call still
// works.

class Errors : public ::testing::Test {
protected:
  void SetUp() override {
    if (referenceOnly())
      GTEST_SKIP() << "ATTN_E2E_REFERENCE_ONLY: no compiled model";
    file = std::string(ATTN_E2E_MODELS_DIR) + "/err_target.attn";
    ASSERT_TRUE(load(file, "err_target", lm));
    mc.file = file;
    mc.model = "err_target";
    mc.label = "err_target";
    mc.lengthsSym = "S";
    good.syms = {{"B", 2}, {"S", 5}};
    ASSERT_TRUE(prepare(mc, lm, good, 0, w));
  }

  std::vector<attn::TensorView> goodInputs() const { return views(w.inputs); }

  /// A zero-filled tensor.
  static attn::Tensor make(attn_dtype t, std::vector<int64_t> shape) {
    auto r = attn::Tensor::create(t, shape);
    EXPECT_TRUE(r) << r.status().message;
    return r.take();
  }

  /// A run on `wl`'s inputs (sizes `s`) matches the reference.
  void expectMatches(const SizeSet &s, const Workload &wl) {
    auto outs = lm.model->run(views(wl.inputs));
    ASSERT_TRUE(outs) << outs.status().message;
    std::vector<double> vals = toDoubles((*outs)[0]);
    Tolerance tol = toleranceFor(DType::F32, reductionLength(*lm.ast, s),
                                 rmsOf(wl.expected[0].data));
    std::string report;
    EXPECT_TRUE(attn::compare(wl.expected[0], vals.data(), vals.size(),
                              tol.rtol, tol.atol, report))
        << report;
  }

  /// A good run after the bad ones must still match the reference.
  void expectStillWorks() { expectMatches(good, w); }

  std::string file;
  ModelCase mc;
  LoadedModel lm;
  SizeSet good;
  Workload w;
};

#define EXPECT_ERROR_NAMING(STATUS, CODE, NAME)                               \
  do {                                                                         \
    const attn::Status &st_ = (STATUS);                                        \
    EXPECT_FALSE(st_.ok()) << "expected an error naming " << NAME;            \
    EXPECT_EQ(st_.code, CODE)                                                  \
        << attn_status_name(st_.code) << ": " << st_.message;                  \
    EXPECT_NE(st_.message.find(NAME), std::string::npos)                       \
        << "message does not name " << NAME << ": " << st_.message;            \
  } while (0)

TEST_F(Errors, WrongInputDType) {
  // An f16 tensor where the model declares f32.
  attn::Tensor x = make(ATTN_F16, {2, 5, 16});
  auto in = goodInputs();
  in[0] = attn::TensorView(x.get());
  auto r = lm.model->run(in);
  EXPECT_ERROR_NAMING(r.status(), ATTN_ERR_DTYPE, "'x'");
  EXPECT_NE(r.status().message.find("f32"), std::string::npos)
      << r.status().message;
  // A float tensor for the i32 lengths.
  attn::Tensor l = make(ATTN_F32, {2});
  in = goodInputs();
  in[1] = attn::TensorView(l.get());
  r = lm.model->run(in);
  EXPECT_ERROR_NAMING(r.status(), ATTN_ERR_DTYPE, "'lengths'");
  expectStillWorks();
}

TEST_F(Errors, Float64Npy) {
  // A NumPy float64 array for the f32 input x: no silent conversion.
  std::string path = tempDir() + "/x_f64.npy";
  {
    std::string header = "{'descr': '<f8', 'fortran_order': False, "
                         "'shape': (2, 5, 16), }";
    while ((10 + header.size() + 1) % 64 != 0)
      header += ' ';
    header += '\n';
    std::ofstream f(path, std::ios::binary);
    f.write("\x93NUMPY\x01\x00", 8);
    uint16_t len = static_cast<uint16_t>(header.size());
    f.put(char(len & 0xff));
    f.put(char(len >> 8));
    f << header;
    std::vector<double> data(2 * 5 * 16, 0.5);
    f.write(reinterpret_cast<const char *>(data.data()),
            std::streamsize(data.size() * sizeof(double)));
  }
  attn_tensor *t = nullptr;
  attn_status s = attn_npy_read_expect(path.c_str(), ATTN_F32, "input 'x'", &t);
  EXPECT_EQ(s, ATTN_ERR_DTYPE) << attn_last_error();
  std::string msg = attn_last_error();
  EXPECT_EQ(t, nullptr);
  EXPECT_NE(msg.find("'x'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("f8"), std::string::npos) << msg;
  EXPECT_NE(msg.find("f32"), std::string::npos) << msg;
  auto plain = attn::Tensor::readNpy(path);
  EXPECT_FALSE(plain) << "float64 .npy must not load silently";
  expectStillWorks();
}

TEST_F(Errors, WrongRank) {
  attn::Tensor x = make(ATTN_F32, {2, 80});
  auto in = goodInputs();
  in[0] = attn::TensorView(x.get());
  auto r = lm.model->run(in);
  EXPECT_ERROR_NAMING(r.status(), ATTN_ERR_SHAPE, "'x'");
  expectStillWorks();
}

TEST_F(Errors, WrongStaticDim) {
  attn::Tensor x = make(ATTN_F32, {2, 5, 17});
  auto in = goodInputs();
  in[0] = attn::TensorView(x.get());
  auto r = lm.model->run(in);
  EXPECT_ERROR_NAMING(r.status(), ATTN_ERR_SHAPE, "'x'");
  expectStillWorks();
}

TEST_F(Errors, ConflictingSymbolicSizes) {
  // x binds B=2; lengths says B=3.
  attn::Tensor l = make(ATTN_I32, {3});
  auto in = goodInputs();
  in[1] = attn::TensorView(l.get());
  auto r = lm.model->run(in);
  EXPECT_ERROR_NAMING(r.status(), ATTN_ERR_SHAPE, "'lengths'");
  EXPECT_NE(r.status().message.find("B"), std::string::npos)
      << r.status().message;
  expectStillWorks();
}

TEST_F(Errors, WrongInputCount) {
  auto in = goodInputs();
  in.pop_back();
  auto r = lm.model->run(in);
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.status().message.empty());
  expectStillWorks();
}

TEST_F(Errors, MissingWeight) {
  // A fresh model handle with only w bound: running names the unbound b.
  auto m2 = lm.lib->model("err_target");
  ASSERT_TRUE(m2) << m2.status().message;
  ASSERT_TRUE(m2->bindParam("w", attn::TensorView(lm.params[0].rt.get())));
  auto r = m2->run(goodInputs());
  EXPECT_ERROR_NAMING(r.status(), ATTN_ERR_NOT_FOUND, "'b'");

  // A weights file without b: binding fails and names b.
  std::string path = tempDir() + "/missing_b.safetensors";
  ASSERT_TRUE(attn::Weights::write(
      path, {{"w", attn::TensorView(lm.params[0].rt.get())}}));
  auto weights = attn::Weights::open(path);
  ASSERT_TRUE(weights) << weights.status().message;
  auto m3 = lm.lib->model("err_target");
  ASSERT_TRUE(m3);
  attn::Status st = m3->bindWeights(*weights);
  EXPECT_ERROR_NAMING(st, ATTN_ERR_NOT_FOUND, "'b'");
  expectStillWorks();
}

TEST_F(Errors, WeightWrongShape) {
  attn::Tensor bad = make(ATTN_F32, {16, 15});
  attn::Status st = lm.model->bindParam("w", attn::TensorView(bad.get()));
  EXPECT_ERROR_NAMING(st, ATTN_ERR_SHAPE, "'w'");

  std::string path = tempDir() + "/bad_w.safetensors";
  ASSERT_TRUE(attn::Weights::write(
      path, {{"w", attn::TensorView(bad.get())},
             {"b", attn::TensorView(lm.params[1].rt.get())}}));
  auto weights = attn::Weights::open(path);
  ASSERT_TRUE(weights) << weights.status().message;
  st = lm.model->bindWeights(*weights);
  EXPECT_ERROR_NAMING(st, ATTN_ERR_SHAPE, "'w'");
  // Nothing was bound by the failed calls: the old weights still work.
  expectStillWorks();
}

TEST_F(Errors, WeightWrongDType) {
  attn::Tensor bad = make(ATTN_F16, {16});
  attn::Status st = lm.model->bindParam("b", attn::TensorView(bad.get()));
  EXPECT_ERROR_NAMING(st, ATTN_ERR_DTYPE, "'b'");
  expectStillWorks();
}

TEST_F(Errors, UnknownParamName) {
  attn::Status st =
      lm.model->bindParam("nope", attn::TensorView(lm.params[1].rt.get()));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message.find("nope"), std::string::npos) << st.message;
  expectStillWorks();
}

TEST(ErrorsSymbolicWeight, ConflictsWithInput) {
  // param pe: f32[S, 32] bound with S=5, then x: [2, 7, 32] says S=7.
  if (referenceOnly())
    GTEST_SKIP() << "ATTN_E2E_REFERENCE_ONLY: no compiled model";
  LoadedModel lm;
  ASSERT_TRUE(load(std::string(ATTN_E2E_MODELS_DIR) + "/param_symbolic.attn",
                   "param_symbolic", lm));
  std::vector<float> pe(5 * 32, 0.5f), x(2 * 7 * 32, 0.25f);
  auto peT = attn::Tensor::wrap(ATTN_F32, {5, 32}, pe.data());
  auto xT = attn::Tensor::wrap(ATTN_F32, {2, 7, 32}, x.data());
  ASSERT_TRUE(peT && xT);
  ASSERT_TRUE(lm.model->bindParam("pe", attn::TensorView(peT->get())));
  auto r = lm.model->run({attn::TensorView(xT->get())});
  EXPECT_ERROR_NAMING(r.status(), ATTN_ERR_SHAPE, "'x'");
  EXPECT_NE(r.status().message.find("'pe'"), std::string::npos)
      << r.status().message;
  // With a matching table the same call works.
  std::vector<float> pe7(7 * 32, 0.5f);
  auto pe7T = attn::Tensor::wrap(ATTN_F32, {7, 32}, pe7.data());
  ASSERT_TRUE(pe7T);
  ASSERT_TRUE(lm.model->bindParam("pe", attn::TensorView(pe7T->get())));
  auto ok = lm.model->run({attn::TensorView(xT->get())});
  EXPECT_TRUE(ok) << ok.status().message;
}

TEST_F(Errors, EmptyOutputsRunWithoutThePipeline) {
  // S=0 or B=0: every output is empty, as in PyTorch; nothing to compute.
  for (std::vector<int64_t> xs : {std::vector<int64_t>{2, 0, 16}, {0, 5, 16}}) {
    attn::Tensor x = make(ATTN_F32, xs);
    attn::Tensor l = make(ATTN_I32, {xs[0]});
    auto r =
        lm.model->run({attn::TensorView(x.get()), attn::TensorView(l.get())});
    ASSERT_TRUE(r) << r.status().message;
    EXPECT_EQ((*r)[0].shape(), xs);
  }
  expectStillWorks();
}

TEST(ErrorsZeroSize, AttentionOverNoKeys) {
  // Sk=0 with Sq=3: the output is not empty, and the generated code needs
  // at least one key; the error names the size, not only Halide's bounds.
  if (referenceOnly())
    GTEST_SKIP() << "ATTN_E2E_REFERENCE_ONLY: no compiled model";
  LoadedModel lm;
  ASSERT_TRUE(load(std::string(ATTN_E2E_MODELS_DIR) + "/attn_causal.attn",
                   "attn_causal", lm));
  std::vector<float> q(1 * 2 * 3 * 16, 0.5f);
  auto qT = attn::Tensor::wrap(ATTN_F32, {1, 2, 3, 16}, q.data());
  auto kT = attn::Tensor::create(ATTN_F32, {1, 2, 0, 16});
  ASSERT_TRUE(qT && kT);
  attn::TensorView k(kT->get());
  auto r = lm.model->run({attn::TensorView(qT->get()), k, k});
  EXPECT_ERROR_NAMING(r.status(), ATTN_ERR_SHAPE, "Sk=0 (from 'k')");
  EXPECT_NE(r.status().message.find("every output is empty"), std::string::npos)
      << r.status().message;
}

/// A compiled model of tests/e2e/models with its weights bound and good
/// inputs for `sizes`; the reference's outputs in `w.expected`.
::testing::AssertionResult loadWithWeights(const std::string &name,
                                           const SizeSet &sizes,
                                           LoadedModel &lm, Workload &w) {
  ModelCase mc;
  mc.file = std::string(ATTN_E2E_MODELS_DIR) + "/" + name + ".attn";
  mc.model = name;
  mc.label = name;
  if (auto r = load(mc.file, name, lm); !r)
    return r;
  return prepare(mc, lm, sizes, 0, w);
}

TEST(ErrorsEmbedding, IdOutsideTheTableNamesTheIds) {
  // embedding.attn gathers from tok: f32[11, 16] by `ids`: an id of 11 or
  // -1 fails the call with a message naming the ids, in the generated code
  // and in the reference; the good ids still run afterwards.
  if (referenceOnly())
    GTEST_SKIP() << "ATTN_E2E_REFERENCE_ONLY: no compiled model";
  LoadedModel lm;
  Workload w;
  SizeSet sizes;
  sizes.syms = {{"B", 2}, {"S", 3}};
  ASSERT_TRUE(loadWithWeights("embedding", sizes, lm, w));
  attn::Tensor ids = attn::Tensor::create(ATTN_I32, {2, 3}).take();
  for (int32_t bad : {11, -1}) {
    for (int i = 0; i < 6; ++i)
      ids.data<int32_t>()[i] = i == 4 ? bad : i;
    auto r = lm.model->run({attn::TensorView(ids.get())});
    EXPECT_ERROR_NAMING(r.status(), ATTN_ERR_PIPELINE, "ids");
    EXPECT_NE(r.status().message.find(std::to_string(bad)), std::string::npos)
        << r.status().message;

    RefTensor refIds({2, 3}, DType::I32);
    for (int i = 0; i < 6; ++i)
      refIds.data[i] = ids.data<int32_t>()[i];
    std::vector<RefTensor> outs;
    std::string err;
    EXPECT_FALSE(
        attn::evaluate(*lm.ast, {{"ids", refIds}}, lm.refWeights, outs, err));
    EXPECT_NE(err.find("'ids' holds id " + std::to_string(bad)),
              std::string::npos)
        << err;
  }
  auto ok = lm.model->run(views(w.inputs));
  EXPECT_TRUE(ok) << ok.status().message;
}

TEST(ErrorsSlice, RangePastTheDimFails) {
  // slice.attn reads table[0:S, :] of a 64-row param: S = 65 runs past it.
  // Both sides refuse (the generated code names the table); S = 64 works.
  if (referenceOnly())
    GTEST_SKIP() << "ATTN_E2E_REFERENCE_ONLY: no compiled model";
  LoadedModel lm;
  Workload w;
  SizeSet sizes;
  sizes.syms = {{"B", 1}, {"S", 64}};
  ASSERT_TRUE(loadWithWeights("slice", sizes, lm, w));
  auto ok = lm.model->run(views(w.inputs));
  ASSERT_TRUE(ok) << ok.status().message;

  attn::Tensor x = attn::Tensor::create(ATTN_F32, {1, 65, 12}).take();
  attn::Tensor y = attn::Tensor::create(ATTN_F32, {1, 3, 6}).take();
  attn::Tensor i = attn::Tensor::create(ATTN_I32, {1, 65}).take();
  auto r = lm.model->run({attn::TensorView(x.get()), attn::TensorView(y.get()),
                          attn::TensorView(i.get())});
  EXPECT_ERROR_NAMING(r.status(), ATTN_ERR_PIPELINE, "table");

  std::vector<RefTensor> outs;
  std::string err;
  EXPECT_FALSE(attn::evaluate(*lm.ast,
                              {{"x", RefTensor({1, 65, 12}, DType::F32)},
                               {"y", RefTensor({1, 3, 6}, DType::F32)},
                               {"i", RefTensor({1, 65}, DType::I32)}},
                              lm.refWeights, outs, err));
  EXPECT_NE(err.find("range 0:65 is out of range for dim 0 of f32[64, 12]"),
            std::string::npos)
      << err;
}

/// The index of input `name` of `lm`'s model.
size_t inputIndex(const LoadedModel &lm, const std::string &name) {
  std::vector<TensorSpec> ins = specsOf(*lm.ast, false);
  for (size_t i = 0; i < ins.size(); ++i)
    if (ins[i].name == name)
      return i;
  ADD_FAILURE() << "no input " << name;
  return 0;
}

TEST(ErrorsCache, StartPastTheCacheNamesTheCache) {
  // kv_cache.attn at B=2, S=5, T=13: a start of 9 (9 + 5 > 13) or -1 fails
  // the call with a message naming a cache, leaves the caches as they were
  // (nothing is written back), and the reference refuses the same starts;
  // starts 8 and 0 (the largest and smallest that fit) work afterwards.
  // The same through a model call (cache_stack: the callee's write fails).
  if (referenceOnly())
    GTEST_SKIP() << "ATTN_E2E_REFERENCE_ONLY: no compiled model";
  for (const char *name : {"kv_cache", "cache_stack"}) {
    SCOPED_TRACE(name);
    LoadedModel lm;
    Workload w;
    ModelCase mc;
    mc.file = std::string(ATTN_E2E_MODELS_DIR) + "/" +
              (std::string(name) == "kv_cache" ? "kv_cache" : "cache_layers") +
              ".attn";
    mc.model = name;
    mc.label = name;
    SizeSet sizes;
    sizes.syms = {{"B", 2}, {"S", 5}, {"T", 13}};
    ASSERT_TRUE(load(mc.file, name, lm));
    ASSERT_TRUE(prepare(mc, lm, sizes, 0, w));
    const size_t start = inputIndex(lm, "start"),
                 kc = inputIndex(lm, "k_cache"), vc = inputIndex(lm, "v_cache");
    std::vector<double> kBefore =
        toDoubles(attn::TensorView(w.inputs[kc].rt.get()));
    std::vector<double> vBefore =
        toDoubles(attn::TensorView(w.inputs[vc].rt.get()));
    for (auto [s0, s1] : {std::pair<int32_t, int32_t>{0, 9}, {-1, 0}}) {
      int32_t *st = w.inputs[start].rt.data<int32_t>();
      st[0] = s0;
      st[1] = s1;
      auto r = lm.model->run(views(w.inputs));
      EXPECT_FALSE(r.ok()) << "start [" << s0 << ", " << s1 << "] ran";
      EXPECT_EQ(r.status().code, ATTN_ERR_PIPELINE) << r.status().message;
      const std::string &msg = r.status().message;
      if (verbose())
        std::cout << "[e2e] " << name << " start [" << s0 << ", " << s1
                  << "]: " << msg << "\n";
      EXPECT_TRUE(msg.find("k_cache") != std::string::npos ||
                  msg.find("v_cache") != std::string::npos)
          << "message does not name a cache: " << msg;
      EXPECT_TRUE(toDoubles(attn::TensorView(w.inputs[kc].rt.get())) ==
                      kBefore &&
                  toDoubles(attn::TensorView(w.inputs[vc].rt.get())) == vBefore)
          << "a failed call wrote into the caches";

      std::map<std::string, RefTensor> refIn;
      std::vector<TensorSpec> ins = specsOf(*lm.ast, false);
      for (size_t i = 0; i < ins.size(); ++i) {
        RefTensor t(w.inputs[i].rt.shape(), ins[i].dtype);
        t.data = toDoubles(attn::TensorView(w.inputs[i].rt.get()));
        refIn[ins[i].name] = t;
      }
      std::vector<RefTensor> outs;
      std::string err;
      EXPECT_FALSE(attn::evaluate(*lm.ast, refIn, lm.refWeights, outs, err));
      EXPECT_NE(err.find("'k_cache' holds 13 positions but start[" +
                         std::string(s0 < 0 ? "0] = -1" : "1] = 9")),
                std::string::npos)
          << err;
    }
    int32_t *st = w.inputs[start].rt.data<int32_t>();
    st[0] = 8;
    st[1] = 0;
    auto ok = lm.model->run(views(w.inputs));
    EXPECT_TRUE(ok) << ok.status().message;
  }
}

//===----------------------------------------------------------------------===//
// Thread count of a loaded library
//===----------------------------------------------------------------------===//

/// The process's thread count (/proc/self/status), -1 if unreadable.
int processThreads() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Threads:", 0) == 0)
      return std::atoi(line.c_str() + 8);
  return -1;
}

/// attn_library_set_num_threads takes effect after the library has run
/// (Halide 14 keeps the workers it spawned; the library restarts its pool),
/// and the results stay right at every count.
TEST_F(Errors, SetNumThreadsAfterARun) {
  if (processThreads() < 0)
    GTEST_SKIP() << "no /proc/self/status";
  // B=3, S=129: the projection and attention have several parallel tasks.
  SizeSet big;
  big.syms = {{"B", 3}, {"S", 129}};
  Workload wb;
  ASSERT_TRUE(prepare(mc, lm, big, 1, wb));
  auto runOk = [&] { expectMatches(big, wb); };
  ASSERT_TRUE(lm.lib->setNumThreads(1).ok());
  const int base = processThreads();
  runOk();
  EXPECT_EQ(processThreads(), base) << "one thread: no worker";
  ASSERT_TRUE(lm.lib->setNumThreads(3).ok());
  runOk();
  EXPECT_EQ(processThreads(), base + 2) << "three threads: two workers";
  // Down again after the pool exists: its workers are stopped.
  ASSERT_TRUE(lm.lib->setNumThreads(1).ok());
  EXPECT_EQ(processThreads(), base);
  runOk();
  EXPECT_EQ(processThreads(), base) << "one thread after three: no worker";
  ASSERT_TRUE(lm.lib->setNumThreads(0).ok()); // back to the default
}

} // namespace
