//===- threads_test.cpp - The runtime's thread-safety contract ------------===//
//
// 16 threads run three models of two libraries compiled by attnc (mm_proj
// and mm_norm of multi_model.attn, attn_causal.attn) at mixed sizes: on one
// bound handle per model that every thread shares, and on library and model
// handles that each thread opens and binds itself, with failing calls and
// thread-count changes mixed in. Every result must equal, bit for bit, the
// one computed before on one thread with a one-thread Halide pool, and each
// thread's last error must be its own (runtime.h, "Threads"). `make
// test-tsan` runs this under ThreadSanitizer.
//
//===----------------------------------------------------------------------===//
#include "attn/runtime.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

namespace fs = std::filesystem;

constexpr int kThreads = 16;
constexpr int kIterations = 64;

using Sizes = std::map<std::string, int64_t>;

// Deterministic values in [-1, 1) from (seed, i).
float value(uint32_t seed, int64_t i) {
  uint32_t h = seed * 2654435761u ^ (uint32_t)i * 40503u;
  h ^= h >> 13;
  h *= 0x5bd1e995u;
  h ^= h >> 15;
  return (float)(h & 0xffff) / 32768.0f - 1.0f;
}

// An f32 tensor of `d`'s shape at `sizes`, filled from `seed`.
attn::Tensor filled(const attn_model_desc &m, const attn_tensor_desc &d,
                    const Sizes &sizes, uint32_t seed) {
  std::vector<int64_t> shape;
  for (int32_t k = 0; k < d.rank; ++k)
    shape.push_back(ATTN_DIM_IS_SYMBOLIC(d.dims[k])
                        ? sizes.at(m.sym_names[ATTN_DIM_SYMBOL(d.dims[k])])
                        : d.dims[k]);
  EXPECT_EQ(d.dtype, ATTN_F32) << d.name;
  attn::Tensor t = attn::Tensor::create(ATTN_F32, shape).take();
  float *data = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i)
    data[i] = value(seed, i);
  return t;
}

std::vector<attn::TensorView> views(const std::vector<attn::Tensor> &ts) {
  return std::vector<attn::TensorView>(ts.begin(), ts.end());
}

bool same(const std::vector<attn::Tensor> &a,
          const std::vector<attn::Tensor> &b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].shape() != b[i].shape() ||
        std::memcmp(attn_tensor_data(a[i].get()), attn_tensor_data(b[i].get()),
                    a[i].nbytes()) != 0)
      return false;
  return true;
}

// A model of the stress, by library file and name.
struct Subject {
  const char *lib;
  const char *name;
};
const Subject kSubjects[] = {{MULTI_MODEL_PATH, "mm_proj"},
                             {MULTI_MODEL_PATH, "mm_norm"},
                             {ATTN_CAUSAL_PATH, "attn_causal"}};
constexpr size_t kNumSubjects = sizeof(kSubjects) / sizeof(kSubjects[0]);

// One call: a model at some sizes, its inputs and its one-thread outputs.
struct Case {
  size_t subject;
  Sizes sizes;
  std::vector<attn::Tensor> inputs;
  std::vector<attn::Tensor> expected;
};

class Threads : public testing::Test {
protected:
  void SetUp() override {
    dir = fs::path(testing::TempDir()) /
          ("attn-threads-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    for (const char *path : {MULTI_MODEL_PATH, ATTN_CAUSAL_PATH}) {
      auto lib = attn::Library::open(path);
      ASSERT_TRUE(lib) << lib.status().message;
      libs.emplace(path, lib.take());
    }
    writeWeights();
    for (const Subject &s : kSubjects) {
      auto m = libs.at(s.lib).model(s.name);
      ASSERT_TRUE(m) << m.status().message;
      shared.push_back(m.take());
      ASSERT_TRUE(bind(shared.back()));
    }
    addCases(
        0,
        {{{"B", 1}, {"S", 1}}, {{"B", 2}, {"S", 7}}, {{"B", 3}, {"S", 129}}});
    addCases(1, {{{"N", 1}}, {{"N", 5}}, {{"N", 300}}});
    addCases(2, {{{"B", 1}, {"Sq", 1}, {"Sk", 1}},
                 {{"B", 2}, {"Sq", 7}, {"Sk", 7}},
                 {{"B", 1}, {"Sq", 3}, {"Sk", 129}},
                 {{"B", 2}, {"Sq", 64}, {"Sk", 200}}});
  }
  void TearDown() override { fs::remove_all(dir); }

  // w (mm_proj) and g (mm_norm) in one file that every handle binds.
  void writeWeights() {
    std::string path = (dir / "w.safetensors").string();
    attn::Tensor w = attn::Tensor::create(ATTN_F32, {8, 24}).take();
    attn::Tensor g = attn::Tensor::create(ATTN_F32, {20}).take();
    for (int64_t i = 0; i < w.numel(); ++i)
      w.data<float>()[i] = value(1, i);
    for (int64_t i = 0; i < g.numel(); ++i)
      g.data<float>()[i] = value(2, i);
    ASSERT_TRUE(attn::Weights::write(path, {{"w", w}, {"g", g}}));
    auto opened = attn::Weights::open(path);
    ASSERT_TRUE(opened) << opened.status().message;
    weights.emplace(opened.take());
  }

