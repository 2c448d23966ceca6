//===- Reference.h - Double-precision reference interpreter -----*- C++ -*-===//
//
// An independent, deliberately plain interpreter for checked attn models. It
// walks the AST (after parseModule + checkModule), evaluates every built-in of
// DESIGN.md section 3 with loops that accumulate in double, and gives the
// values that generated code is compared against. It uses nothing from the
// compiler beyond the AST: no MLIR, no Halide, no lowering.
//
// Conventions:
//  - Every tensor holds doubles in row-major order. f16/bf16/f32 inputs and
//    weights carry their exact stored values (convert the storage with
//    halfBitsToDouble / bf16BitsToDouble / a float cast); bool is 0/1; i32 is
//    an exact integer.
//  - Intermediate values are never rounded. Only the model's results are
//    rounded to their declared dtype (round to nearest, ties to even), so that
//    an f16 result is compared with an f16 reference.
//  - A comparison in f32 (any operand not i32) rounds both operands to f32
//    first, since generated code compares f32 values (`x == 0.1` compares
//    with f32(0.1)).
//  - A model call evaluates the callee as `evaluate` does, on the argument
//    values, with its weights looked up under the call's params= prefix
//    (joined with the caller's own); its results are rounded to their
//    declared dtypes like any model's.
//  - Masks follow the contract: `causal` is bottom-right aligned, a fully
//    masked softmax row is all zeros (attention output 0), never NaN;
//    `causal(start)` puts query i of batch row b at position start[b] + i
//    (it sees key j iff j <= start[b] + i).
//  - An `inout` argument is a buffer the caller owns. The interpreter keeps
//    its current contents apart from the value its name is bound to: the
//    name always reads the contents at the call's entry, while
//    `cache_write(cache, new, start)` stores new[b] (rounded to the cache's
//    dtype) in rows start[b] .. start[b] + S - 1 of the buffer and gives
//    the buffer after the write, as f32. A model call that passes an inout
//    argument, or one slice `cache[i]` of it, to a callee's inout argument
//    hands the callee the buffer's current contents and copies the callee's
//    buffer back after the call, so its writes land in the caller's buffer.
//    A start[b] < 0 or start[b] + S > T is an error naming the cache.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_TESTS_REFERENCE_REFERENCE_H
#define ATTN_TESTS_REFERENCE_REFERENCE_H

#include "attn/Frontend/AST.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace attn {

/// A dense tensor of exact values (see the conventions above).
struct RefTensor {
  std::vector<int64_t> shape;
  std::vector<double> data; // row-major, numel() entries
  ast::DType dtype = ast::DType::F32;

  RefTensor() = default;
  RefTensor(std::vector<int64_t> s, ast::DType t)
      : shape(std::move(s)), data(countElements(shape), 0.0), dtype(t) {}
  RefTensor(std::vector<int64_t> s, std::vector<double> d,
            ast::DType t = ast::DType::F32)
      : shape(std::move(s)), data(std::move(d)), dtype(t) {}

  int64_t numel() const { return countElements(shape); }
  static int64_t countElements(const std::vector<int64_t> &s) {
    int64_t n = 1;
    for (int64_t d : s)
      n *= d;
    return n;
  }
};

/// Evaluates model `m` (checked by checkModule) on `inputs` (keyed by argument
/// name) and `weights` (keyed by the param's weights-file name). Binds the
/// symbolic sizes from the inputs' shapes, checks every input and weight
/// against its declared dtype and shape, runs the statements in order and
/// fills `outputs` in return order, rounded to the declared result dtypes.
/// Returns false with a message in `error` (and never aborts) on a missing or
/// mis-shaped input, a built-in it does not know, or any shape surprise.
///
/// When `inouts` is given, a successful run also fills it with the contents
/// of every `inout` argument after the run (keyed by argument name, in the
/// argument's dtype and shape; an argument nothing wrote is its input), as
/// the caller's buffers would hold them. After a failed run it is empty.
bool evaluate(const ast::Model &m,
              const std::map<std::string, RefTensor> &inputs,
              const std::map<std::string, RefTensor> &weights,
              std::vector<RefTensor> &outputs, std::string &error,
              std::map<std::string, RefTensor> *inouts = nullptr);

/// Rounds `v` to the nearest value representable in `t` (ties to even; f16
/// and bf16 overflow to +-Inf, subnormals are kept). i32 truncates toward
/// zero, bool gives 0 or 1.
double roundToDType(double v, ast::DType t);

/// The value of an IEEE binary16 bit pattern.
double halfBitsToDouble(uint16_t bits);
/// The value of a bfloat16 bit pattern (the upper half of an f32).
double bf16BitsToDouble(uint16_t bits);

/// "[2, 4, 64]".
std::string shapeString(const std::vector<int64_t> &shape);

} // namespace attn

#endif // ATTN_TESTS_REFERENCE_REFERENCE_H
