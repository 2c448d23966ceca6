//===- Approx.h - Vector-friendly approximations of math functions -------===//
//
// Halide 14 has no erf, and its exp (a range reduction through float-int
// conversions, with no cutoff to exactly 0) costs more than the attention
// inner loop can pay. These are built from operations that vectorise to
// single instructions; tests/unit/halide checks their error bounds and
// edge cases.
//
//===----------------------------------------------------------------------===//

#ifndef ATTN_HALIDE_APPROX_H
#define ATTN_HALIDE_APPROX_H

#include "Halide.h"

namespace attn {

/// 2^x for x <= 0 (the softmax's exponent after its max is subtracted):
/// relative error <= 2.5e-7 for x > -125.5, exactly 0 from there down, never a
/// denormal. 11 vector ops on x86, none a conversion.
Halide::Expr exp2Approx(Halide::Expr x);

/// erf(x), absolute error <= 8e-7 (Abramowitz & Stegun 7.1.26; the worst
/// case, 7.6e-7, is near 0, where 1 - poly * exp(-x^2) cancels).
Halide::Expr erfApprox(Halide::Expr x);

} // namespace attn

#endif // ATTN_HALIDE_APPROX_H