  attn::Status bind(attn::Model &m) {
    return m.params().empty() ? attn::Status{} : m.bindWeights(*weights);
  }

  // The expected outputs come from the shared handle, with one Halide thread.
  void addCases(size_t subject, const std::vector<Sizes> &all) {
    attn::Library &lib = libs.at(kSubjects[subject].lib);
    ASSERT_TRUE(lib.setNumThreads(1));
    attn::Model &m = shared[subject];
    for (const Sizes &sizes : all) {
      Case c{subject, sizes, {}, {}};
      for (const attn_tensor_desc *d : m.inputs())
        c.inputs.push_back(
            filled(*m.desc(), *d, sizes,
                   (uint32_t)(cases.size() * 8 + c.inputs.size())));
      auto outs = m.run(views(c.inputs));
      ASSERT_TRUE(outs) << outs.status().message;
      c.expected = outs.take();
      cases.push_back(std::move(c));
    }
    ASSERT_TRUE(lib.setNumThreads(0));
  }

  void stress(int t, std::vector<std::string> &errors);

  fs::path dir;
  std::map<std::string, attn::Library> libs;
  std::optional<attn::Weights> weights;
  std::vector<attn::Model> shared; // per subject
  std::vector<Case> cases;
};

// One thread's share: its own library and model handles, then calls on
// them and on the shared handles in turn, over every case.
void Threads::stress(int t, std::vector<std::string> &errors) {
  auto error = [&](const std::string &what) {
    errors.push_back("thread " + std::to_string(t) + ": " + what);
  };
  std::map<std::string, attn::Library> ownLibs;
  std::vector<attn::Model> own;
  for (const Subject &s : kSubjects) {
    if (!ownLibs.count(s.lib)) {
      auto lib = attn::Library::open(s.lib);
      if (!lib)
        return error(lib.status().message);
      ownLibs.emplace(s.lib, lib.take());
    }
    auto m = ownLibs.at(s.lib).model(s.name);
    if (!m)
      return error(m.status().message);
    own.push_back(m.take());
    if (attn::Status st = bind(own.back()); !st)
      return error(st.message);
  }

  for (int i = 0; i < kIterations; ++i) {
    const Case &c = cases[(size_t)(t * 5 + i * 3) % cases.size()];
    attn::Model &m = (t + i) % 2 ? shared[c.subject] : own[c.subject];
    auto outs = m.run(views(c.inputs));
    if (!outs)
      error(std::string(kSubjects[c.subject].name) + ": " +
            outs.status().message);
    else if (!same(*outs, c.expected))
      error(std::string(kSubjects[c.subject].name) +
            ": differs from the one-thread result");
    else if (*attn_last_error())
      error("last error not cleared by a successful run");

    // A rejected input that names this thread's own size.
    if (i % 4 == t % 4) {
      int64_t bad = 100 + t;
      attn::Tensor x = attn::Tensor::create(ATTN_F32, {1, 1, bad}).take();
      auto r = shared[0].run({x});
      std::string want = "dim 2 is " + std::to_string(bad) + " but";
      if (r || r.status().code != ATTN_ERR_SHAPE ||
          r.status().message.find(want) == std::string::npos)
        error("wrong size: got '" + r.status().message + "'");
    }
    // A pipeline failure (attention over no keys), reported by Halide.
    if (i % 6 == t % 6) {
      std::vector<attn::Tensor> in;
      for (int64_t s : {2, 0, 0})
        in.push_back(attn::Tensor::create(ATTN_F32, {1, 2, s, 16}).take());
      auto r = (t % 2 ? shared[2] : own[2]).run(views(in));
      if (r || r.status().code != ATTN_ERR_SHAPE ||
          r.status().message.find("Sk=0") == std::string::npos ||
          r.status().message.find("Halide error code") == std::string::npos)
        error("Sk=0: got '" + r.status().message + "'");
    }
    // Thread counts change under the running calls, through own handles.
    if (t < 2 && i % 6 == 3) {
      attn::Library &lib = ownLibs.at(t ? ATTN_CAUSAL_PATH : MULTI_MODEL_PATH);
      if (attn::Status st = lib.setNumThreads(i % 12 == 3 ? 3 : 0); !st)
        error("set_num_threads: " + st.message);
    }
  }
}

TEST_F(Threads, MixedModelsSizesAndHandles) {
  std::vector<std::vector<std::string>> errors(kThreads);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      ++ready; // start together, for the most overlap
      while (ready.load() < kThreads)
        std::this_thread::yield();
      stress(t, errors[t]);
    });
  for (std::thread &th : threads)
    th.join();
  for (const std::vector<std::string> &e : errors)
    for (const std::string &message : e)
      ADD_FAILURE() << message;
}

} // namespace
