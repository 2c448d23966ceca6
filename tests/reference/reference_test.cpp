//===- reference_test.cpp - Hand-computed checks of the reference ---------===//
//
// The reference decides whether generated code is right, so it is checked
// here against values worked out by hand: mask semantics (causal with
// Sq != Sk, sliding window, padding with a fully masked row), GQA head
// mapping, both rope styles, the norms, head split/merge, PyTorch's linear
// layout, dtype rounding, and the comparison helper.
//
//===----------------------------------------------------------------------===//
#include "Compare.h"
#include "Reference.h"

#include "attn/Frontend/Frontend.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <chrono>
#include <cmath>
#include <random>
#include <sstream>
#include <tuple>

using namespace attn;
using ast::DType;

namespace {

using Tensors = std::map<std::string, RefTensor>;

/// Parses `src` (one model) and, when `check` is set, runs Sema on it.
/// Returns false (after a gtest failure) when the front end rejects it.
bool frontEnd(const std::string &src, ast::Module &out, bool check = true) {
  std::ostringstream errs;
  SourceDiagnostics diags("test.attn", src, errs);
  std::optional<ast::Module> m = parseModule(diags);
  if (!m) {
    ADD_FAILURE() << "parse failed:\n" << errs.str();
    return false;
  }
  if (check && !checkModule(*m, diags)) {
    ADD_FAILURE() << "Sema failed:\n" << errs.str();
    return false;
  }
  if (m->models.size() != 1) {
    ADD_FAILURE() << "expected one model";
    return false;
  }
  out = std::move(*m);
  return true;
}

/// Parses, checks and evaluates; fails the test on any error.
std::vector<RefTensor> run(const std::string &src, const Tensors &inputs,
                           const Tensors &weights = {}) {
  ast::Module m;
  if (!frontEnd(src, m))
    return {};
  std::vector<RefTensor> outs;
  std::string error;
  EXPECT_TRUE(evaluate(m.models[0], inputs, weights, outs, error)) << error;
  return outs;
}

/// Parses (without Sema, so that the interpreter's own checks are reached)
/// and evaluates; returns the interpreter's error, or "" on success.
std::string runError(const std::string &src, const Tensors &inputs,
                     const Tensors &weights = {}) {
  ast::Module m;
  if (!frontEnd(src, m, /*check=*/false))
    return "front end failed";
  std::vector<RefTensor> outs;
  std::string error;
  if (evaluate(m.models[0], inputs, weights, outs, error))
    return "";
  EXPECT_FALSE(error.empty());
  return error;
}

RefTensor f32(std::vector<int64_t> shape, std::vector<double> data) {
  return RefTensor(std::move(shape), std::move(data), DType::F32);
}
RefTensor i32(std::vector<int64_t> shape, std::vector<double> data) {
  return RefTensor(std::move(shape), std::move(data), DType::I32);
}
RefTensor boolean(std::vector<int64_t> shape, std::vector<double> data) {
  return RefTensor(std::move(shape), std::move(data), DType::Bool);
}
RefTensor zeros(std::vector<int64_t> shape) {
  return RefTensor(std::move(shape), DType::F32);
}
RefTensor random(std::vector<int64_t> shape, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  RefTensor t(std::move(shape), DType::F32);
  for (double &x : t.data)
    x = dist(gen); // exactly representable in f32
  return t;
}

void expectValues(const RefTensor &t, std::vector<int64_t> shape,
                  std::vector<double> want, double tol = 1e-12) {
  ASSERT_EQ(t.shape, shape);
  ASSERT_EQ(t.data.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(t.data[i], want[i], tol) << "at flat index " << i;
}

//===----------------------------------------------------------------------===//
// Softmax and masks
//===----------------------------------------------------------------------===//

TEST(Reference, SoftmaxOfKnownRow) {
  auto outs = run(R"(
model m(x: f32[2, 3]) -> f32[2, 3] {
  return softmax(x)
})",
                  {{"x", f32({2, 3}, {1, 2, 3, 1001, 1002, 1003})}});
  ASSERT_EQ(outs.size(), 1u);
  // exp(k) / (e + e^2 + e^3) for k = 1, 2, 3; the second row is shifted by
  // 1000 and must not overflow. Values are rounded to f32 on output.
  const double e1 = std::exp(1.0), e2 = std::exp(2.0), e3 = std::exp(3.0);
  const double s = e1 + e2 + e3;
  expectValues(outs[0], {2, 3},
               {e1 / s, e2 / s, e3 / s, e1 / s, e2 / s, e3 / s}, 1e-7);
  EXPECT_EQ(outs[0].data[0], roundToDType(e1 / s, DType::F32));
}

TEST(Reference, CausalWithFewerQueriesThanKeys) {
  // Sq = 2, Sk = 4: bottom-right aligned, query 0 sees keys 0..2 and
  // query 1 sees keys 0..3.
  auto outs = run(R"(
model m(s: f32[2, 4]) -> f32[2, 4] {
  return softmax(s, mask=causal)
})",
                  {{"s", zeros({2, 4})}});
  ASSERT_EQ(outs.size(), 1u);
  const double t = 1.0 / 3;
  expectValues(outs[0], {2, 4}, {t, t, t, 0, 0.25, 0.25, 0.25, 0.25}, 1e-7);
}

TEST(Reference, CausalWithMoreQueriesThanKeysMasksWholeRows) {
  // Sq = 4, Sk = 2: query i sees j <= i - 2, so rows 0 and 1 see nothing and
  // must be exactly 0 (never NaN).
  auto outs = run(R"(
model m(s: f32[4, 2]) -> f32[4, 2] {
  return softmax(s, mask=causal)
})",
                  {{"s", f32({4, 2}, {5, 6, 7, 8, 1, 2, 3, 3})}});
  ASSERT_EQ(outs.size(), 1u);
  expectValues(outs[0], {4, 2}, {0, 0, 0, 0, 1, 0, 0.5, 0.5});
}

TEST(Reference, CausalAttentionWithKvCache) {
  // q: Sq = 2 queries, k/v: Sk = 4 keys, all scores equal, so each query
  // averages the values it sees: query 0 keys 0..2, query 1 keys 0..3.
  RefTensor v = f32({1, 1, 4, 1}, {1, 2, 3, 10});
  auto outs =
      run(R"(
model m(q: f32[1, 1, 2, 2], k: f32[1, 1, 4, 2], v: f32[1, 1, 4, 1])
    -> f32[1, 1, 2, 1] {
  return attention(q, k, v, mask=causal)
})",
          {{"q", zeros({1, 1, 2, 2})}, {"k", zeros({1, 1, 4, 2})}, {"v", v}});
  ASSERT_EQ(outs.size(), 1u);
  expectValues(outs[0], {1, 1, 2, 1}, {2.0, 4.0}, 1e-6);
}

TEST(Reference, SlidingWindow) {
  // W = 2, Sq = Sk = 4: query i keeps i - 2 < j <= i.
  auto outs = run(R"(
model m(s: f32[4, 4]) -> f32[4, 4] {
  return softmax(s, mask=sliding_window(1 + 1))
})",
                  {{"s", zeros({4, 4})}});
  ASSERT_EQ(outs.size(), 1u);
  expectValues(outs[0], {4, 4},
               {1, 0, 0, 0,     //
                0.5, 0.5, 0, 0, //
                0, 0.5, 0.5, 0, //
                0, 0, 0.5, 0.5});
}

TEST(Reference, SlidingWindowWithKvCache) {
  // W = 2, Sq = 2, Sk = 5: offset 3, query 0 keeps keys 2..3, query 1 3..4.
  auto outs = run(R"(
model m(s: f32[2, 5]) -> f32[2, 5] {
  return softmax(s, mask=sliding_window(2))
})",
                  {{"s", zeros({2, 5})}});
  ASSERT_EQ(outs.size(), 1u);
  expectValues(outs[0], {2, 5}, {0, 0, 0.5, 0.5, 0, 0, 0, 0, 0.5, 0.5});
}

TEST(Reference, PaddingWithFullyMaskedRow) {
  // Batch 0 keeps keys 0..1, batch 1 has length 0: every row is masked and
  // the attention output is exactly 0.
  RefTensor v = f32({2, 1, 3, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  auto outs = run(R"(
model m<B>(q: f32[B, 1, 2, 2], k: f32[B, 1, 3, 2], v: f32[B, 1, 3, 2],
           lengths: i32[B]) -> f32[B, 1, 2, 2] {
  return attention(q, k, v, mask=padding(lengths))
})",
                  {{"q", zeros({2, 1, 2, 2})},
                   {"k", zeros({2, 1, 3, 2})},
                   {"v", v},
                   {"lengths", i32({2}, {2, 0})}});
  ASSERT_EQ(outs.size(), 1u);
  expectValues(outs[0], {2, 1, 2, 2}, {2, 3, 2, 3, 0, 0, 0, 0}, 1e-6);
}

TEST(Reference, ConjunctionOfCausalAndPadding) {
  // causal keeps j <= i, padding keeps j < 2: row 2 keeps only 0 and 1.
  auto outs = run(R"(
model m(s: f32[1, 3, 3], lengths: i32[1]) -> f32[1, 3, 3] {
  return softmax(s, mask=causal() & padding(lengths))
})",
                  {{"s", zeros({1, 3, 3})}, {"lengths", i32({1}, {2})}});
  ASSERT_EQ(outs.size(), 1u);
  expectValues(outs[0], {1, 3, 3}, {1, 0, 0, 0.5, 0.5, 0, 0.5, 0.5, 0});
}

