//===- attn-run.cpp - Run a model of a compiled attnc library -------------===//
//
//   attn-run LIB.so [--model NAME] [--weights W.safetensors]
//            [--copy-weights] --input NAME=FILE.npy ...
//            [--output FILE.npy ...] [--repeat N] [--threads N]
//            [--memory-limit BYTES]
//   attn-run --info LIB.so
//
// Inputs and outputs are .npy files, weights a .safetensors file. Outputs
// are written in declaration order and in their declared dtype; without
// --output the model runs and a note names what was not written. With
// --repeat N the model runs N times and the median time is printed. The
// weights are mapped; --copy-weights reads them into memory instead, so
// that the file may change while the model runs (see ATTN_WEIGHTS_COPY).
// --memory-limit BYTES (with an optional K, M or G suffix, powers of 1024)
// refuses a run whose inputs, outputs and scratch exceed it, before its
// outputs are allocated (attn_library_set_memory_limit).
// Errors go to stderr with exit status 1.
//
//===----------------------------------------------------------------------===//
#include "attn/runtime.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

const char *usage =
    "usage: attn-run LIB.so [--model NAME] [--weights W.safetensors]\n"
    "                [--copy-weights] --input NAME=FILE.npy ...\n"
    "                [--output FILE.npy ...] [--repeat N] [--threads N]\n"
    "                [--memory-limit BYTES[K|M|G]]\n"
    "       attn-run --info LIB.so\n";

struct Options {
  std::string library;
  std::string model;
  std::string weights;
  std::vector<std::pair<std::string, std::string>> inputs; // name, file
  std::vector<std::string> outputs;
  int repeat = 0; // 0: run once, print no timing
  int threads = -1;
  uint64_t memoryLimit = 0; // 0: none
  bool info = false;
  bool copyWeights = false;
};

[[noreturn]] void die(const std::string &message) {
  std::fprintf(stderr, "attn-run: %s\n", message.c_str());
  std::exit(1);
}

int parseCount(const std::string &flag, const std::string &value, int min) {
  char *end = nullptr;
  long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end || v < min || v > 1000000)
    die(flag + " expects an integer >= " + std::to_string(min) + ", got '" +
        value + "'");
  return (int)v;
}

// "1500", "64K", "512M", "2G" (powers of 1024).
uint64_t parseBytes(const std::string &flag, const std::string &value) {
  std::string digits = value;
  int shift = 0;
  if (!digits.empty()) {
    const char *units = "KMG";
    if (const char *u = std::strchr(units, digits.back()); u && *u) {
      shift = 10 * (int)(u - units + 1);
      digits.pop_back();
    }
  }
  char *end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(digits.c_str(), &end, 10);
  if (digits.empty() || !std::isdigit((unsigned char)digits[0]) || *end ||
      errno == ERANGE || v == 0 || v > (UINT64_MAX >> shift))
    die(flag + " expects a byte count > 0 with an optional K, M or G "
               "suffix, got '" +
        value + "'");
  return (uint64_t)v << shift;
}

Options parseArgs(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(usage, stdout);
      std::exit(0);
    }
    if (arg == "--info") {
      o.info = true;
      continue;
    }
    if (arg == "--copy-weights") {
      o.copyWeights = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      if (!o.library.empty())
        die("unexpected argument '" + arg + "' (library already given)\n" +
            usage);
      o.library = arg;
      continue;
    }
    // --flag VALUE or --flag=VALUE
    std::string flag = arg, value;
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else {
      if (i + 1 >= argc)
        die(flag + " needs a value\n" + usage);
      value = argv[++i];
    }
    if (flag == "--model") {
      o.model = value;
    } else if (flag == "--weights") {
      o.weights = value;
    } else if (flag == "--input") {
      size_t e = value.find('=');
      if (e == std::string::npos || e == 0 || e + 1 == value.size())
        die("--input expects NAME=FILE.npy, got '" + value + "'");
      o.inputs.emplace_back(value.substr(0, e), value.substr(e + 1));
    } else if (flag == "--output") {
      o.outputs.push_back(value);
    } else if (flag == "--repeat") {
      o.repeat = parseCount(flag, value, 1);
    } else if (flag == "--threads") {
      o.threads = parseCount(flag, value, 0);
    } else if (flag == "--memory-limit") {
      o.memoryLimit = parseBytes(flag, value);
    } else {
      die("unknown option '" + flag + "'\n" + usage);
    }
  }
  if (o.library.empty())
    die(std::string("no library given\n") + usage);
  return o;
}

