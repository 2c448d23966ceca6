//===- Compare.h - Compare generated output with the reference --*- C++ -*-===//
//
// compare() checks a buffer produced by generated code against a RefTensor.
//
// The metric, element by element (like numpy.allclose):
//
//   err_i    = |got_i - ref_i|
//   passes   iff  err_i <= atol + rtol * |ref_i|
//   scaled_i = err_i / (atol + rtol * |ref_i|)      (<= 1 means "passes")
//
// A NaN or Inf in `got` fails unless `ref` holds exactly the same non-finite
// value at that index (NaN matches NaN, +Inf matches +Inf). A size mismatch
// fails. The report gives the number of elements, the number of failures, the
// max abs error and the max scaled error (each with its index), the first
// failing index (flat and as a multi-index) with both values, and how many NaN
// and Inf values `got` holds. rtol = atol = 0 demands exact equality.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_TESTS_REFERENCE_COMPARE_H
#define ATTN_TESTS_REFERENCE_COMPARE_H

#include "Reference.h"

#include <cmath>
#include <cstddef>
#include <limits>
#include <sstream>
#include <string>

namespace attn {

/// "(0, 3, 17)": the multi-index of flat position `i` in `shape`.
inline std::string multiIndexString(size_t i,
                                    const std::vector<int64_t> &shape) {
  std::vector<int64_t> idx(shape.size(), 0);
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] <= 0)
      return "(?)";
    idx[d] = static_cast<int64_t>(i) % shape[d];
    i /= static_cast<size_t>(shape[d]);
  }
  std::string s = "(";
  for (size_t d = 0; d < idx.size(); ++d)
    s += (d ? ", " : "") + std::to_string(idx[d]);
  return s + ")";
}

namespace detail {
template <typename T>
bool compareImpl(const RefTensor &ref, const T *got, size_t n, double rtol,
                 double atol, std::string &report) {
  std::ostringstream os;
  os.precision(9);
  if (n != ref.data.size()) {
    os << "size mismatch: got " << n << " values, reference "
       << shapeString(ref.shape) << " has " << ref.data.size();
    report = os.str();
    return false;
  }
  size_t failures = 0, nans = 0, infs = 0;
  size_t maxAbsAt = 0, maxScaledAt = 0, firstBad = n;
  double maxAbs = 0, maxScaled = 0;
  for (size_t i = 0; i < n; ++i) {
    const double g = static_cast<double>(got[i]);
    const double r = ref.data[i];
    nans += std::isnan(g);
    infs += std::isinf(g);
    bool ok;
    double err;
    if (!std::isfinite(g) || !std::isfinite(r)) {
      ok = (std::isnan(g) && std::isnan(r)) || g == r;
      err = ok ? 0.0 : std::numeric_limits<double>::infinity();
    } else {
      err = std::fabs(g - r);
      const double allowed = atol + rtol * std::fabs(r);
      ok = err <= allowed;
      const double scaled =
          allowed > 0 ? err / allowed
                      : (err > 0 ? std::numeric_limits<double>::infinity() : 0);
      if (scaled > maxScaled) {
        maxScaled = scaled;
        maxScaledAt = i;
      }
    }
    if (err > maxAbs) {
      maxAbs = err;
      maxAbsAt = i;
    }
    if (!ok) {
      ++failures;
      if (firstBad == n)
        firstBad = i;
    }
  }
  os << (failures ? "FAIL" : "ok") << ": " << n << " values "
     << shapeString(ref.shape) << ", rtol=" << rtol << " atol=" << atol
     << "; max abs err " << maxAbs << " at " << maxAbsAt
     << multiIndexString(maxAbsAt, ref.shape) << "; max scaled err "
     << maxScaled << " at " << maxScaledAt
     << multiIndexString(maxScaledAt, ref.shape) << "; NaN " << nans << ", Inf "
     << infs << "; " << failures << " failing";
  if (failures)
    os << "; first failure at " << firstBad
       << multiIndexString(firstBad, ref.shape) << ": got "
       << static_cast<double>(got[firstBad]) << ", reference "
       << ref.data[firstBad];
  report = os.str();
  return failures == 0;
}
} // namespace detail

/// Compares `n` values of `got` with `ref` under the metric above. Returns
/// true when every element passes; `report` always receives a one-line
/// summary. (f16/bf16 outputs: convert the storage with halfBitsToDouble /
/// bf16BitsToDouble and use the double overload.)
inline bool compare(const RefTensor &ref, const float *got, size_t n,
                    double rtol, double atol, std::string &report) {
  return detail::compareImpl(ref, got, n, rtol, atol, report);
}
inline bool compare(const RefTensor &ref, const double *got, size_t n,
                    double rtol, double atol, std::string &report) {
  return detail::compareImpl(ref, got, n, rtol, atol, report);
}

} // namespace attn

#endif // ATTN_TESTS_REFERENCE_COMPARE_H