TEST(Reference, BoolTensorMaskBroadcasts) {
  // keep: bool[1, 1, 3] broadcasts over both batches and both rows, and a
  // mask bound to a name works like an inline one.
  auto outs =
      run(R"(
model m(s: f32[2, 2, 3], keep: bool[1, 1, 3]) -> f32[2, 2, 3] {
  m = keep & causal
  return softmax(s, mask=m)
})",
          {{"s", zeros({2, 2, 3})}, {"keep", boolean({1, 1, 3}, {1, 0, 1})}});
  ASSERT_EQ(outs.size(), 1u);
  // Sq = 2, Sk = 3: row 0 sees j <= 1 -> {0}; row 1 sees all -> {0, 2}.
  expectValues(outs[0], {2, 2, 3},
               {1, 0, 0, 0.5, 0, 0.5, 1, 0, 0, 0.5, 0, 0.5});
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

TEST(Reference, GqaQueryHeadReadsKvHeadIntegerDivided) {
  // Hq = 4, Hkv = 2: query heads 0, 1 read kv head 0 and heads 2, 3 read kv
  // head 1 (not h % Hkv). Uniform scores average the two keys.
  RefTensor v = f32({1, 2, 2, 1}, {0, 1, 10, 11});
  auto outs =
      run(R"(
model m(q: f32[1, 4, 3, 8], k: f32[1, 2, 2, 8], v: f32[1, 2, 2, 1])
    -> f32[1, 4, 3, 1] {
  return attention(q, k, v)
})",
          {{"q", zeros({1, 4, 3, 8})}, {"k", zeros({1, 2, 2, 8})}, {"v", v}});
  ASSERT_EQ(outs.size(), 1u);
  expectValues(
      outs[0], {1, 4, 3, 1},
      {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 10.5, 10.5, 10.5, 10.5, 10.5, 10.5}, 1e-6);
}

TEST(Reference, AttentionScaleAndBias) {
  // D = 1: scores = q.k * 2 + bias = [1*1*2 + 0, 1*0*2 + 1] = [2, 1];
  // out = (e^2 * 1 + e^1 * 3) / (e^2 + e^1).
  auto outs = run(R"(
model m(q: f32[1, 1, 1, 1], k: f32[1, 1, 2, 1], v: f32[1, 1, 2, 1],
        bias: f32[2]) -> f32[1, 1, 1, 1] {
  return attention(q, k, v, bias=bias, scale=4/2)
})",
                  {{"q", f32({1, 1, 1, 1}, {1})},
                   {"k", f32({1, 1, 2, 1}, {1, 0})},
                   {"v", f32({1, 1, 2, 1}, {1, 3})},
                   {"bias", f32({2}, {0, 1})}});
  ASSERT_EQ(outs.size(), 1u);
  const double e1 = std::exp(1.0), e2 = std::exp(2.0);
  expectValues(outs[0], {1, 1, 1, 1}, {(e2 + 3 * e1) / (e2 + e1)}, 1e-6);
}

TEST(Reference, AttentionDefaultScaleIsInverseSqrtD) {
  // D = 4, q = k0 = [1, 1, 1, 1], k1 = 0: q.k0 = 4, scaled by 1/2 gives 2.
  auto outs = run(R"(
model m(q: f32[1, 1, 1, 4], k: f32[1, 1, 2, 4], v: f32[1, 1, 2, 1])
    -> f32[1, 1, 1, 1] {
  return attention(q, k, v)
})",
                  {{"q", f32({1, 1, 1, 4}, {1, 1, 1, 1})},
                   {"k", f32({1, 1, 2, 4}, {1, 1, 1, 1, 0, 0, 0, 0})},
                   {"v", f32({1, 1, 2, 1}, {1, 0})}});
  ASSERT_EQ(outs.size(), 1u);
  const double e2 = std::exp(2.0);
  expectValues(outs[0], {1, 1, 1, 1}, {e2 / (e2 + 1)}, 1e-6);
}

TEST(Reference, DecomposedAttentionMatchesBuiltin) {
  // matmul / transpose / softmax / matmul against attention(), causal with
  // Sq != Sk, with double results compared in double.
  const char *src = R"(
model m(q: f32[2, 3, 5, 4], k: f32[2, 3, 7, 4], v: f32[2, 3, 7, 6])
    -> (f32[2, 3, 5, 6], f32[2, 3, 5, 6]) {
  p = softmax(matmul(q, transpose(k)) * 0.5, mask=causal)
  return matmul(p, v), attention(q, k, v, mask=causal)
})";
  ast::Module m;
  ASSERT_TRUE(frontEnd(src, m));
  std::vector<RefTensor> outs;
  std::string error;
  ASSERT_TRUE(evaluate(m.models[0],
                       {{"q", random({2, 3, 5, 4}, 1)},
                        {"k", random({2, 3, 7, 4}, 2)},
                        {"v", random({2, 3, 7, 6}, 3)}},
                       {}, outs, error))
      << error;
  ASSERT_EQ(outs.size(), 2u);
  std::string report;
  EXPECT_TRUE(compare(outs[0], outs[1].data.data(), outs[1].data.size(), 0,
                      1e-7, report))
      << report;
}

TEST(Reference, KvCacheRowsMatchFullCausalAttention) {
  // Bottom-right alignment is what makes decoding with a KV cache exact: the
  // last S rows of causal attention over P + S tokens equal causal attention
  // of those S queries over concat(cache, new) keys (Sk = P + S, a derived
  // symbolic size that Sema writes as "P+S").
  const int P = 3, S = 2, T = P + S;
  RefTensor q = random({1, 2, T, 4}, 21), k = random({1, 2, T, 4}, 22),
            v = random({1, 2, T, 4}, 23);
  auto full = run(R"(
model full<T>(q: f32[1, 2, T, 4], k: f32[1, 2, T, 4], v: f32[1, 2, T, 4])
    -> f32[1, 2, T, 4] {
  return attention(q, k, v, mask=causal)
})",
                  {{"q", q}, {"k", k}, {"v", v}});
  ASSERT_EQ(full.size(), 1u);
  // Rows [from, from + n) of a [1, 2, T, 4] tensor.
  auto rows = [&](const RefTensor &x, int from, int n) {
    RefTensor y({1, 2, n, 4}, DType::F32);
    for (int h = 0; h < 2; ++h)
      for (int i = 0; i < n; ++i)
        for (int d = 0; d < 4; ++d)
          y.data[(h * n + i) * 4 + d] = x.data[(h * T + from + i) * 4 + d];
    return y;
  };
  auto cached = run(R"(
model step<P, S>(q: f32[1, 2, S, 4], kc: f32[1, 2, P, 4], kn: f32[1, 2, S, 4],
                 vc: f32[1, 2, P, 4], vn: f32[1, 2, S, 4]) -> f32[1, 2, S, 4] {
  k = concat(kc, kn, axis=2)
  v = concat(vc, vn, axis=-2)
  return attention(q, k, v, mask=causal)
})",
                    {{"q", rows(q, P, S)},
                     {"kc", rows(k, 0, P)},
                     {"kn", rows(k, P, S)},
                     {"vc", rows(v, 0, P)},
                     {"vn", rows(v, P, S)}});
  ASSERT_EQ(cached.size(), 1u);
  RefTensor want = rows(full[0], P, S);
  std::string report;
  EXPECT_TRUE(compare(want, cached[0].data.data(), cached[0].data.size(), 0,
                      1e-7, report))
      << report;
}

TEST(Reference, DecomposedCausalPaddingMatchesBuiltin) {
  // The decomposed form of examples/decomposed_attention.attn against the
  // built-in, with a batch whose length is 0 (all rows masked, output 0).
  const char *src = R"(
model m<B, S>(x: f32[B, S, 8], lengths: i32[B]) -> (f32[B, S, 8], f32[B, S, 8]) {
  param wq: f32[8, 8]
  param wk: f32[8, 8]
  param wv: f32[8, 8]
  q = split_heads(linear(x, wq), heads=2)
  k = split_heads(linear(x, wk), heads=2)
  v = split_heads(linear(x, wv), heads=2)
  p = softmax(matmul(q, transpose(k)) * 0.5, mask=causal & padding(lengths))
  return merge_heads(matmul(p, v)),
         merge_heads(attention(q, k, v, mask=causal & padding(lengths)))
})";
  auto outs =
      run(src, {{"x", random({3, 5, 8}, 31)}, {"lengths", i32({3}, {5, 2, 0})}},
          {{"wq", random({8, 8}, 32)},
           {"wk", random({8, 8}, 33)},
           {"wv", random({8, 8}, 34)}});
  ASSERT_EQ(outs.size(), 2u);
  std::string report;
  EXPECT_TRUE(compare(outs[1], outs[0].data.data(), outs[0].data.size(), 0,
                      1e-7, report))
      << report;
  for (int i = 2 * 5 * 8; i < 3 * 5 * 8; ++i)
    EXPECT_EQ(outs[0].data[i], 0.0) << "batch 2 is fully masked";
}

TEST(Reference, DisagreementWithSemaIsAnError) {
  // The interpreter recomputes every shape and constant and compares them
  // with what Sema recorded; tamper with Sema's results to see both checks.
  const char *src = R"(
model m(q: f32[1, 1, 2, 4]) -> f32[1, 1, 2, 4] {
  return attention(q, q, q, scale=1/8)
})";
  ast::Module mod;
  ASSERT_TRUE(frontEnd(src, mod));
  ast::Expr &call = *mod.models[0].body.back().exprs[0];
  ASSERT_EQ(call.kind, ast::Expr::Call);
  ASSERT_EQ(call.types.size(), 1u);
  const Tensors in = {{"q", zeros({1, 1, 2, 4})}};
  std::vector<RefTensor> outs;
  std::string error;
  ASSERT_TRUE(evaluate(mod.models[0], in, {}, outs, error)) << error;

  ast::Expr &scale = *call.kwargs[0].value;
  ASSERT_TRUE(scale.isConstant);
  EXPECT_EQ(scale.constant, 0.125);
  scale.constant = 0.25;
  EXPECT_FALSE(evaluate(mod.models[0], in, {}, outs, error));
  EXPECT_NE(error.find("Sema folds this constant to 0.25"), std::string::npos)
      << error;
  scale.constant = 0.125;

  call.types[0].dims[2] = ast::Dim::fixed(3);
  EXPECT_FALSE(evaluate(mod.models[0], in, {}, outs, error));
  EXPECT_NE(error.find("Sema types this as f32[1, 1, 3, 4], the reference "
                       "computed shape [1, 1, 2, 4]"),
            std::string::npos)
      << error;
}

