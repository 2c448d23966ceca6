//===- main.cpp - Greedy generation with a compiled KV-cache decoder ------===//
//
// Loads a decoder library that attnc compiled from examples/gpt2.attn or
// examples/llama.attn, binds a safetensors checkpoint, prefills a batch of
// prompts of different lengths (right-padded) into a KV cache and decodes
// greedily, one token per row and call. Token ids in, token ids out (no
// tokenizer). Everything about the model (cache dims, vocabulary) is read
// from the library's own description of this interface:
//
//   model NAME<B, S, T>(ids: i32[B, S], start: i32[B],
//                       k_cache: inout f32[L, B, H, T, D],
//                       v_cache: inout f32[L, B, H, T, D]) -> f32[B, S, V]
//
//   attn-generate libgpt2.so --weights model.safetensors --steps 32
//       464,3290,318 40,1101,257,845,3621       (one line)
//   attn-generate libllama.so --weights model.safetensors
//       --prompts prompts.txt --check expected.txt  (one line)
//
//===----------------------------------------------------------------------===//
#include "attn/runtime.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using Row = std::vector<int32_t>;

const char *kUsage =
    "usage: attn-generate LIB.so --weights W.safetensors [--model NAME]\n"
    "         [--steps N] [--threads N] [--prompts FILE] [--check FILE]\n"
    "         [PROMPT ...]\n"
    "  PROMPT       one row of the batch: token ids separated by ',' or ' '\n"
    "  --prompts F  more rows, one per line\n"
    "  --steps N    tokens generated per row (default 32)\n"
    "  --check F    expected ids, one row per line (a row may be shorter than\n"
    "               --steps: its first ids are compared); exit 1 on mismatch\n";

[[noreturn]] void die(const std::string &message) {
  std::fprintf(stderr, "attn-generate: %s\n", message.c_str());
  std::exit(2);
}

// "464,3290 318" -> {464, 3290, 318}.
Row parseIds(const std::string &text, const std::string &where) {
  std::string s = text;
  std::replace(s.begin(), s.end(), ',', ' ');
  std::istringstream in(s);
  Row row;
  std::string tok;
  while (in >> tok) {
    char *end = nullptr;
    long v = std::strtol(tok.c_str(), &end, 10);
    if (*end || v < 0 || v > INT32_MAX)
      die(where + ": '" + tok + "' is not a token id");
    row.push_back((int32_t)v);
  }
  return row;
}

std::vector<Row> readRows(const std::string &path, bool skipEmpty) {
  std::ifstream in(path);
  if (!in)
    die("cannot read " + path);
  std::vector<Row> rows;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    Row r = parseIds(line, path + ":" + std::to_string(n));
    if (!r.empty() || !skipEmpty)
      rows.push_back(std::move(r));
  }
  return rows;
}

std::string join(const Row &r) {
  std::string s;
  for (size_t i = 0; i < r.size(); ++i)
    s += (i ? " " : "") + std::to_string(r[i]);
  return s;
}

// The decoder interface, read from the library's description.
struct Interface {
  int ids = -1, start = -1, kCache = -1, vCache = -1;
  int64_t layers = 0, heads = 0, headDim = 0, vocab = 0;
};

Interface checkInterface(attn::Model &m) {
  Interface f;
  auto ins = m.inputs();
  for (size_t i = 0; i < ins.size(); ++i) {
    std::string n = ins[i]->name;
    int *slot = n == "ids"       ? &f.ids
                : n == "start"   ? &f.start
                : n == "k_cache" ? &f.kCache
                : n == "v_cache" ? &f.vCache
                                 : nullptr;
    if (!slot)
      die(std::string("model '") + m.desc()->name + "' has an input '" + n +
          "' that a decoder does not (ids, start, k_cache, v_cache)");
    *slot = (int)i;
  }
  if (f.ids < 0 || f.start < 0 || f.kCache < 0 || f.vCache < 0 ||
      m.outputs().size() != 1)
    die(std::string("model '") + m.desc()->name +
        "' is not a decoder: it needs inputs ids, start, k_cache, v_cache "
        "and one output");
  auto sym = [](attn_dim d) { return ATTN_DIM_IS_SYMBOLIC(d); };
  const attn_tensor_desc *ids = ins[f.ids], *start = ins[f.start],
                         *k = ins[f.kCache], *v = ins[f.vCache],
                         *out = m.outputs()[0];
  bool ok = ids->dtype == ATTN_I32 && ids->rank == 2 && sym(ids->dims[0]) &&
            sym(ids->dims[1]) && start->dtype == ATTN_I32 &&
            start->rank == 1 && start->dims[0] == ids->dims[0] &&
            k->dtype == ATTN_F32 && k->rank == 5 && !sym(k->dims[0]) &&
            k->dims[1] == ids->dims[0] && !sym(k->dims[2]) &&
            sym(k->dims[3]) && !sym(k->dims[4]) && v->rank == 5 &&
            v->dtype == ATTN_F32 && out->dtype == ATTN_F32 &&
            out->rank == 3 && out->dims[0] == ids->dims[0] &&
            out->dims[1] == ids->dims[1] && !sym(out->dims[2]);
  for (int i = 0; ok && i < 5; ++i)
    ok = v->dims[i] == k->dims[i];
  if (!ok)
    die("model '" + std::string(m.desc()->name) + "' has ids: " +
        m.typeString(ids) + ", start: " + m.typeString(start) +
        ", k_cache: " + m.typeString(k) + ", v_cache: " + m.typeString(v) +
        " -> " + m.typeString(out) +
        "; a decoder has ids: i32[B, S], start: i32[B], k_cache/v_cache: "
        "f32[L, B, H, T, D] -> f32[B, S, V]");
  f.layers = k->dims[0];
  f.heads = k->dims[2];
  f.headDim = k->dims[4];
  f.vocab = out->dims[2];
  return f;
}

