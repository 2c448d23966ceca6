//===- Approx.cpp - Vector-friendly approximations of math functions -----===//
//
// See Approx.h.
//
//===----------------------------------------------------------------------===//

#include "attn/Halide/Approx.h"

using Halide::Expr;

namespace attn {

/// 2^x for x <= 0 in 11 vector ops, none of them a conversion:
/// - x is clamped at -126, and t = x + (1.5 * 2^23 + 126) rounds it to the
///   nearest integer k: t's low mantissa bits hold n = k + 126 in [0, 126];
/// - f = x - k in [-0.5, 0.5], and 2 * 2^f by a degree-5 polynomial (a
///   minimax fit with p(0) = 2 exactly, so 2^0 = 1 exactly: relative error
///   9.1e-8, 1.9e-7 evaluated in f32);
/// - t's bits shifted left by 23 are n in the exponent field, the float
///   2^(k - 1), and the result is their product.
/// At k = -126 (x <= -125.5) the exponent bits are 0 and the result exactly 0;
/// every other result is at least 1.4 * 2^-126, a normal float. So a masked
/// score weighs nothing, and no denormal ever reaches an accumulator
/// (denormal arithmetic costs a microcode assist per instruction on x86).
Expr exp2Approx(Expr x) {
  const float magic = 12582912.0f + 126.0f; // 1.5 * 2^23 + 126, exact
  Expr xc = Halide::max(x, -126.0f);
  Expr t = xc + magic;
  // Strict: the simplifier and LLVM would otherwise fold (x + c) - c to x.
  Expr f = Halide::strict_float(xc - (t - magic));
  Expr p = 0.002652945462614298f;
  p = p * f + 0.019343025982379913f;
  p = p * f + 0.11101467162370682f;
  p = p * f + 0.48044484853744507f;
  p = p * f + 1.3862940073013306f;
  p = p * f + 2.0f;
  Expr bits = Halide::reinterpret<uint32_t>(t) << 23;
  return p * Halide::reinterpret<float>(bits);
}

/// erf(x) by Abramowitz & Stegun 7.1.26: max abs error 1.5e-7 in exact
/// arithmetic, 7.6e-7 measured in f32 near 0, where 1 - poly * exp(-x^2)
/// cancels (tests/unit/halide); Halide has no erf.
Expr erfApprox(Expr x) {
  Expr ax = Halide::abs(x);
  // 1 / d by the hardware's reciprocal estimate and one Newton step (about
  // 2^-23 relative error, as the division): a vector division costs as much
  // as the rest of the approximation.
  Expr d = 1.0f + 0.3275911f * ax;
  Expr t0 = Halide::fast_inverse(d);
  Expr t = t0 * (2.0f - d * t0);
  Expr poly =
      t * (0.254829592f +
           t * (-0.284496736f +
                t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
  // e^(-x^2) = 2^(-x^2 log2 e): exp2Approx is exact at 0 and 0 from
  // x^2 >= 87 on, where erf is 1 in f32 anyway.
  Expr y = 1.0f - poly * exp2Approx(ax * ax * -1.4426950408889634f);
  return Halide::select(x < 0.0f, -y, y);
}

} // namespace attn