TEST(Reference, DerivedSymbolicDimsAreChecked) {
  // Sema types concat(a, b, axis=0) as f32[P+S, 2]; the interpreter evaluates
  // the text "P+S" under the bound sizes.
  const char *src = R"(
model m<P, S>(a: f32[P, 2], b: f32[S, 2]) -> f32[2, 2] {
  c = concat(a, b, axis=0)
  return matmul(transpose(c), c)
})";
  ast::Module mod;
  ASSERT_TRUE(frontEnd(src, mod));
  ast::Expr &concat = *mod.models[0].body[0].exprs[0];
  ASSERT_EQ(concat.types.size(), 1u);
  ASSERT_EQ(concat.types[0].dims[0].sym, "P+S");
  const Tensors in = {{"a", zeros({3, 2})}, {"b", zeros({2, 2})}};
  std::vector<RefTensor> outs;
  std::string error;
  ASSERT_TRUE(evaluate(mod.models[0], in, {}, outs, error)) << error;
  concat.types[0].dims[0].sym = "(P*S)";
  EXPECT_FALSE(evaluate(mod.models[0], in, {}, outs, error));
  EXPECT_NE(error.find("Sema types this as f32[(P*S), 2], the reference "
                       "computed shape [5, 2]"),
            std::string::npos)
      << error;
}

//===----------------------------------------------------------------------===//
// Rotary embeddings
//===----------------------------------------------------------------------===//

TEST(Reference, RopeRotateHalf) {
  // D = 4, theta = 100: inv_freq = [1, 100^(-1/2)] = [1, 0.1]; pos = 2.
  // Dim i pairs with i + 2.
  auto outs =
      run(R"(
model m(x: f32[1, 1, 1, 4], pos: i32[1]) -> f32[1, 1, 1, 4] {
  return rope(x, pos, theta=100.0)
})",
          {{"x", f32({1, 1, 1, 4}, {1, 2, 3, 4})}, {"pos", i32({1}, {2})}});
  ASSERT_EQ(outs.size(), 1u);
  const double c0 = std::cos(2.0), s0 = std::sin(2.0);
  const double c1 = std::cos(0.2), s1 = std::sin(0.2);
  expectValues(
      outs[0], {1, 1, 1, 4},
      {1 * c0 - 3 * s0, 2 * c1 - 4 * s1, 3 * c0 + 1 * s0, 4 * c1 + 2 * s1},
      1e-6);
}

TEST(Reference, RopeInterleaved) {
  // Same vector, pairs (0, 1) at angle 2 and (2, 3) at angle 0.2.
  auto outs =
      run(R"(
model m(x: f32[1, 1, 1, 4], pos: i32[1]) -> f32[1, 1, 1, 4] {
  return rope(x, pos, theta=100.0, style="interleaved")
})",
          {{"x", f32({1, 1, 1, 4}, {1, 2, 3, 4})}, {"pos", i32({1}, {2})}});
  ASSERT_EQ(outs.size(), 1u);
  const double c0 = std::cos(2.0), s0 = std::sin(2.0);
  const double c1 = std::cos(0.2), s1 = std::sin(0.2);
  expectValues(
      outs[0], {1, 1, 1, 4},
      {1 * c0 - 2 * s0, 2 * c0 + 1 * s0, 3 * c1 - 4 * s1, 4 * c1 + 3 * s1},
      1e-6);
}

TEST(Reference, RopePerBatchPositionsAndDefaultTheta) {
  // pos: [B, S]; position 0 is the identity, and with the default theta
  // (10000) and D = 2 the only frequency is 1.
  auto outs = run(
      R"(
model m(x: f32[2, 1, 1, 2], pos: i32[2, 1]) -> f32[2, 1, 1, 2] {
  return rope(x, pos)
})",
      {{"x", f32({2, 1, 1, 2}, {1, 2, 1, 2})}, {"pos", i32({2, 1}, {0, 1})}});
  ASSERT_EQ(outs.size(), 1u);
  const double c = std::cos(1.0), s = std::sin(1.0);
  expectValues(outs[0], {2, 1, 1, 2}, {1, 2, c - 2 * s, 2 * c + s}, 1e-6);
}

//===----------------------------------------------------------------------===//
// Norms and element-wise functions
//===----------------------------------------------------------------------===//

TEST(Reference, LayerNormOfKnownRow) {
  // [1, 2, 3, 4]: mean 2.5, biased variance 1.25; eps = 1 gives
  // sqrt(2.25) = 1.5, so the normalised row is [-1, -1/3, 1/3, 1].
  auto outs =
      run(R"(
model m(x: f32[1, 4]) -> f32[1, 4] {
  param g: f32[4]
  param b: f32[4] = "ln.bias"
  return layer_norm(x, g, b, eps=0.5 + 0.5)
})",
          {{"x", f32({1, 4}, {1, 2, 3, 4})}},
          {{"g", f32({4}, {1, 1, 2, 2})}, {"ln.bias", f32({4}, {0, 0, 0, 1})}});
  ASSERT_EQ(outs.size(), 1u);
  expectValues(outs[0], {1, 4}, {-1, -1.0 / 3, 2.0 / 3, 3}, 1e-7);
}

TEST(Reference, LayerNormDefaultEps) {
  // eps defaults to 1e-5 and sits inside the square root.
  auto outs = run(R"(
model m(x: f32[1, 2]) -> f32[1, 2] {
  param g: f32[2]
  param b: f32[2]
  return layer_norm(x, g, b)
})",
                  {{"x", f32({1, 2}, {0, 2})}},
                  {{"g", f32({2}, {1, 1})}, {"b", f32({2}, {0, 0})}});
  ASSERT_EQ(outs.size(), 1u);
  const double inv = 1 / std::sqrt(1 + 1e-5);
  expectValues(outs[0], {1, 2}, {-inv, inv}, 1e-7);
}

TEST(Reference, RmsNormOfKnownRow) {
  // [3, 4]: mean(x^2) = 12.5; eps = 3.5 gives rsqrt(16) = 1/4.
  auto outs =
      run(R"(
model m(x: f32[2, 2]) -> f32[2, 2] {
  param g: f32[2]
  return rms_norm(x, g, eps=3.5)
})",
          {{"x", f32({2, 2}, {3, 4, -3, -4})}}, {{"g", f32({2}, {2, 1})}});
  ASSERT_EQ(outs.size(), 1u);
  expectValues(outs[0], {2, 2}, {1.5, 1, -1.5, -1});
}

TEST(Reference, Activations) {
  auto outs = run(R"(
model m(x: f32[3]) -> (f32[3], f32[3], f32[3], f32[3]) {
  return gelu(x), gelu_tanh(x), silu(x), relu(x)
})",
                  {{"x", f32({3}, {-1, 0, 1})}});
  ASSERT_EQ(outs.size(), 4u);
  // gelu(1) = Phi(1) = 0.841344746..., gelu(-1) = -(1 - Phi(1)).
  const double phi = 0.8413447460685429;
  expectValues(outs[0], {3}, {-(1 - phi), 0, phi}, 1e-7);
  const double gt = 0.5 * (1 + std::tanh(std::sqrt(2 / M_PI) * 1.044715));
  expectValues(outs[1], {3}, {-(1 - gt), 0, gt}, 1e-7);
  const double sig = 1 / (1 + std::exp(-1.0));
  expectValues(outs[2], {3}, {-(1 - sig), 0, sig}, 1e-7);
  expectValues(outs[3], {3}, {0, 0, 1});
}

TEST(Reference, ArithmeticBroadcastsLikeNumpy) {
  // [2, 1] op [3] -> [2, 3]; literals and unary minus.
  auto outs = run(R"(
model m(a: f32[2, 1], b: f32[3]) -> (f32[2, 3], f32[2, 3]) {
  return a + b * 2, -(a - b) / 4
})",
                  {{"a", f32({2, 1}, {1, 2})}, {"b", f32({3}, {1, 2, 3})}});
  ASSERT_EQ(outs.size(), 2u);
  expectValues(outs[0], {2, 3}, {3, 5, 7, 4, 6, 8});
  expectValues(outs[1], {2, 3}, {0, 0.25, 0.5, -0.25, 0, 0.25});
}

//===----------------------------------------------------------------------===//
// Layout built-ins
//===----------------------------------------------------------------------===//

TEST(Reference, LinearUsesPyTorchLayout) {
  // w is [out, in]: y = x @ w^T + b.
  auto outs = run(R"(
model m<S>(x: f32[1, S, 2]) -> f32[1, S, 3] {
  param w: f32[3, 2]
  param b: f32[3]
  return linear(x, w, b)
})",
                  {{"x", f32({1, 2, 2}, {1, 2, -1, 5})}},
                  {{"w", f32({3, 2}, {1, 0, 0, 1, 1, 10})},
                   {"b", f32({3}, {100, 200, 300})}});
  ASSERT_EQ(outs.size(), 1u);
  expectValues(outs[0], {1, 2, 3}, {101, 202, 321, 99, 205, 349});
}

