//===- attn-randn.cpp - Seeded random weights and inputs for a model ------===//
//
//   attn-randn LIB.so [--model NAME] --seed N --size SYM=VALUE ...
//              [--weights OUT.safetensors] [--inputs-dir DIR]
//
// Writes every param of the model to OUT.safetensors (under its weights
// name) and every input to DIR/NAME.npy, in the declared dtypes:
//  - rank >= 2 float params: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in =
//    the last dim (PyTorch's Linear layout [out, in]);
//  - rank-1 float params: biases (names ending in "_b", "bias", "beta") and
//    other vectors U(-0.1, 0.1); gains (names ending in "_g" or "g", or
//    containing "gamma", "norm", "ln") 1 + U(-0.1, 0.1);
//  - float inputs: N(0, 1);
//  - i32 inputs: positions (a name containing "pos", or rank 2) count
//    0..n-1 along the last dim; other rank-1 inputs are lengths, uniform in
//    [1, the largest size of the other symbols (or of all if there is no
//    other)]; otherwise uniform in [0, the largest size);
//  - bool tensors: true with probability 0.8.
// Each tensor draws from its own xoshiro256** stream seeded from the seed
// and its name, so the output depends only on the seed and the sizes.
//
//===----------------------------------------------------------------------===//
#include "attn/runtime.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace {

const char *usage =
    "usage: attn-randn LIB.so [--model NAME] --seed N --size SYM=VALUE ...\n"
    "                  [--weights OUT.safetensors] [--inputs-dir DIR]\n";

[[noreturn]] void die(const std::string &message) {
  std::fprintf(stderr, "attn-randn: %s\n", message.c_str());
  std::exit(1);
}