template <typename T> T unwrap(attn::Expected<T> e, const std::string &what) {
  if (!e)
    die(what + ": " + e.status().message);
  return e.take();
}

void check(const attn::Status &s, const std::string &what) {
  if (!s)
    die(what + ": " + s.message);
}

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

} // namespace

int main(int argc, char **argv) {
  std::string libPath, weightsPath, modelName, promptsPath, checkPath;
  int steps = 32, threads = 0;
  std::vector<Row> prompts;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        die(a + " needs a value\n" + kUsage);
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--weights") {
      weightsPath = value();
    } else if (a == "--model") {
      modelName = value();
    } else if (a == "--steps") {
      steps = std::atoi(value().c_str());
    } else if (a == "--threads") {
      threads = std::atoi(value().c_str());
    } else if (a == "--prompts") {
      promptsPath = value();
    } else if (a == "--check") {
      checkPath = value();
    } else if (a.size() > 1 && a[0] == '-' && !std::isdigit((unsigned char)a[1])) {
      die("unknown option " + a + "\n" + kUsage);
    } else if (libPath.empty()) {
      libPath = a;
    } else {
      prompts.push_back(parseIds(a, "prompt " + std::to_string(prompts.size())));
    }
  }
  if (!promptsPath.empty())
    for (Row &r : readRows(promptsPath, true))
      prompts.push_back(std::move(r));
  if (libPath.empty() || weightsPath.empty())
    die(std::string("a library and --weights are required\n") + kUsage);
  if (prompts.empty())
    die("no prompts: give token ids on the command line or --prompts FILE");
  for (size_t b = 0; b < prompts.size(); ++b)
    if (prompts[b].empty())
      die("prompt " + std::to_string(b) + " is empty");
  if (steps < 1)
    die("--steps must be at least 1");

  // --- load ---------------------------------------------------------------
  auto t0 = Clock::now();
  attn::Library lib = unwrap(attn::Library::open(libPath), libPath);
  if (threads > 0)
    check(lib.setNumThreads(threads), "--threads");
  attn::Model model = unwrap(lib.model(modelName), libPath);
  Interface f = checkInterface(model);
  attn::Weights weights = unwrap(attn::Weights::open(weightsPath), weightsPath);
  check(model.bindWeights(weights), "binding " + weightsPath);
  const int64_t B = (int64_t)prompts.size();
  int64_t S = 0;
  for (const Row &r : prompts) {
    S = std::max<int64_t>(S, (int64_t)r.size());
    for (int32_t id : r)
      if (id >= f.vocab)
        die("token id " + std::to_string(id) + " is outside the vocabulary (" +
            std::to_string(f.vocab) + ")");
  }
  // Positions 0 .. S+steps-2 are written (the last token is not fed back).
  const int64_t T = (S + steps + 15) / 16 * 16;
  std::printf("%s: model %s, %lld layers, %lld kv heads x %lld, vocabulary "
              "%lld; batch %lld, longest prompt %lld, cache T=%lld "
              "(%.1f MB); loaded in %.2f s\n",
              libPath.c_str(), model.desc()->name, (long long)f.layers,
              (long long)f.heads, (long long)f.headDim, (long long)f.vocab,
              (long long)B, (long long)S, (long long)T,
              2.0 * f.layers * B * f.heads * T * f.headDim * 4 / 1e6,
              seconds(t0, Clock::now()));

  // --- buffers --------------------------------------------------------------
  std::vector<int64_t> cacheShape = {f.layers, B, f.heads, T, f.headDim};
  attn::Tensor kCache = unwrap(attn::Tensor::create(ATTN_F32, cacheShape), "k_cache");
  attn::Tensor vCache = unwrap(attn::Tensor::create(ATTN_F32, cacheShape), "v_cache");
  attn::Tensor start = unwrap(attn::Tensor::create(ATTN_I32, {B}), "start");
  // The prompts, right-padded with id 0 (the padding's keys/values land at
  // positions each row overwrites or never attends to).
  attn::Tensor ids = unwrap(attn::Tensor::create(ATTN_I32, {B, S}), "ids");
  for (int64_t b = 0; b < B; ++b)
    std::copy(prompts[b].begin(), prompts[b].end(), ids.data<int32_t>() + b * S);
  std::vector<attn::Tensor> logits;
  logits.push_back(unwrap(attn::Tensor::create(ATTN_F32, {B, S, f.vocab}), "logits"));

  auto inputs = [&](const attn::Tensor &idsT) {
    std::vector<attn::TensorView> in(4);
    in[f.ids] = idsT;
    in[f.start] = start;
    in[f.kCache] = kCache;
    in[f.vCache] = vCache;
    return in;
  };
  auto argmax = [&](const float *v) {
    return (int32_t)(std::max_element(v, v + f.vocab) - v);
  };

  // --- prefill: every prompt at once, start = 0 -------------------------------
  std::vector<Row> generated(B);
  auto t1 = Clock::now();
  check(model.runInto(inputs(ids), logits), "prefill");
  auto t2 = Clock::now();
  for (int64_t b = 0; b < B; ++b) {
    int64_t last = (int64_t)prompts[b].size() - 1; // row b's next token
    generated[b].push_back(
        argmax(logits[0].data<float>() + (b * S + last) * f.vocab));
  }

  // --- decode: one token per row and call at start[b] = len_b + step ---------
  attn::Tensor step = unwrap(attn::Tensor::create(ATTN_I32, {B, 1}), "ids");
  std::vector<attn::Tensor> stepLogits;
  stepLogits.push_back(unwrap(attn::Tensor::create(ATTN_F32, {B, 1, f.vocab}), "logits"));
  for (int t = 1; t < steps; ++t) {
    for (int64_t b = 0; b < B; ++b) {
      step.data<int32_t>()[b] = generated[b].back();
      start.data<int32_t>()[b] = (int32_t)prompts[b].size() + t - 1;
    }
    check(model.runInto(inputs(step), stepLogits), "decode step " + std::to_string(t));
    for (int64_t b = 0; b < B; ++b)
      generated[b].push_back(argmax(stepLogits[0].data<float>() + b * f.vocab));
  }
  auto t3 = Clock::now();

  for (int64_t b = 0; b < B; ++b)
    std::printf("row %lld (%zu prompt tokens): %s\n", (long long)b,
                prompts[b].size(), join(generated[b]).c_str());
  double prefill = seconds(t1, t2), decode = seconds(t2, t3);
  int64_t promptTokens = 0;
  for (const Row &r : prompts)
    promptTokens += (int64_t)r.size();
  std::printf("prefill: %lld prompt tokens (padded to %lld x %lld) in %.1f ms, "
              "%.1f tokens/s\n",
              (long long)promptTokens, (long long)B, (long long)S,
              prefill * 1e3, promptTokens / prefill);
  if (steps > 1)
    std::printf("decode: %d steps x %lld rows in %.1f ms, %.2f ms per step, "
                "%.1f tokens/s\n",
                steps - 1, (long long)B, decode * 1e3,
                decode * 1e3 / (steps - 1), B * (steps - 1) / decode);
  std::printf("total: %lld tokens generated in %.1f ms, %.1f tokens/s\n",
              (long long)(B * steps), (prefill + decode) * 1e3,
              B * steps / (prefill + decode));

  // --- --check ------------------------------------------------------------------
  if (checkPath.empty())
    return 0;
  std::vector<Row> expected = readRows(checkPath, false);
  while (!expected.empty() && expected.back().empty() &&
         (int64_t)expected.size() > B)
    expected.pop_back();
  if ((int64_t)expected.size() != B) {
    std::printf("FAIL: %s has %zu rows, the batch has %lld\n",
                checkPath.c_str(), expected.size(), (long long)B);
    return 1;
  }
  bool ok = true;
  for (int64_t b = 0; b < B; ++b) {
    const Row &want = expected[b];
    if ((int64_t)want.size() > steps) {
      std::printf("FAIL: row %lld of %s has %zu ids, more than --steps %d\n",
                  (long long)b, checkPath.c_str(), want.size(), steps);
      ok = false;
      continue;
    }
    auto diff = std::mismatch(want.begin(), want.end(), generated[b].begin());
    if (diff.first == want.end()) {
      std::printf("row %lld: the first %zu ids match\n", (long long)b,
                  want.size());
      continue;
    }
    size_t at = diff.first - want.begin();
    std::printf("row %lld: MISMATCH at step %zu: got %d, expected %d\n",
                (long long)b, at, *diff.second, *diff.first);
    ok = false;
  }
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