TEST(Reference, LinearWithoutBiasAndWideOutput) {
  // More output columns than the 4-wide inner kernel, and an odd count.
  RefTensor x = random({3, 5}, 7), w = random({11, 5}, 8);
  auto outs = run(R"(
model m(x: f32[3, 5]) -> f32[3, 11] {
  param w: f32[11, 5]
  return linear(x, w)
})",
                  {{"x", x}}, {{"w", w}});
  ASSERT_EQ(outs.size(), 1u);
  ASSERT_EQ(outs[0].shape, (std::vector<int64_t>{3, 11}));
  for (int r = 0; r < 3; ++r)
    for (int o = 0; o < 11; ++o) {
      double s = 0;
      for (int k = 0; k < 5; ++k)
        s += x.data[r * 5 + k] * w.data[o * 5 + k];
      EXPECT_EQ(outs[0].data[r * 11 + o], roundToDType(s, DType::F32));
    }
}

TEST(Reference, SplitHeadsAndMergeHeads) {
  // [B, S, H*D] -> [B, H, S, D]: head h takes columns h*D .. h*D+D-1, and
  // merge_heads is the exact inverse.
  RefTensor x = random({2, 3, 8}, 11);
  auto outs = run(R"(
model m<B, S>(x: f32[B, S, 8]) -> (f32[B, 4, S, 2], f32[B, S, 8]) {
  h = split_heads(x, heads=2 * 2)
  return h, merge_heads(h)
})",
                  {{"x", x}});
  ASSERT_EQ(outs.size(), 2u);
  ASSERT_EQ(outs[0].shape, (std::vector<int64_t>{2, 4, 3, 2}));
  for (int b = 0; b < 2; ++b)
    for (int h = 0; h < 4; ++h)
      for (int s = 0; s < 3; ++s)
        for (int d = 0; d < 2; ++d)
          EXPECT_EQ(outs[0].data[((b * 4 + h) * 3 + s) * 2 + d],
                    x.data[(b * 3 + s) * 8 + h * 2 + d]);
  EXPECT_EQ(outs[1].shape, x.shape);
  EXPECT_EQ(outs[1].data, x.data);
}

TEST(Reference, SplitConcatTransposeMatmul) {
  auto outs =
      run(R"(
model m(x: f32[2, 6]) -> (f32[2, 2], f32[2, 4], f32[4, 2], f32[2, 2]) {
  a, b, c = split(x, 3)
  return c, concat(a, b, axis=-1), concat(a, b, axis=1 - 1),
         matmul(a, transpose(b))
})",
          {{"x", f32({2, 6}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})}});
  ASSERT_EQ(outs.size(), 4u);
  expectValues(outs[0], {2, 2}, {5, 6, 11, 12});
  expectValues(outs[1], {2, 4}, {1, 2, 3, 4, 7, 8, 9, 10});
  expectValues(outs[2], {4, 2}, {1, 2, 7, 8, 3, 4, 9, 10});
  // a = [[1, 2], [7, 8]], b = [[3, 4], [9, 10]]: a @ b^T.
  expectValues(outs[3], {2, 2}, {11, 29, 53, 143});
}

TEST(Reference, MatmulBroadcastsBatchDims) {
  // [2, 1, 2, 2] @ [3, 2, 1] -> [2, 3, 2, 1].
  RefTensor a = f32({2, 1, 2, 2}, {1, 0, 0, 1, 2, 0, 0, 2});
  RefTensor b = f32({3, 2, 1}, {1, 2, 3, 4, 5, 6});
  auto outs = run(R"(
model m(a: f32[2, 1, 2, 2], b: f32[3, 2, 1]) -> f32[2, 3, 2, 1] {
  return matmul(a, b)
})",
                  {{"a", a}, {"b", b}});
  ASSERT_EQ(outs.size(), 1u);
  expectValues(outs[0], {2, 3, 2, 1}, {1, 2, 3, 4, 5, 6, 2, 4, 6, 8, 10, 12});
}

//===----------------------------------------------------------------------===//
// Dtypes, sizes and errors
//===----------------------------------------------------------------------===//

TEST(Reference, ResultsAreRoundedToTheirDtype) {
  // 1/3 in f16 is 0x3555 = 0.333251953125, in bf16 0x3EAB = 0.333984375.
  auto outs = run(R"(
model m(x: f16[1], y: bf16[1], z: f32[1]) -> (f16[1], bf16[1], f32[1]) {
  return x / 3, y / 3, z / 3
})",
                  {{"x", RefTensor({1}, {1.0}, DType::F16)},
                   {"y", RefTensor({1}, {1.0}, DType::BF16)},
                   {"z", RefTensor({1}, {1.0}, DType::F32)}});
  ASSERT_EQ(outs.size(), 3u);
  EXPECT_EQ(outs[0].dtype, DType::F16);
  EXPECT_EQ(outs[0].data[0], 0.333251953125);
  EXPECT_EQ(outs[1].dtype, DType::BF16);
  EXPECT_EQ(outs[1].data[0], 0.333984375);
  EXPECT_EQ(outs[2].data[0], static_cast<double>(1.0f / 3.0f));
}

TEST(Reference, RoundingHelpers) {
  EXPECT_EQ(roundToDType(65519.0, DType::F16), 65504.0);
  EXPECT_TRUE(std::isinf(roundToDType(65520.0, DType::F16)));
  EXPECT_EQ(roundToDType(std::ldexp(1.0, -25), DType::F16), 0.0); // tie->even
  EXPECT_EQ(roundToDType(3 * std::ldexp(1.0, -25), DType::F16),
            std::ldexp(1.0, -23));
  EXPECT_EQ(roundToDType(1 + std::ldexp(1.0, -8), DType::BF16), 1.0);
  EXPECT_EQ(roundToDType(1 + 3 * std::ldexp(1.0, -8), DType::BF16),
            1 + std::ldexp(1.0, -6));
  EXPECT_EQ(roundToDType(-2.7, DType::I32), -2.0);
  EXPECT_EQ(halfBitsToDouble(0x3C00), 1.0);
  EXPECT_EQ(halfBitsToDouble(0x7BFF), 65504.0);
  EXPECT_EQ(halfBitsToDouble(0x0001), std::ldexp(1.0, -24));
  EXPECT_EQ(halfBitsToDouble(0xC000), -2.0);
  EXPECT_TRUE(std::isinf(halfBitsToDouble(0x7C00)));
  EXPECT_EQ(bf16BitsToDouble(0x3F80), 1.0);
  EXPECT_EQ(bf16BitsToDouble(0x3EAB), 0.333984375);
}

TEST(Reference, SymbolicSizesMustAgree) {
  const char *src = R"(
model m<S>(a: f32[S], b: f32[S]) -> f32[S] {
  return a + b
})";
  std::string err = runError(src, {{"a", zeros({3})}, {"b", zeros({4})}});
  EXPECT_NE(err.find("S is already 3"), std::string::npos) << err;
}

TEST(Reference, InputErrorsAreReported) {
  const char *src = R"(
model m(x: f32[2]) -> f32[2] {
  param w: f32[2]
  return x * w
})";
  EXPECT_NE(runError(src, {}).find("input 'x' is missing"), std::string::npos);
  EXPECT_NE(runError(src, {{"x", i32({2}, {1, 2})}}, {{"w", zeros({2})}})
                .find("declared f32[2] but given i32[2]"),
            std::string::npos);
  EXPECT_NE(runError(src, {{"x", zeros({2})}}).find("weight 'w' is missing"),
            std::string::npos);
  EXPECT_NE(
      runError(src, {{"x", zeros({2})}}, {{"w", zeros({3})}}).find("param 'w'"),
      std::string::npos);
}

TEST(Reference, InterpreterErrorsDoNotCrash) {
  // Without Sema these reach the interpreter's own checks.
  EXPECT_NE(runError(R"(
model m(x: f32[2]) -> f32[2] {
  return frobnicate(x)
})",
                     {{"x", zeros({2})}})
                .find("no built-in 'frobnicate'"),
            std::string::npos);
  EXPECT_NE(runError(R"(
model m(x: f32[2, 10]) -> f32[2, 1, 10] {
  return split_heads(x, heads=3)
})",
                     {{"x", zeros({2, 10})}})
                .find("split_heads needs [B, S, H*D]"),
            std::string::npos);
  EXPECT_NE(runError(R"(
model m(x: f32[1, 2, 10]) -> f32[1, 3, 2, 3] {
  return split_heads(x, heads=3)
})",
                     {{"x", zeros({1, 2, 10})}})
                .find("heads=3 does not divide 10"),
            std::string::npos);
  EXPECT_NE(runError(R"(
model m(a: f32[2], b: f32[3]) -> f32[3] {
  return a + b
})",
                     {{"a", zeros({2})}, {"b", zeros({3})}})
                .find("cannot broadcast f32[2] and f32[3]"),
            std::string::npos);
  EXPECT_NE(runError(R"(
model m(q: f32[1, 3, 2, 4], k: f32[1, 2, 2, 4]) -> f32[1, 3, 2, 4] {
  return attention(q, k, k)
})",
                     {{"q", zeros({1, 3, 2, 4})}, {"k", zeros({1, 2, 2, 4})}})
                .find("Hq % Hkv == 0"),
            std::string::npos);
  EXPECT_NE(runError(R"(
model m(x: f32[2, 3], l: i32[3]) -> f32[2, 3] {
  return softmax(x, mask=padding(l))
})",
                     {{"x", zeros({2, 3})}, {"l", i32({3}, {1, 1, 1})}})
                .find("padding lengths"),
            std::string::npos);
}

//===----------------------------------------------------------------------===//
// Element-wise math, comparisons, selections
//===----------------------------------------------------------------------===//