// A size program (abi.h) in infix: "((B * S) * 8)"; "unknown" if empty.
std::string formatSize(const attn_size_expr &e, const attn_model_desc &md) {
  static const char *const ops[] = {"",   "",   "+",    "-",     "*",  "/",
                                    "%",  "min", "max", "<",     "<=", "==",
                                    "!=", "&&", "||",  "!",     "select"};
  std::vector<std::string> st;
  for (int32_t i = 0; i < e.len; ++i) {
    int64_t op = e.code[2 * i], arg = e.code[2 * i + 1];
    if (op == ATTN_X_CONST || op == ATTN_X_SYM) {
      st.push_back(op == ATTN_X_CONST ? std::to_string(arg)
                                      : md.sym_names[arg]);
      continue;
    }
    int n = op == ATTN_X_NOT ? 1 : op == ATTN_X_SELECT ? 3 : 2;
    std::vector<std::string> a(st.end() - n, st.end());
    st.resize(st.size() - n);
    if (op == ATTN_X_NOT)
      st.push_back("!" + a[0]);
    else if (op == ATTN_X_SELECT || op == ATTN_X_MIN || op == ATTN_X_MAX)
      st.push_back(std::string(ops[op]) + "(" + a[0] + ", " + a[1] +
                   (n == 3 ? ", " + a[2] : "") + ")");
    else
      st.push_back("(" + a[0] + " " + ops[op] + " " + a[1] + ")");
  }
  return st.empty() ? "unknown" : st.back() + " bytes";
}

void printInfo(attn::Library &lib, const std::string &path) {
  const attn_library_desc *d = lib.desc();
  std::printf("library %s (target %s)\n", path.c_str(),
              d->target ? d->target : "unknown");
  for (int32_t i = 0; i < d->num_models; ++i) {
    const attn_model_desc &md = d->models[i];
    auto model = lib.model(md.name);
    if (!model)
      die(model.status().message);
    std::string syms;
    for (int32_t s = 0; s < md.num_syms; ++s)
      if (!std::strchr(md.sym_names[s], '+')) // not a derived size ("T+1")
        syms += (syms.empty() ? "" : ", ") + std::string(md.sym_names[s]);
    std::printf("model %s%s\n", md.name,
                syms.empty() ? "" : ("<" + syms + ">").c_str());
    for (const attn_tensor_desc *t : model->inputs())
      std::printf("  %s %s: %s\n", t->role == ATTN_INOUT ? "inout" : "input",
                  t->name, model->typeString(t).c_str());
    for (const attn_tensor_desc *t : model->outputs())
      std::printf("  output %s: %s\n", t->name, model->typeString(t).c_str());
    for (const attn_tensor_desc *t : model->params()) {
      std::string weight;
      if (t->weight_name && std::strcmp(t->weight_name, t->name) != 0)
        weight = std::string(" (weights name '") + t->weight_name + "')";
      std::printf("  param %s: %s%s\n", t->name, model->typeString(t).c_str(),
                  weight.c_str());
    }
    // The runtime validated the program when it opened the library.
    attn_size_expr none = {0, nullptr};
    std::printf("  scratch: %s\n",
                formatSize(d->abi_version >= 2 && d->memory
                               ? d->memory[i].scratch
                               : none,
                           md)
                    .c_str());
  }
}

std::string joinNames(const std::vector<const attn_tensor_desc *> &ts) {
  std::string s;
  for (const attn_tensor_desc *t : ts)
    s += (s.empty() ? "" : ", ") + std::string(t->name);
  return s;
}

/// Tensors of the weights file that no param uses are ignored by the
/// runtime (as Hugging Face ignores unexpected keys); say so on stderr, as
/// from_pretrained warns, naming the first few.
void noteUnusedWeights(const attn::Weights &weights,
                       const std::vector<const attn_tensor_desc *> &params,
                       const std::string &path, const std::string &model) {
  std::vector<std::string> unused;
  for (const std::string &name : weights.names())
    if (std::none_of(
            params.begin(), params.end(), [&](const attn_tensor_desc *p) {
              return name == (p->weight_name ? p->weight_name : p->name);
            }))
      unused.push_back(name);
  if (unused.empty())
    return;
  std::string list;
  const size_t shown = 5;
  for (size_t i = 0; i < unused.size() && i < shown; ++i)
    list += (i ? ", '" : "'") + unused[i] + "'";
  if (unused.size() > shown)
    list += ", ... (" + std::to_string(unused.size() - shown) + " more)";
  std::fprintf(stderr,
               "attn-run: note: %s holds %zu tensor%s that %s does not use "
               "(ignored): %s\n",
               path.c_str(), unused.size(), unused.size() > 1 ? "s" : "",
               model.c_str(), list.c_str());
}

