//===- ApproxTest.cpp - Error bounds and edge cases of Approx.h -----------===//
//
// Each approximation is evaluated by a Halide pipeline JIT-compiled for the
// host and vectorised by 16 (so the AVX-512 or AVX2 code paths the kernels
// use are the ones tested), over a dense grid plus the edge cases, and
// compared with the C library in double.
//
//===----------------------------------------------------------------------===//

#include "attn/Halide/Approx.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

namespace {

/// f applied to every element of xs by a vectorised Halide pipeline.
std::vector<float> evaluate(const std::function<Halide::Expr(Halide::Expr)> &f,
                            std::vector<float> xs) {
  Halide::Buffer<float> in(xs.data(), (int)xs.size());
  Halide::Var i("i");
  Halide::Func g("g");
  g(i) = f(in(i));
  g.vectorize(i, 16, Halide::TailStrategy::GuardWithIf);
  Halide::Buffer<float> out = g.realize({(int)xs.size()});
  return std::vector<float>(out.data(), out.data() + xs.size());
}

/// n evenly spaced floats in [lo, hi].
std::vector<float> grid(double lo, double hi, int n) {
  std::vector<float> xs;
  for (int k = 0; k < n; ++k)
    xs.push_back((float)(lo + (hi - lo) * k / (n - 1)));
  return xs;
}

TEST(Exp2Approx, RelativeErrorWithinBoundDownToTheCutoff) {
  // Dense near 0 (where the softmax's large weights are) and over the whole
  // normal range, plus the integers, where the range reduction switches.
  std::vector<float> xs = grid(-1.0, 0.0, 1 << 16);
  for (float x : grid(-125.49998, 0.0, 1 << 18))
    xs.push_back(x);
  for (int k = 0; k <= 125; ++k)
    for (float d : {0.0f, 0.5f, 0.49999997f, -0.5f})
      if (-k + d <= 0.0f && -k + d > -125.5f)
        xs.push_back((float)-k + d);
  std::vector<float> ys = evaluate(attn::exp2Approx, xs);
  double worst = 0;
  for (size_t k = 0; k < xs.size(); ++k) {
    double ref = std::exp2((double)xs[k]);
    double rel = std::fabs(ys[k] - ref) / ref;
    worst = std::max(worst, rel);
    ASSERT_LE(rel, 2.5e-7) << "2^" << xs[k] << " = " << ys[k] << ", want " << ref;
  }
  RecordProperty("max_relative_error", std::to_string(worst));
}

TEST(Exp2Approx, ExactlyZeroBelowTheCutoffAndNeverDenormal) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> xs = grid(-200.0, -120.0, 80001);
  for (float x : {-125.49998f, -125.5f, -125.50002f, -126.0f, -127.0f, -149.0f, -1e30f, -FLT_MAX,
                  -inf})
    xs.push_back(x);
  std::vector<float> ys = evaluate(attn::exp2Approx, xs);
  for (size_t k = 0; k < xs.size(); ++k) {
    if (xs[k] <= -125.5f)
      EXPECT_EQ(ys[k], 0.0f) << "2^" << xs[k];
    else
      EXPECT_GE(ys[k], FLT_MIN) << "2^" << xs[k] << " is not a normal float";
  }
}

TEST(Exp2Approx, OneAtZero) {
  EXPECT_EQ(evaluate(attn::exp2Approx, {0.0f, -0.0f}),
            (std::vector<float>{1.0f, 1.0f}));
}

TEST(ErfApprox, AbsoluteErrorWithinBound) {
  std::vector<float> xs = grid(-6.0, 6.0, 1 << 18);
  for (float x : {0.0f, -0.0f, 1e-30f, -1e-30f, 10.0f, -10.0f, 1e30f})
    xs.push_back(x);
  std::vector<float> ys = evaluate(attn::erfApprox, xs);
  double worst = 0;
  size_t at = 0;
  for (size_t k = 0; k < xs.size(); ++k) {
    double err = std::fabs(ys[k] - std::erf((double)xs[k]));
    if (err > worst)
      worst = err, at = k;
  }
  EXPECT_LE(worst, 8e-7) << "erf(" << xs[at] << ") = " << ys[at];
  RecordProperty("max_absolute_error", std::to_string(worst));
}

TEST(ErfApprox, OddAndSaturating) {
  std::vector<float> ys = evaluate(attn::erfApprox, {0.5f, -0.5f, 9.0f, -9.0f});
  EXPECT_EQ(ys[0], -ys[1]);
  EXPECT_EQ(ys[2], 1.0f);
  EXPECT_EQ(ys[3], -1.0f);
}

} // namespace