/// Parses and checks a file of several models and evaluates model `name`.
std::vector<RefTensor> runModel(const std::string &src, const std::string &name,
                                const Tensors &inputs,
                                const Tensors &weights = {},
                                std::string *errorOut = nullptr) {
  std::ostringstream errs;
  SourceDiagnostics diags("test.attn", src, errs);
  std::optional<ast::Module> m = parseModule(diags);
  if (!m || !checkModule(*m, diags)) {
    ADD_FAILURE() << "front end failed:\n" << errs.str();
    return {};
  }
  for (const ast::Model &model : m->models)
    if (model.name == name) {
      std::vector<RefTensor> outs;
      std::string error;
      bool ok = evaluate(model, inputs, weights, outs, error);
      if (errorOut)
        *errorOut = ok ? "" : error;
      else
        EXPECT_TRUE(ok) << error;
      return outs;
    }
  ADD_FAILURE() << "no model " << name;
  return {};
}

TEST(Reference, UnaryMath) {
  auto outs =
      run(R"(
model m(x: f32[4], i: i32[3]) -> (f32[4], f32[4], f32[4], f32[4], f32[4],
                                  f32[4], f32[4], i32[3]) {
  return exp(x), log(abs(x) + 1), sqrt(abs(x)), rsqrt(abs(x) + 1), tanh(x),
         sigmoid(x), abs(x), abs(i)
})",
          {{"x", f32({4}, {0, 1, -2, 4})}, {"i", i32({3}, {-3, 0, 5})}});
  ASSERT_EQ(outs.size(), 8u);
  const double e = std::exp(1.0);
  expectValues(outs[0], {4}, {1, e, 1 / (e * e), e * e * e * e}, 1e-5);
  expectValues(outs[1], {4}, {0, std::log(2.0), std::log(3.0), std::log(5.0)},
               1e-7);
  expectValues(outs[2], {4}, {0, 1, std::sqrt(2.0), 2}, 1e-7);
  expectValues(outs[3], {4},
               {1, 1 / std::sqrt(2.0), 1 / std::sqrt(3.0), 1 / std::sqrt(5.0)},
               1e-7);
  // tanh(1) = (e^2 - 1) / (e^2 + 1).
  const double t1 = (e * e - 1) / (e * e + 1);
  const double t2 = (e * e * e * e - 1) / (e * e * e * e + 1);
  expectValues(outs[4], {4}, {0, t1, -t2, std::tanh(4.0)}, 1e-7);
  expectValues(
      outs[5], {4},
      {0.5, e / (1 + e), 1 / (1 + e * e), 1 / (1 + 1 / (e * e * e * e))}, 1e-7);
  expectValues(outs[6], {4}, {0, 1, 2, 4});
  EXPECT_EQ(outs[7].dtype, DType::I32);
  expectValues(outs[7], {3}, {3, 0, 5});
}

TEST(Reference, ComparisonsAndBoolOperators) {
  auto outs =
      run(R"(
model m(x: f32[4], y: f32[4]) -> (bool[4], bool[4], bool[4], bool[4], bool[4],
                                  bool[4], bool[4]) {
  return x < y, x <= y, x > y, x >= y, x == y, x != y,
         x < y & y > 0 | !(x == y)
})",
          {{"x", f32({4}, {-1, 0, 0.5, 2})}, {"y", f32({4}, {0, 0, 1, 1})}});
  ASSERT_EQ(outs.size(), 7u);
  expectValues(outs[0], {4}, {1, 0, 1, 0});
  expectValues(outs[1], {4}, {1, 1, 1, 0});
  expectValues(outs[2], {4}, {0, 0, 0, 1});
  expectValues(outs[3], {4}, {0, 1, 0, 1});
  expectValues(outs[4], {4}, {0, 1, 0, 0});
  expectValues(outs[5], {4}, {1, 0, 1, 1});
  // ((x < y) & (y > 0)) | !(x == y) = ([1,0,1,0] & [0,0,1,1]) | [1,0,1,1].
  expectValues(outs[6], {4}, {1, 0, 1, 1});
  EXPECT_EQ(outs[6].dtype, DType::Bool);
}

TEST(Reference, ComparisonsPromoteLikeArithmetic) {
  // i32 with an integer literal compares as i32; with a float literal as f32,
  // and a float literal is f32's value of it: f32(0.1) == 0.1 holds.
  const double tenth = roundToDType(0.1, DType::F32);
  auto outs = run(R"(
model m(i: i32[3], x: f32[2]) -> (bool[3], bool[3], bool[2], bool[3]) {
  return i < 2, i > 1.5, x == 0.1, 2 <= i
})",
                  {{"i", i32({3}, {1, 2, 3})}, {"x", f32({2}, {tenth, 0.25})}});
  ASSERT_EQ(outs.size(), 4u);
  expectValues(outs[0], {3}, {1, 0, 0});
  expectValues(outs[1], {3}, {0, 1, 1});
  expectValues(outs[2], {2}, {1, 0});
  expectValues(outs[3], {3}, {0, 1, 1});
}

TEST(Reference, WhereMinMaxBroadcast) {
  auto outs = run(R"(
model m(c: bool[2, 1], a: f32[3], i: i32[3], b: f32[2, 1]) -> (f32[2, 3],
    i32[2, 3], f32[2, 3], i32[3], f32[2, 3]) {
  return where(c, a, 0), where(c, i, 7), min(a, b), max(i, 2), max(i, b)
})",
                  {{"c", boolean({2, 1}, {1, 0})},
                   {"a", f32({3}, {1, 2, 3})},
                   {"i", i32({3}, {1, 2, 3})},
                   {"b", f32({2, 1}, {2.5, -1})}});
  ASSERT_EQ(outs.size(), 5u);
  expectValues(outs[0], {2, 3}, {1, 2, 3, 0, 0, 0});
  EXPECT_EQ(outs[1].dtype, DType::I32);
  expectValues(outs[1], {2, 3}, {1, 2, 3, 7, 7, 7});
  expectValues(outs[2], {2, 3}, {1, 2, 2.5, -1, -1, -1});
  EXPECT_EQ(outs[3].dtype, DType::I32);
  expectValues(outs[3], {3}, {2, 2, 3});
  expectValues(outs[4], {2, 3}, {2.5, 2.5, 3, 1, 2, 3});
}

//===----------------------------------------------------------------------===//
// Reductions, pooling, normalisation
//===----------------------------------------------------------------------===//

TEST(Reference, ReductionsOverEveryDim) {
  // x[a, b, c] = 6a + 2b + c on [2, 3, 2].
  std::vector<double> v(12);
  for (int i = 0; i < 12; ++i)
    v[i] = i;
  auto outs =
      run(R"(
model m(x: f32[2, 3, 2], i: i32[2, 2]) -> (f32[3, 2], f32[2, 2], f32[2, 3, 1],
    f32[2, 3], f32[2, 1, 2], i32[2], i32[2]) {
  return sum(x, dim=0), mean(x, dim=1), max(x, dim=-1, keepdim=1),
         min(x, dim=2), sum(x, dim=-2, keepdim=1), max(i, dim=0), min(i, dim=1)
})",
          {{"x", f32({2, 3, 2}, v)}, {"i", i32({2, 2}, {4, -1, 2, 7})}});
  ASSERT_EQ(outs.size(), 7u);
  // sum over a: 6 + 4b + 2c.
  expectValues(outs[0], {3, 2}, {6, 8, 10, 12, 14, 16});
  // mean over b: 6a + 2 + c.
  expectValues(outs[1], {2, 2}, {2, 3, 8, 9});
  // max over c: 6a + 2b + 1.
  expectValues(outs[2], {2, 3, 1}, {1, 3, 5, 7, 9, 11});
  // min over c: 6a + 2b.
  expectValues(outs[3], {2, 3}, {0, 2, 4, 6, 8, 10});
  // sum over b: 18a + 6 + 3c.
  expectValues(outs[4], {2, 1, 2}, {6, 9, 24, 27});
  EXPECT_EQ(outs[5].dtype, DType::I32);
  expectValues(outs[5], {2}, {4, 7});
  expectValues(outs[6], {2}, {-1, 2});
}

TEST(Reference, MeanPoolClampsLengths) {
  // Lengths -3 and 0 give 0; 1 averages one position; 5 > S = 2 averages
  // both.
  std::vector<double> v(16);
  for (int i = 0; i < 16; ++i)
    v[i] = i + 1;
  auto outs =
      run(R"(
model m<B, S>(x: f32[B, S, 2], lengths: i32[B]) -> f32[B, 2] {
  return mean_pool(x, lengths)
})",
          {{"x", f32({4, 2, 2}, v)}, {"lengths", i32({4}, {-3, 0, 1, 5})}});
  ASSERT_EQ(outs.size(), 1u);
  // Rows: b2 = [[9, 10], [11, 12]] -> first position; b3 = [[13, 14],
  // [15, 16]] -> mean of both.
  expectValues(outs[0], {4, 2}, {0, 0, 0, 0, 9, 10, 14, 15});
}

TEST(Reference, L2NormalizeWithZeroRowAndEps) {
  auto outs = run(R"(
model m(x: f32[3, 2]) -> (f32[3, 2], f32[3, 2]) {
  return l2_normalize(x), l2_normalize(x, eps=10)
})",
                  {{"x", f32({3, 2}, {3, 4, 0, 0, -1e-13, 0})}});
  ASSERT_EQ(outs.size(), 2u);
  // A zero row stays 0 (0 / eps); a row with a norm below eps is divided by
  // eps: -1e-13 / 1e-12 = -0.1.
  expectValues(outs[0], {3, 2}, {0.6, 0.8, 0, 0, -0.1, 0}, 1e-7);
  expectValues(outs[1], {3, 2}, {0.3, 0.4, 0, 0, -1e-14, 0}, 1e-7);
}

//===----------------------------------------------------------------------===//
// Gathers, positions, subscripts
//===----------------------------------------------------------------------===//