uint64_t splitmix64(uint64_t &state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// xoshiro256** (Blackman and Vigna), seeded through splitmix64.
class Rng {
public:
  explicit Rng(uint64_t seed) {
    for (uint64_t &w : s)
      w = splitmix64(seed);
  }
  uint64_t next() {
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
  // Uniform in [0, 1).
  double uniform() { return (double)(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [lo, hi].
  int64_t integer(int64_t lo, int64_t hi) {
    return lo + (int64_t)(next() % (uint64_t)(hi - lo + 1));
  }
  // Standard normal by Box-Muller (one value per call, for simplicity).
  double normal() {
    double u1 = 1.0 - uniform(); // (0, 1]
    double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }

private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s[4];
};

uint64_t streamSeed(uint64_t seed, const std::string &kind,
                    const std::string &name) {
  uint64_t h = 0xcbf29ce484222325ull; // FNV-1a of "kind:name"
  for (char c : kind + ":" + name)
    h = (h ^ (uint8_t)c) * 0x100000001b3ull;
  uint64_t state = seed ^ h;
  return splitmix64(state);
}

void store(attn::Tensor &t, int64_t i, double v) {
  switch (t.dtype()) {
  case ATTN_F32:
    t.data<float>()[i] = (float)v;
    break;
  case ATTN_F16:
    t.data<uint16_t>()[i] = attn_f32_to_f16((float)v);
    break;
  case ATTN_BF16:
    t.data<uint16_t>()[i] = attn_f32_to_bf16((float)v);
    break;
  case ATTN_I32:
    t.data<int32_t>()[i] = (int32_t)v;
    break;
  case ATTN_BOOL:
    t.data<uint8_t>()[i] = v != 0;
    break;
  }
}

bool isFloat(attn_dtype d) {
  return d == ATTN_F32 || d == ATTN_F16 || d == ATTN_BF16;
}

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool isGain(std::string name) {
  for (char &c : name)
    c = (char)std::tolower((unsigned char)c);
  if (endsWith(name, "_b") || endsWith(name, "bias") || endsWith(name, "beta"))
    return false;
  return endsWith(name, "_g") || name == "g" ||
         name.find("gamma") != std::string::npos ||
         name.find("norm") != std::string::npos ||
         name.find("ln") != std::string::npos;
}

struct Sizes {
  const attn_model_desc *model;
  std::vector<int64_t> value;

  std::vector<int64_t> shape(const attn_tensor_desc &t) const {
    std::vector<int64_t> s;
    for (int32_t i = 0; i < t.rank; ++i)
      s.push_back(ATTN_DIM_IS_SYMBOLIC(t.dims[i])
                      ? value[ATTN_DIM_SYMBOL(t.dims[i])]
                      : t.dims[i]);
    return s;
  }
  // The largest symbol size, leaving out symbol `except` (-1: none).
  int64_t largest(int except) const {
    int64_t m = 0;
    for (size_t k = 0; k < value.size(); ++k)
      if ((int)k != except)
        m = std::max(m, value[k]);
    return m;
  }
};

attn::Tensor makeParam(const attn_tensor_desc &p, const Sizes &sizes,
                       uint64_t seed) {
  std::vector<int64_t> shape = sizes.shape(p);
  auto t = attn::Tensor::create(p.dtype, shape);
  if (!t)
    die(t.status().message);
  Rng rng(streamSeed(seed, "param", p.name));
  int64_t n = t->numel();
  double bound = 0.1, center = 0.0;
  if (p.rank >= 2)
    bound = 1.0 / std::sqrt((double)std::max<int64_t>(shape.back(), 1));
  else if (p.rank == 1 && isGain(p.name))
    center = 1.0;
  for (int64_t i = 0; i < n; ++i) {
    double v;
    if (isFloat(p.dtype))
      v = center + rng.uniform(-bound, bound);
    else if (p.dtype == ATTN_BOOL)
      v = rng.uniform() < 0.8;
    else
      v = (double)rng.integer(0, 9);
    store(*t, i, v);
  }
  return t.take();
}

attn::Tensor makeInput(const attn_tensor_desc &d, const Sizes &sizes,
                       uint64_t seed) {
  std::vector<int64_t> shape = sizes.shape(d);
  auto t = attn::Tensor::create(d.dtype, shape);
  if (!t)
    die(t.status().message);
  Rng rng(streamSeed(seed, "input", d.name));
  int64_t n = t->numel();
  std::string name = d.name;
  bool positions = d.dtype == ATTN_I32 && d.rank >= 1 &&
                   (name.find("pos") != std::string::npos || d.rank == 2);
  bool lengths = d.dtype == ATTN_I32 && !positions && d.rank == 1;
  int lengthSym = lengths && ATTN_DIM_IS_SYMBOLIC(d.dims[0])
                      ? ATTN_DIM_SYMBOL(d.dims[0])
                      : -1;
  int64_t maxLength = sizes.largest(lengthSym);
  if (maxLength <= 0) // no other symbol: bounded by its own size
    maxLength = std::max<int64_t>(sizes.largest(-1), 1);
  int64_t maxValue = std::max<int64_t>(sizes.largest(-1), 1);
  for (int64_t i = 0; i < n; ++i) {
    double v;
    if (isFloat(d.dtype))
      v = rng.normal();
    else if (d.dtype == ATTN_BOOL)
      v = rng.uniform() < 0.8;
    else if (positions)
      v = (double)(i % shape.back());
    else if (lengths)
      v = (double)rng.integer(1, maxLength);
    else
      v = (double)rng.integer(0, maxValue - 1);
    store(*t, i, v);
  }
  return t.take();
}

int run(int argc, char **argv) {
  std::string library, modelName, weightsPath, inputsDir;
  std::map<std::string, int64_t> given;
  bool haveSeed = false;
  uint64_t seed = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (arg.rfind("--", 0) != 0) {
      if (!library.empty())
        die("unexpected argument '" + arg + "'\n" + usage);
      library = arg;
      continue;
    }
    std::string flag = arg, value;
    size_t eq = arg.find('=');
    if (eq != std::string::npos && arg.rfind("--size", 0) != 0) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else if (arg.rfind("--size=", 0) == 0) {
      flag = "--size";
      value = arg.substr(7);
    } else {
      if (i + 1 >= argc)
        die(flag + " needs a value\n" + usage);
      value = argv[++i];
    }
    char *end = nullptr;
    if (flag == "--model") {
      modelName = value;
    } else if (flag == "--weights") {
      weightsPath = value;
    } else if (flag == "--inputs-dir") {
      inputsDir = value;
    } else if (flag == "--seed") {
      seed = std::strtoull(value.c_str(), &end, 10);
      if (value.empty() || *end)
        die("--seed expects a non-negative integer, got '" + value + "'");
      haveSeed = true;
    } else if (flag == "--size") {
      size_t e = value.find('=');
      long long v = e == std::string::npos
                        ? -1
                        : std::strtoll(value.c_str() + e + 1, &end, 10);
      if (e == std::string::npos || e == 0 || *end || v < 0 || v > INT32_MAX)
        die("--size expects SYM=VALUE with VALUE >= 0, got '" + value + "'");
      given[value.substr(0, e)] = v;
    } else {
      die("unknown option '" + flag + "'\n" + usage);
    }
  }
  if (library.empty())
    die(std::string("no library given\n") + usage);
  if (!haveSeed)
    die("--seed N is required");
  if (weightsPath.empty() && inputsDir.empty())
    die("nothing to write: pass --weights and/or --inputs-dir");

  auto lib = attn::Library::open(library);
  if (!lib)
    die(lib.status().message);
  auto model = lib->model(modelName);
  if (!model)
    die(model.status().message);
  const attn_model_desc &md = *model->desc();
  Sizes sizes{&md, std::vector<int64_t>(md.num_syms, -1)};
  for (const auto &[sym, v] : given) {
    int32_t k = 0;
    while (k < md.num_syms && sym != md.sym_names[k])
      ++k;
    if (k == md.num_syms)
      die(std::string("model '") + md.name + "' has no symbolic size '" + sym +
          "'");
    sizes.value[k] = v;
  }
  for (int32_t k = 0; k < md.num_syms; ++k)
    if (sizes.value[k] < 0)
      die(std::string("no size for symbol ") + md.sym_names[k] +
          ": pass --size " + md.sym_names[k] + "=N");

  if (!weightsPath.empty()) {
    std::vector<attn::Tensor> params;
    std::vector<std::pair<std::string, attn::TensorView>> named;
    for (const attn_tensor_desc *p : model->params()) {
      params.push_back(makeParam(*p, sizes, seed));
      named.emplace_back(p->weight_name ? p->weight_name : p->name,
                         params.back());
    }
    if (attn::Status st = attn::Weights::write(weightsPath, named); !st)
      die(st.message);
  }
  if (!inputsDir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(inputsDir, ec);
    if (ec)
      die("cannot create " + inputsDir + ": " + ec.message());
    for (const attn_tensor_desc *d : model->inputs()) {
      attn::Tensor t = makeInput(*d, sizes, seed);
      std::string path = inputsDir + "/" + d->name + ".npy";
      if (attn::Status st = t.writeNpy(path); !st)
        die(st.message);
    }
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) { return run(argc, argv); }