int run(const Options &o) {
  auto lib = attn::Library::open(o.library);
  if (!lib)
    die(lib.status().message);
  if (o.info) {
    printInfo(*lib, o.library);
    return 0;
  }
  if (o.threads >= 0)
    if (attn::Status st = lib->setNumThreads(o.threads); !st)
      die(st.message);
  if (o.memoryLimit)
    if (attn::Status st = lib->setMemoryLimit(o.memoryLimit); !st)
      die(st.message);
  auto model = lib->model(o.model);
  if (!model)
    die(model.status().message);
  std::string modelName = std::string("model '") + model->desc()->name + "'";

  auto params = model->params();
  if (!o.weights.empty()) {
    auto weights = attn::Weights::open(
        o.weights, o.copyWeights ? ATTN_WEIGHTS_COPY : ATTN_WEIGHTS_MAP);
    if (!weights)
      die(weights.status().message);
    if (attn::Status st = model->bindWeights(*weights); !st)
      die(st.message);
    noteUnusedWeights(*weights, params, o.weights, modelName);
  } else if (!params.empty()) {
    die(modelName + " has " + std::to_string(params.size()) + " params (" +
        joinNames(params) + "); pass --weights W.safetensors");
  }

  auto inputDescs = model->inputs();
  std::vector<std::string> files(inputDescs.size());
  for (const auto &[name, file] : o.inputs) {
    auto it = std::find_if(
        inputDescs.begin(), inputDescs.end(),
        [&](const attn_tensor_desc *t) { return name == t->name; });
    if (it == inputDescs.end())
      die(modelName + " has no input '" + name +
          "' (inputs: " + joinNames(inputDescs) + ")");
    size_t k = it - inputDescs.begin();
    if (!files[k].empty())
      die("input '" + name + "' is given twice");
    files[k] = file;
  }
  std::vector<attn::Tensor> inputs;
  std::vector<attn::TensorView> views;
  for (size_t k = 0; k < inputDescs.size(); ++k) {
    std::string what = std::string("input '") + inputDescs[k]->name + "'";
    if (files[k].empty())
      die("missing " + what + ": pass --input " + inputDescs[k]->name +
          "=FILE.npy");
    attn_tensor *t;
    if (attn_npy_read_expect(files[k].c_str(), inputDescs[k]->dtype,
                             what.c_str(), &t) != ATTN_OK)
      die(attn_last_error());
    inputs.emplace_back(t);
    views.push_back(inputs.back());
  }

  auto outputDescs = model->outputs();
  if (!o.outputs.empty() && o.outputs.size() != outputDescs.size())
    die(modelName + " has " + std::to_string(outputDescs.size()) +
        " output(s) (" + joinNames(outputDescs) + ") but " +
        std::to_string(o.outputs.size()) + " --output were given");

  using Clock = std::chrono::steady_clock;
  std::vector<double> times;
  auto start = Clock::now();
  auto result = model->run(views);
  times.push_back(
      std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  if (!result)
    die(result.status().message);
  std::vector<attn::Tensor> outputs = result.take();
  for (int r = 1; r < o.repeat; ++r) {
    start = Clock::now();
    attn::Status st = model->runInto(views, outputs);
    times.push_back(
        std::chrono::duration<double, std::milli>(Clock::now() - start)
            .count());
    if (!st)
      die(st.message);
  }
  if (o.repeat > 0) {
    std::vector<double> sorted = times;
    std::sort(sorted.begin(), sorted.end());
    size_t n = sorted.size();
    double median =
        n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    std::printf("%s: median %.3f ms over %zu runs (min %.3f, max %.3f)\n",
                model->desc()->name, median, n, sorted.front(), sorted.back());
  }
  for (size_t i = 0; i < o.outputs.size(); ++i)
    if (attn::Status st = outputs[i].writeNpy(o.outputs[i]); !st)
      die(st.message);
  if (o.outputs.empty()) { // a timing run, or a check of the inputs
    std::string shapes;
    for (size_t i = 0; i < outputs.size(); ++i) {
      std::string dims;
      for (int64_t d : outputs[i].shape())
        dims += (dims.empty() ? "" : ", ") + std::to_string(d);
      shapes +=
          std::string(i ? ", " : "") + outputDescs[i]->name + " [" + dims + "]";
    }
    std::fprintf(stderr,
                 "attn-run: note: no --output given; computed %s, not "
                 "written\n",
                 shapes.c_str());
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) { return run(parseArgs(argc, argv)); }