TEST(Reference, EmbeddingAndArange) {
  auto outs = run(R"(
model m<S>(ids: i32[2, S]) -> (f32[2, S, 2], f32[S, 2], i32[S], i32[3]) {
  param table: f32[3, 2]
  return embedding(table, ids), embedding(table, arange(S)), arange(S),
         arange(3)
})",
                  {{"ids", i32({2, 2}, {2, 0, 1, 1})}},
                  {{"table", f32({3, 2}, {0, 1, 10, 11, 20, 21})}});
  ASSERT_EQ(outs.size(), 4u);
  expectValues(outs[0], {2, 2, 2}, {20, 21, 0, 1, 10, 11, 10, 11});
  expectValues(outs[1], {2, 2}, {0, 1, 10, 11});
  EXPECT_EQ(outs[2].dtype, DType::I32);
  expectValues(outs[2], {2}, {0, 1});
  expectValues(outs[3], {3}, {0, 1, 2});
}

TEST(Reference, EmbeddingIdOutOfRangeNamesTheIds) {
  const std::string src = R"(
model m<S>(ids: i32[S]) -> f32[S, 2] {
  param table: f32[3, 2]
  return embedding(table, ids)
})";
  ast::Module m;
  ASSERT_TRUE(frontEnd(src, m));
  for (double bad : {3.0, -1.0}) {
    std::vector<RefTensor> outs;
    std::string error;
    EXPECT_FALSE(evaluate(m.models[0], {{"ids", i32({2}, {0, bad})}},
                          {{"table", zeros({3, 2})}}, outs, error));
    EXPECT_NE(error.find("'ids' holds id " + std::to_string(int(bad))),
              std::string::npos)
        << error;
    EXPECT_NE(error.find("outside [0, 3)"), std::string::npos) << error;
  }
}

TEST(Reference, SubscriptsWithNegativeIndexRangesAndSizeNames) {
  // x[a, b, c] = 12a + 4b + c on [2, 3, 4].
  std::vector<double> v(24), p(20);
  for (int i = 0; i < 24; ++i)
    v[i] = i;
  for (int i = 0; i < 20; ++i)
    p[i] = 100 + i;
  auto outs = run(
      R"(
model m<S>(x: f32[2, 3, 4], y: f32[2, S, 4]) -> (f32[2, 4], f32[S, 4],
    f32[2, 3, 2], f32[3, 4], f32[2, 4], f32[2, 3, 2], f32[2, 4]) {
  param p: f32[5, 4]
  return x[..., -1, :], p[0:S, :], x[:, :, 2:4], x[1, ...], x[-2, 1:, ...],
         x[..., -2:], y[:, -1, :]
})",
      {{"x", f32({2, 3, 4}, v)},
       {"y", f32({2, 2, 4}, std::vector<double>(v.begin(), v.begin() + 16))}},
      {{"p", f32({5, 4}, p)}});
  ASSERT_EQ(outs.size(), 7u);
  // x[:, 2, :]
  expectValues(outs[0], {2, 4}, {8, 9, 10, 11, 20, 21, 22, 23});
  // the first S = 2 rows of p
  expectValues(outs[1], {2, 4}, {100, 101, 102, 103, 104, 105, 106, 107});
  expectValues(outs[2], {2, 3, 2},
               {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23});
  expectValues(outs[3], {3, 4},
               {12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23});
  // x[0, 1:3, :]
  expectValues(outs[4], {2, 4}, {4, 5, 6, 7, 8, 9, 10, 11});
  expectValues(outs[5], {2, 3, 2},
               {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23});
  // y (the first 16 values as [2, 2, 4]) at its last position S - 1 = 1.
  expectValues(outs[6], {2, 4}, {4, 5, 6, 7, 12, 13, 14, 15});
}

TEST(Reference, SubscriptBoundsPastTheDimAreErrors) {
  const std::string src = R"(
model m<S>(x: f32[S, 2]) -> (f32[3, 2], f32[S, 2]) {
  param p: f32[5, 2]
  return x[2:5, :], p[0:S, :]
})";
  ast::Module m;
  ASSERT_TRUE(frontEnd(src, m));
  std::vector<RefTensor> outs;
  std::string error;
  // S = 4: x[2:5] runs past S.
  EXPECT_FALSE(evaluate(m.models[0], {{"x", zeros({4, 2})}},
                        {{"p", zeros({5, 2})}}, outs, error));
  EXPECT_NE(error.find("range 2:5 is out of range for dim 0 of f32[4, 2]"),
            std::string::npos)
      << error;
  // S = 6: p[0:S] runs past p's 5 rows.
  EXPECT_FALSE(evaluate(m.models[0], {{"x", zeros({6, 2})}},
                        {{"p", zeros({5, 2})}}, outs, error));
  EXPECT_NE(error.find("range 0:6 is out of range for dim 0 of f32[5, 2]"),
            std::string::npos)
      << error;
  // S = 5 fits both.
  EXPECT_TRUE(evaluate(m.models[0], {{"x", zeros({5, 2})}},
                       {{"p", zeros({5, 2})}}, outs, error))
      << error;
}

//===----------------------------------------------------------------------===//
// Model calls and loops
//===----------------------------------------------------------------------===//

const char *kLayerModels = R"(
model layer<N>(x: f32[N, 2]) -> f32[N, 2] {
  param w: f32[2, 2]
  param b: f32[2] = "bias"
  return linear(x, w, b)
}

model two<N>(x: f32[N, 2]) -> f32[N, 2] {
  h = layer(x, params="enc.0.")
  return layer(h, params="enc.1.")
}

model nested<N>(x: f32[N, 2]) -> f32[N, 2] {
  return two(x, params="outer.") * 2
}
)";

TEST(Reference, ModelCallBindsWeightsUnderThePrefix) {
  // enc.0: y = x @ [[1, 0], [0, 2]]^T + [1, 1]; enc.1: y = h @ [[0, 1],
  // [1, 0]]^T + [0, 10] (swaps the columns).
  Tensors weights = {{"enc.0.w", f32({2, 2}, {1, 0, 0, 2})},
                     {"enc.0.bias", f32({2}, {1, 1})},
                     {"enc.1.w", f32({2, 2}, {0, 1, 1, 0})},
                     {"enc.1.bias", f32({2}, {0, 10})}};
  auto outs = runModel(kLayerModels, "two",
                       {{"x", f32({3, 2}, {1, 2, 0, 0, -1, 3})}}, weights);
  ASSERT_EQ(outs.size(), 1u);
  // enc.0: [2, 5], [1, 1], [0, 7]; enc.1: [5, 12], [1, 11], [7, 10].
  expectValues(outs[0], {3, 2}, {5, 12, 1, 11, 7, 10});

  // Nested calls join the prefixes: outer.enc.0.w ...
  Tensors outer;
  for (const auto &[k, t] : weights)
    outer["outer." + k] = t;
  outs = runModel(kLayerModels, "nested", {{"x", f32({1, 2}, {1, 2})}}, outer);
  ASSERT_EQ(outs.size(), 1u);
  expectValues(outs[0], {1, 2}, {10, 24});

  // A missing weight is named with its whole prefix.
  std::string error;
  weights.erase("enc.1.w");
  runModel(kLayerModels, "two", {{"x", f32({1, 2}, {1, 2})}}, weights, &error);
  EXPECT_NE(error.find("in the call of 'layer' (params=\"enc.1.\")"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("weight 'enc.1.w' is missing"), std::string::npos)
      << error;
}

TEST(Reference, LoopUnrollsAndRebinds) {
  // h <- h * w_i + i for i = 0, 1, 2 with w_0 = [2, 1], w_1 = [1, 3],
  // w_2 = [0.5, 1], from h = [1, 1]: [2, 1], [3, 4], [3.5, 6].
  const std::string src = R"(
model scale<N>(x: f32[N, 2]) -> f32[N, 2] {
  param w: f32[2]
  return x * w
}

model top<N>(x: f32[N, 2]) -> (f32[N, 2], f32[N, 2]) {
  h = x
  g = x
  for i in 0..3 {
    h = scale(h, params="l.{i}.") + i
    g = g * 2
  }
  return h, g
}
)";
  auto outs = runModel(src, "top", {{"x", f32({1, 2}, {1, 1})}},
                       {{"l.0.w", f32({2}, {2, 1})},
                        {"l.1.w", f32({2}, {1, 3})},
                        {"l.2.w", f32({2}, {0.5, 1})}});
  ASSERT_EQ(outs.size(), 2u);
  expectValues(outs[0], {1, 2}, {3.5, 6});
  expectValues(outs[1], {1, 2}, {8, 8});
}

TEST(Reference, BertLayerFromTheDesignEvaluates) {
  // The example of DESIGN.md section 3 at B = 2, S = 5, with random weights
  // and g = 1, b = 0 in the last layer_norm: every output row has mean 0 and
  // variance ~1.
  std::ifstream file(ATTN_EXAMPLES_DIR "/bert_layer.attn");
  std::stringstream text;
  text << file.rdbuf();
  const std::string src = text.str();
  Tensors weights;
  unsigned seed = 100;
  auto add = [&](const char *name, std::vector<int64_t> shape) {
    RefTensor t = random(shape, seed++);
    for (double &v : t.data)
      v = roundToDType(v * 0.05, DType::F32);
    weights[name] = t;
  };
  add("wq", {768, 768});
  add("bq", {768});
  add("wk", {768, 768});
  add("bk", {768});
  add("wv", {768, 768});
  add("bv", {768});
  add("wo", {768, 768});
  add("bo", {768});
  add("ln1_g", {768});
  add("ln1_b", {768});
  add("w1", {3072, 768});
  add("b1", {3072});
  add("w2", {768, 3072});
  add("b2", {768});
  weights["ln2_g"] = RefTensor({768}, std::vector<double>(768, 1.0));
  weights["ln2_b"] = zeros({768});
  auto outs =
      run(src, {{"x", random({2, 5, 768}, 1)}, {"lengths", i32({2}, {5, 3})}},
          weights);
  ASSERT_EQ(outs.size(), 1u);
  ASSERT_EQ(outs[0].shape, (std::vector<int64_t>{2, 5, 768}));
  for (int r = 0; r < 10; ++r) {
    double sum = 0, sq = 0;
    for (int j = 0; j < 768; ++j) {
      double v = outs[0].data[r * 768 + j];
      ASSERT_TRUE(std::isfinite(v));
      sum += v;
      sq += v * v;
    }
    EXPECT_NEAR(sum / 768, 0.0, 1e-5);
    EXPECT_NEAR(sq / 768, 1.0, 1e-4);
  }
}

//===----------------------------------------------------------------------===//
// KV caches: inout arguments, cache_write, causal(start), unsqueeze
//===----------------------------------------------------------------------===//

/// Parses and checks `src` and evaluates its model `name`, returning the
/// outputs and, in `inouts`, the inout arguments after the run. On an
/// evaluation error, `errorOut` (if given) receives it; otherwise it fails.
std::vector<RefTensor> runInout(const std::string &src, const std::string &name,
                                const Tensors &inputs, Tensors &inouts,
                                const Tensors &weights = {},
                                std::string *errorOut = nullptr) {
  std::ostringstream errs;
  SourceDiagnostics diags("test.attn", src, errs);
  std::optional<ast::Module> m = parseModule(diags);
  if (!m || !checkModule(*m, diags)) {
    ADD_FAILURE() << "front end failed:\n" << errs.str();
    return {};
  }
  for (const ast::Model &model : m->models)
    if (model.name == name) {
      std::vector<RefTensor> outs;
      std::string error;
      bool ok = evaluate(model, inputs, weights, outs, error, &inouts);
      if (errorOut)
        *errorOut = ok ? "" : error;
      else
        EXPECT_TRUE(ok) << error;
      return outs;
    }
  ADD_FAILURE() << "no model " << name;
  return {};
}

const char *kCacheWrite = R"(
model m<B, S, T>(k: f32[B, 1, S, 2], start: i32[B],
                 cache: inout f32[B, 1, T, 2]) -> (f32[B, 1, T, 2], f32[B, 1, T, 2]) {
  return cache_write(cache, k, start), cache
}
)";

TEST(Reference, CacheWriteWritesRowsAtEachStart) {
  // B = 2, S = 2, T = 4, the cache all -1: row 0 writes at 0, row 1 at
  // T - S = 2 (the last start that fits).
  Tensors inouts;
  RefTensor cache({2, 1, 4, 2}, std::vector<double>(16, -1.0));
  auto outs = runInout(kCacheWrite, "m",
                       {{"k", f32({2, 1, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8})},
                        {"start", i32({2}, {0, 2})},
                        {"cache", cache}},
                       inouts);
  ASSERT_EQ(outs.size(), 2u);
  const std::vector<double> after = {1,  2,  3,  4,  -1, -1, -1, -1,
                                     -1, -1, -1, -1, 5,  6,  7,  8};
  // The value of cache_write is the cache after the write ...
  expectValues(outs[0], {2, 1, 4, 2}, after);
  EXPECT_EQ(outs[0].dtype, DType::F32);
  // ... the name still reads the cache as the call found it ...
  expectValues(outs[1], {2, 1, 4, 2}, std::vector<double>(16, -1.0));
  // ... and the caller's buffer holds the rows after the call.
  ASSERT_EQ(inouts.count("cache"), 1u);
  expectValues(inouts["cache"], {2, 1, 4, 2}, after);
  EXPECT_EQ(inouts["cache"].dtype, DType::F32);
  EXPECT_EQ(inouts.size(), 1u);
}

TEST(Reference, CacheWriteStartOutOfRangeNamesTheCache) {
  RefTensor cache({2, 1, 4, 2}, DType::F32);
  RefTensor k = f32({2, 1, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  for (auto [s0, s1, bad] : {std::tuple<double, double, const char *>{
                                 0, 3, "start[1] = 3 with 2 new rows"},
                             {-1, 0, "start[0] = -1 with 2 new rows"}}) {
    Tensors inouts = {{"stale", zeros({1})}};
    std::string error;
    runInout(kCacheWrite, "m",
             {{"k", k}, {"start", i32({2}, {s0, s1})}, {"cache", cache}},
             inouts, {}, &error);
    EXPECT_NE(error.find("cache_write: 'cache' holds 4 positions but " +
                         std::string(bad)),
              std::string::npos)
        << error;
    EXPECT_TRUE(inouts.empty()) << "no buffers after a failed run";
  }
}

TEST(Reference, CacheWriteRoundsToTheCacheDtype) {
  // An f16 cache (10 fraction bits: a quantum of 2^-10 in [1, 2), 2^-9 in
  // [2, 4)) stores 1 + 2^-12 as 1 (below half a quantum) and 3 + 3 * 2^-11
  // as 3 + 2^-9 (above half); the value read back is f32 with the stored
  // values.
  const double a = 1 + std::ldexp(1.0, -12), b = 3 + 3 * std::ldexp(1.0, -11);
  Tensors inouts;
  RefTensor cache({1, 1, 2, 2}, std::vector<double>(4, 0.5), DType::F16);
  auto outs = runInout(R"(
model m(k: f32[1, 1, 1, 2], start: i32[1], cache: inout f16[1, 1, 2, 2])
    -> f32[1, 1, 2, 2] {
  return cache_write(cache, k, start)
})",
                       "m",
                       {{"k", f32({1, 1, 1, 2}, {a, b})},
                        {"start", i32({1}, {1})},
                        {"cache", cache}},
                       inouts);
  ASSERT_EQ(outs.size(), 1u);
  const std::vector<double> want = {0.5, 0.5, 1, 3 + std::ldexp(1.0, -9)};
  expectValues(outs[0], {1, 1, 2, 2}, want, 0);
  EXPECT_EQ(outs[0].dtype, DType::F32);
  expectValues(inouts["cache"], {1, 1, 2, 2}, want, 0);
  EXPECT_EQ(inouts["cache"].dtype, DType::F16);
}

TEST(Reference, CausalWithStartsPlacesQueriesAtTheCachePosition) {
  // S = 2 queries over T = 4 keys, all scores 0. Row 0 starts at 0: its
  // queries are at positions 0 and 1 and see keys 0 and 0..1. Row 1 starts
  // at 1: positions 1 and 2. (Bare `causal` would give keys 0..2 and 0..3
  // in both rows.)
  auto outs = run(R"(
model m<B, S, T>(s: f32[B, 1, S, T], start: i32[B]) -> f32[B, 1, S, T] {
  return softmax(s, mask=causal(start))
})",
                  {{"s", zeros({2, 1, 2, 4})}, {"start", i32({2}, {0, 1})}});
  ASSERT_EQ(outs.size(), 1u);
  const double h = 0.5, t = 1.0 / 3;
  expectValues(outs[0], {2, 1, 2, 4},
               {1, 0, 0, 0, h, h, 0, 0, h, h, 0, 0, t, t, t, 0}, 1e-7);
}

TEST(Reference, CacheDecodeStepsMatchFullCausalAttention) {
  // A prefill of 3 tokens at start 0 and two decode steps of 1 token (at
  // starts 3 and 4) through cache_write + causal(start) (GQA, 2 query heads
  // on 1 kv head) give the rows of causal attention over all 5 tokens; the
  // caches carry over between the calls as the caller's buffers.
  const int N = 5, T = 7; // T > N: rows past the written ones stay unread
  RefTensor q = random({1, 2, N, 4}, 31), k = random({1, 1, N, 4}, 32),
            v = random({1, 1, N, 4}, 33);
  auto full = run(R"(
model full<N>(q: f32[1, 2, N, 4], k: f32[1, 1, N, 4], v: f32[1, 1, N, 4])
    -> f32[1, 2, N, 4] {
  return attention(q, k, v, mask=causal)
})",
                  {{"q", q}, {"k", k}, {"v", v}});
  ASSERT_EQ(full.size(), 1u);
  auto rows = [](const RefTensor &x, int from, int n) {
    const int64_t H = x.shape[1], S = x.shape[2];
    RefTensor y({1, H, n, 4}, DType::F32);
    for (int64_t h = 0; h < H; ++h)
      for (int i = 0; i < n; ++i)
        for (int d = 0; d < 4; ++d)
          y.data[(h * n + i) * 4 + d] = x.data[(h * S + from + i) * 4 + d];
    return y;
  };
  const std::string step = R"(
model step<B, S, T>(q: f32[B, 2, S, 4], k: f32[B, 1, S, 4], v: f32[B, 1, S, 4],
                    start: i32[B], kc: inout f32[B, 1, T, 4],
                    vc: inout f32[B, 1, T, 4]) -> f32[B, 2, S, 4] {
  ka = cache_write(kc, k, start)
  va = cache_write(vc, v, start)
  return attention(q, ka, va, mask=causal(start))
})";
  // Garbage in the unwritten rows: masked keys must not matter.
  RefTensor kc = random({1, 1, T, 4}, 34), vc = random({1, 1, T, 4}, 35);
  for (auto [from, n] : {std::pair<int, int>{0, 3}, {3, 1}, {4, 1}}) {
    Tensors inouts;
    auto outs = runInout(step, "step",
                         {{"q", rows(q, from, n)},
                          {"k", rows(k, from, n)},
                          {"v", rows(v, from, n)},
                          {"start", i32({1}, {double(from)})},
                          {"kc", kc},
                          {"vc", vc}},
                         inouts);
    ASSERT_EQ(outs.size(), 1u);
    RefTensor want = rows(full[0], from, n);
    std::string report;
    EXPECT_TRUE(compare(want, outs[0].data.data(), outs[0].data.size(), 0, 1e-7,
                        report))
        << "tokens " << from << ".." << from + n - 1 << ": " << report;
    kc = inouts.at("kc");
    vc = inouts.at("vc");
  }
  // The caches now hold the 5 keys and values in rows 0..4.
  for (int i = 0; i < N * 4; ++i) {
    EXPECT_EQ(kc.data[i], roundToDType(k.data[i], DType::F32));
    EXPECT_EQ(vc.data[i], roundToDType(v.data[i], DType::F32));
  }
}

TEST(Reference, Unsqueeze) {
  // [2, 3] at dim 0, 1, 2 and -1 (= 2), and -3 (= 0); i32 positions
  // start[b] + s as gpt2.attn builds them.
  auto outs = run(R"(
model m<B, S>(x: f32[2, 3], start: i32[B], y: f32[B, S])
    -> (f32[1, 2, 3], f32[2, 1, 3], f32[2, 3, 1], f32[2, 3, 1], f32[1, 2, 3], i32[B, S]) {
  p = unsqueeze(start, dim=1) + arange(S)
  return unsqueeze(x, dim=0), unsqueeze(x, dim=1), unsqueeze(x, dim=2),
         unsqueeze(x, dim=-1), unsqueeze(x, dim=-3), p
})",
                  {{"x", f32({2, 3}, {1, 2, 3, 4, 5, 6})},
                   {"start", i32({2}, {0, 5})},
                   {"y", zeros({2, 3})}});
  ASSERT_EQ(outs.size(), 6u);
  const std::vector<double> x = {1, 2, 3, 4, 5, 6};
  expectValues(outs[0], {1, 2, 3}, x);
  expectValues(outs[1], {2, 1, 3}, x);
  expectValues(outs[2], {2, 3, 1}, x);
  expectValues(outs[3], {2, 3, 1}, x);
  expectValues(outs[4], {1, 2, 3}, x);
  expectValues(outs[5], {2, 3}, {0, 1, 2, 5, 6, 7});
  EXPECT_EQ(outs[5].dtype, DType::I32);

  // Without Sema, the interpreter's own range check: rank 2 allows -3..2.
  for (const char *d : {"3", "-4"}) {
    std::string err = runError(std::string(R"(
model m(x: f32[2, 3]) -> f32[2, 3] {
  return unsqueeze(x, dim=)") + d + ")\n}",
                               {{"x", zeros({2, 3})}});
    EXPECT_NE(err.find(std::string("dim ") + d +
                       " is out of range for unsqueeze of f32[2, 3]"),
              std::string::npos)
        << err;
  }
}

TEST(Reference, SubscriptTakesTrailingDimsWhole) {
  // x: [2, 3, 2] = 0..11; x[1] is [3, 2] = 6..11; x[-1, 0] is [2] = 6, 7.
  std::vector<double> x(12);
  for (int i = 0; i < 12; ++i)
    x[i] = i;
  const std::string src = R"(
model m(x: f32[2, 3, 2]) -> (f32[3, 2], f32[2]) {
  return x[1], x[-1, 0]
})";
  for (bool sema : {true, false}) {
    ast::Module m;
    ASSERT_TRUE(frontEnd(src, m, sema));
    std::vector<RefTensor> outs;
    std::string error;
    ASSERT_TRUE(
        evaluate(m.models[0], {{"x", f32({2, 3, 2}, x)}}, {}, outs, error))
        << error;
    ASSERT_EQ(outs.size(), 2u);
    expectValues(outs[0], {3, 2}, {6, 7, 8, 9, 10, 11});
    expectValues(outs[1], {2}, {6, 7});
  }
}

const char *kCacheLayers = R"(
model layer<B, S, T>(x: f32[B, 1, S, 2], start: i32[B],
                     c: inout f32[B, 1, T, 2]) -> f32[B, 1, S, 2] {
  param w: f32[2]
  return x * w + mean(cache_write(c, x * w, start), dim=2, keepdim=1)
}

model stack<B, S, T>(x: f32[B, 1, S, 2], start: i32[B],
                     cache: inout f32[2, B, 1, T, 2]) -> f32[B, 1, S, 2] {
  h = x
  for i in 0..2 {
    h = layer(h, start, cache[i], params="l.{i}.")
  }
  return h
}

model whole<B, S, T>(x: f32[B, 1, S, 2], start: i32[B],
                     c: inout f32[B, 1, T, 2]) -> f32[B, 1, S, 2] {
  return layer(x, start, c, params="l.1.")
}
)";

TEST(Reference, ModelCallsWriteIntoTheCallersCacheSlices) {
  // B = S = 1, T = 2, start 1; cache[1] holds [4, 4] in row 0, the rest 0.
  // Layer 0 (w = [2, 3]): x * w = [2, 6] goes to row 1 of cache[0]; the
  // mean over T of [[0, 0], [2, 6]] is [1, 3]: h = [3, 9].
  // Layer 1 (w = [1, -1]): h * w = [3, -9] goes to row 1 of cache[1]; the
  // mean of [[4, 4], [3, -9]] is [3.5, -2.5]: h = [6.5, -11.5].
  Tensors weights = {{"l.0.w", f32({2}, {2, 3})}, {"l.1.w", f32({2}, {1, -1})}};
  RefTensor cache({2, 1, 1, 2, 2}, DType::F32);
  cache.data[4] = cache.data[5] = 4;
  Tensors inouts;
  auto outs = runInout(kCacheLayers, "stack",
                       {{"x", f32({1, 1, 1, 2}, {1, 2})},
                        {"start", i32({1}, {1})},
                        {"cache", cache}},
                       inouts, weights);
  ASSERT_EQ(outs.size(), 1u);
  expectValues(outs[0], {1, 1, 1, 2}, {6.5, -11.5});
  expectValues(inouts.at("cache"), {2, 1, 1, 2, 2}, {0, 0, 2, 6, 4, 4, 3, -9});

  // The whole buffer passed on (no slice): the callee's write is the
  // caller's, and the caller's other rows stay.
  inouts.clear();
  outs = runInout(kCacheLayers, "whole",
                  {{"x", f32({1, 1, 1, 2}, {3, 9})},
                   {"start", i32({1}, {0})},
                   {"c", f32({1, 1, 2, 2}, {7, 7, 8, 8})}},
                  inouts, weights);
  ASSERT_EQ(outs.size(), 1u);
  // [3, -9] + mean([[3, -9], [8, 8]]) = [3, -9] + [5.5, -0.5].
  expectValues(outs[0], {1, 1, 1, 2}, {8.5, -9.5});
  expectValues(inouts.at("c"), {1, 1, 2, 2}, {3, -9, 8, 8});

  // A failing write in the second call is reported with the call.
  std::string error;
  runInout(kCacheLayers, "stack",
           {{"x", f32({1, 1, 1, 2}, {1, 2})},
            {"start", i32({1}, {2})},
            {"cache", cache}},
           inouts, weights, &error);
  EXPECT_NE(error.find("in the call of 'layer' (params=\"l.0.\")"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("'c' holds 2 positions but start[0] = 2"),
            std::string::npos)
      << error;
}

TEST(Reference, CacheWriteOfAnInputThatIsNotInoutIsAnError) {
  // Sema rejects it; the interpreter, run without Sema, does too.
  std::string err = runError(R"(
model m(x: f32[1, 1, 2, 2], k: f32[1, 1, 1, 2], start: i32[1]) -> f32[1, 1, 2, 2] {
  return cache_write(x, k, start)
})",
                             {{"x", zeros({1, 1, 2, 2})},
                              {"k", zeros({1, 1, 1, 2})},
                              {"start", i32({1}, {0})}});
  EXPECT_NE(err.find("cache_write writes an inout argument of the model, not "
                     "'x'"),
            std::string::npos)
      << err;
}

//===----------------------------------------------------------------------===//
// compare()
//===----------------------------------------------------------------------===//

TEST(Compare, PassesWithinToleranceAndReports) {
  RefTensor ref = f32({2, 2}, {1, -2, 100, 0});
  const float got[] = {1.0001f, -2.0f, 100.01f, 0.0f};
  std::string report;
  EXPECT_TRUE(compare(ref, got, 4, 1e-3, 1e-6, report)) << report;
  EXPECT_EQ(report.rfind("ok", 0), 0u) << report;
  EXPECT_FALSE(compare(ref, got, 4, 1e-5, 1e-6, report));
  // The first failure is element 0 at (0, 0).
  EXPECT_NE(report.find("first failure at 0(0, 0)"), std::string::npos)
      << report;
  // The largest absolute error is at element 2 = (1, 0).
  EXPECT_NE(report.find("max abs err"), std::string::npos) << report;
  EXPECT_NE(report.find("at 2(1, 0)"), std::string::npos) << report;
}

TEST(Compare, NanInfAndSizeMismatchFail) {
  RefTensor ref = f32({3}, {0, 0, 0});
  const float nan = std::nanf("");
  const float withNan[] = {0, nan, INFINITY};
  std::string report;
  EXPECT_FALSE(compare(ref, withNan, 3, 1, 1, report));
  EXPECT_NE(report.find("NaN 1, Inf 1"), std::string::npos) << report;
  EXPECT_NE(report.find("2 failing"), std::string::npos) << report;
  EXPECT_FALSE(compare(ref, withNan, 2, 1, 1, report));
  EXPECT_NE(report.find("size mismatch"), std::string::npos) << report;
  RefTensor inf = f32({1}, {INFINITY});
  const double gotInf[] = {INFINITY};
  EXPECT_TRUE(compare(inf, gotInf, 1, 0, 0, report)) << report;
}

} // namespace
