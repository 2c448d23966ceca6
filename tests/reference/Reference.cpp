//===- Reference.cpp - Double-precision reference interpreter -------------===//
//
// Plain loops over doubles, one function per built-in, and a tree walk over
// the checked AST. Shapes are recomputed from the actual data and compared
// with what Sema inferred, so a disagreement between the two shows up as an
// error here instead of as a silent numerical difference later.
//
//===----------------------------------------------------------------------===//
#include "Reference.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

namespace attn {

using ast::DType;
using ast::Expr;
using Shape = std::vector<int64_t>;

//===----------------------------------------------------------------------===//
// Public helpers
//===----------------------------------------------------------------------===//

namespace {

/// Rounds a finite double to a binary format with `precision` significand
/// bits (implicit bit included), minimum normal exponent `minExp` and largest
/// finite value `maxFinite`; ties go to even.
double roundToFormat(double v, int precision, int minExp, double maxFinite) {
  if (!std::isfinite(v) || v == 0)
    return v;
  int e = std::ilogb(v); // v = m * 2^e with 1 <= |m| < 2
  if (e < minExp)
    e = minExp; // subnormal: the quantum stays at the smallest one
  double quantum = std::ldexp(1.0, e - (precision - 1));
  double r = std::nearbyint(v / quantum) * quantum; // v / quantum is exact
  if (std::fabs(r) > maxFinite)
    return std::copysign(std::numeric_limits<double>::infinity(), v);
  return r;
}


} // namespace

double roundToDType(double v, DType t) {
  switch (t) {
  case DType::F32:
    return static_cast<double>(static_cast<float>(v));
  case DType::F16:
    return roundToFormat(v, 11, -14, 65504.0);
  case DType::BF16:
    return roundToFormat(v, 8, -126, 3.3895313892515355e38);
  case DType::I32:
    return std::isfinite(v) ? std::trunc(v) : 0.0;
  case DType::Bool:
    return v != 0 ? 1.0 : 0.0;
  }
  return v;
}

double halfBitsToDouble(uint16_t bits) {
  double sign = (bits & 0x8000) ? -1.0 : 1.0;
  int exp = (bits >> 10) & 0x1f;
  int mant = bits & 0x3ff;
  if (exp == 0)
    return sign * std::ldexp(mant, -24);
  if (exp == 31)
    return mant ? std::numeric_limits<double>::quiet_NaN()
                : sign * std::numeric_limits<double>::infinity();
  return sign * std::ldexp(mant + 1024, exp - 25);
}

double bf16BitsToDouble(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

std::string shapeString(const Shape &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

namespace {

std::string typeString(const RefTensor &t) {
  return std::string(ast::dtypeName(t.dtype)) + shapeString(t.shape);
}

/// Sema's type as text ("f32[B, S, 768]" or "mask").
std::string typeString(const ast::ValueType &t) {
  if (t.kind == ast::ValueType::Mask)
    return "mask";
  std::string s = std::string(ast::dtypeName(t.dtype)) + "[";
  for (size_t i = 0; i < t.dims.size(); ++i)
    s +=
        (i ? ", " : "") +
        (t.dims[i].isStatic() ? std::to_string(t.dims[i].size) : t.dims[i].sym);
  return s + "]";
}

//===----------------------------------------------------------------------===//
// Index arithmetic and broadcasting
//===----------------------------------------------------------------------===//

/// Row-major strides of `shape`.
Shape stridesOf(const Shape &shape) {
  Shape s(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;)
    s[i - 1] = s[i] * shape[i];
  return s;
}

/// NumPy broadcasting of two shapes (right-aligned, size 1 stretches).
bool broadcastShapes(const Shape &a, const Shape &b, Shape &out) {
  size_t rank = std::max(a.size(), b.size());
  out.assign(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
    int64_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
    if (da != db && da != 1 && db != 1)
      return false;
    out[rank - 1 - i] = da == 1 ? db : da;
  }
  return true;
}

/// Strides that read a tensor of shape `in` as if broadcast to `out`: 0 on
/// dims where `in` has size 1 or no dim at all. Requires compatible shapes.
Shape broadcastStrides(const Shape &in, const Shape &out) {
  Shape inStrides = stridesOf(in);
  Shape s(out.size(), 0);
  size_t shift = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i)
    s[shift + i] = in[i] == 1 ? 0 : inStrides[i];
  return s;
}

/// True if `in` broadcasts to exactly `out`.
bool broadcastsTo(const Shape &in, const Shape &out) {
  Shape joined;
  return in.size() <= out.size() && broadcastShapes(in, out, joined) &&
         joined == out;
}

/// The offset, under `strides`, of the element with row-major position
/// `linear` in a tensor of shape `shape`.
int64_t offsetOf(int64_t linear, const Shape &shape, const Shape &strides) {
  int64_t off = 0;
  for (size_t i = shape.size(); i-- > 0;) {
    int64_t extent = shape[i];
    off += (linear % extent) * strides[i];
    linear /= extent;
  }
  return off;
}

/// The multi-index of row-major position `linear` in `shape`.
void unravel(int64_t linear, const Shape &shape, Shape &idx) {
  idx.assign(shape.size(), 0);
  for (size_t i = shape.size(); i-- > 0;) {
    idx[i] = linear % shape[i];
    linear /= shape[i];
  }
}

//===----------------------------------------------------------------------===//
// Kernels
//===----------------------------------------------------------------------===//

/// c[m, n] = sum_k a[m, k] * b[n, k] for row-major a: M x K, b: N x K,
/// c: M x N. Each sum runs over k in order; four columns are computed at a
/// time and B is walked in cache-sized blocks, only for speed.
void matmulNT(const double *a, const double *b, double *c, int64_t M, int64_t N,
              int64_t K) {
  int64_t block =
      std::max<int64_t>(4, (256 * 1024 / 8) / std::max<int64_t>(K, 1));
  block = block / 4 * 4;
  for (int64_t n0 = 0; n0 < N; n0 += block) {
    int64_t n1 = std::min(N, n0 + block);
    for (int64_t m = 0; m < M; ++m) {
      const double *x = a + m * K;
      double *y = c + m * N;
      int64_t n = n0;
      for (; n + 4 <= n1; n += 4) {
        const double *w0 = b + n * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (int64_t k = 0; k < K; ++k) {
          double xk = x[k];
          s0 += xk * w0[k];
          s1 += xk * w1[k];
          s2 += xk * w2[k];
          s3 += xk * w3[k];
        }
        y[n] = s0;
        y[n + 1] = s1;
        y[n + 2] = s2;
        y[n + 3] = s3;
      }
      for (; n < n1; ++n) {
        const double *w = b + n * K;
        double s = 0;
        for (int64_t k = 0; k < K; ++k)
          s += x[k] * w[k];
        y[n] = s;
      }
    }
  }
}

/// out = in^T for a row-major R x C matrix (in 32 x 32 tiles, only for
/// speed: GPT-2's [768, 3072] weights are transposed on every call).
void transposeMatrix(const double *in, double *out, int64_t R, int64_t C) {
  const int64_t t = 32;
  for (int64_t r0 = 0; r0 < R; r0 += t)
    for (int64_t c0 = 0; c0 < C; c0 += t)
      for (int64_t r = r0; r < std::min(R, r0 + t); ++r)
        for (int64_t c = c0; c < std::min(C, c0 + t); ++c)
          out[c * R + r] = in[r * C + c];
}

/// In-place softmax of one row where keep[j] == 0 means "masked": masked
/// entries get 0, and a row with nothing kept is all zeros.
void softmaxRow(double *x, const char *keep, int64_t n) {
  double mx = -std::numeric_limits<double>::infinity();
  bool any = false;
  for (int64_t j = 0; j < n; ++j)
    if (keep[j]) {
      mx = any ? std::max(mx, x[j]) : x[j];
      any = true;
    }
  if (!any) {
    std::fill(x, x + n, 0.0);
    return;
  }
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    x[j] = keep[j] ? std::exp(x[j] - mx) : 0.0;
    sum += x[j];
  }
  for (int64_t j = 0; j < n; ++j)
    x[j] /= sum;
}

//===----------------------------------------------------------------------===//
// Masks
//===----------------------------------------------------------------------===//

/// A mask has no shape of its own; it is evaluated against the shape of the
/// scores it masks, whose last dim is the key dim.
struct MaskNode {
  enum Kind { Causal, Window, Padding, Keep, And } kind = Causal;
  int64_t window = 0;    // Window
  bool hasStart = false; // Causal: causal(start), positions from a cache
  RefTensor tensor;      // Padding: the lengths; Keep: the bool tensor; Causal
                         // with hasStart: the starts
  std::shared_ptr<const MaskNode> lhs, rhs; // And
};
using MaskPtr = std::shared_ptr<const MaskNode>;

/// Checks once, before any row is evaluated, that `mask` applies to scores of
/// shape `scores`.
bool checkMask(const MaskNode &mask, const Shape &scores, std::string &err) {
  switch (mask.kind) {
  case MaskNode::Causal:
  case MaskNode::Window:
    if (mask.hasStart &&
        (mask.tensor.dtype != DType::I32 || mask.tensor.shape.size() != 1 ||
         scores.size() < 2 || mask.tensor.shape[0] != scores[0])) {
      err = "causal starts " + typeString(mask.tensor) +
            " do not match the batch dim of scores " + shapeString(scores);
      return false;
    }
    if (scores.size() < 2) {
      err = std::string(mask.kind == MaskNode::Causal ? "causal"
                                                      : "sliding_window") +
            " needs scores of rank >= 2, got " + shapeString(scores);
      return false;
    }
    return true;
  case MaskNode::Padding:
    if (scores.size() < 2) {
      err = "padding needs scores of rank >= 2, got " + shapeString(scores);
      return false;
    }
    if (mask.tensor.shape.size() != 1 || mask.tensor.shape[0] != scores[0]) {
      err = "padding lengths " + typeString(mask.tensor) +
            " do not match the batch dim of scores " + shapeString(scores);
      return false;
    }
    return true;
  case MaskNode::Keep:
    if (!broadcastsTo(mask.tensor.shape, scores)) {
      err = "bool mask " + typeString(mask.tensor) +
            " does not broadcast to scores " + shapeString(scores);
      return false;
    }
    return true;
  case MaskNode::And:
    return checkMask(*mask.lhs, scores, err) &&
           checkMask(*mask.rhs, scores, err);
  }
  return false;
}

/// Fills keep[0..Sk) for the score row at multi-index `row` (all dims but the
/// last). The mask must have passed checkMask for `scores`.
void maskRow(const MaskNode &mask, const Shape &scores, const Shape &row,
             char *keep) {
  const size_t rank = scores.size();
  const int64_t Sk = scores[rank - 1];
  switch (mask.kind) {
  case MaskNode::Causal:
  case MaskNode::Window: {
    const int64_t Sq = scores[rank - 2];
    // Bottom-right aligned, or at the cache position start[b] + i.
    const int64_t hi =
        mask.hasStart
            ? static_cast<int64_t>(mask.tensor.data[row[0]]) + row[rank - 2]
            : row[rank - 2] + (Sk - Sq);
    const int64_t lo = mask.kind == MaskNode::Window
                           ? hi - mask.window
                           : std::numeric_limits<int64_t>::min();
    for (int64_t j = 0; j < Sk; ++j)
      keep[j] = j <= hi && j > lo;
    return;
  }
  case MaskNode::Padding: {
    const double len = mask.tensor.data[row[0]];
    for (int64_t j = 0; j < Sk; ++j)
      keep[j] = static_cast<double>(j) < len;
    return;
  }
  case MaskNode::Keep: {
    Shape strides = broadcastStrides(mask.tensor.shape, scores);
    int64_t base = 0;
    for (size_t d = 0; d + 1 < rank; ++d)
      base += row[d] * strides[d];
    for (int64_t j = 0; j < Sk; ++j)
      keep[j] = mask.tensor.data[base + j * strides[rank - 1]] != 0;
    return;
  }
  case MaskNode::And: {
    std::vector<char> other(Sk);
    maskRow(*mask.lhs, scores, row, keep);
    maskRow(*mask.rhs, scores, row, other.data());
    for (int64_t j = 0; j < Sk; ++j)
      keep[j] = keep[j] && other[j];
    return;
  }
  }
}

//===----------------------------------------------------------------------===//
// Symbolic dims written as text ("P+S")
//===----------------------------------------------------------------------===//

/// Evaluates a derived symbolic dim such as "P+S" or "3*E" under `sizes`:
/// integers, names, + - * / and parentheses. std::nullopt when the text is
/// something else or names an unbound size (the caller then skips the check).
class DimText {
public:
  DimText(const std::string &text, const std::map<std::string, int64_t> &sizes)
      : s(text), sizes(sizes) {}
  std::optional<int64_t> eval() {
    auto v = sum();
    skip();
    if (!v || pos != s.size())
      return std::nullopt;
    return v;
  }

private:
  void skip() {
    while (pos < s.size() && std::isspace(static_cast<unsigned char>(s[pos])))
      ++pos;
  }
  bool eat(char c) {
    skip();
    if (pos < s.size() && s[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }
  std::optional<int64_t> sum() {
    auto v = product();
    while (v) {
      if (eat('+')) {
        auto r = product();
        v = r ? std::optional<int64_t>(*v + *r) : std::nullopt;
      } else if (eat('-')) {
        auto r = product();
        v = r ? std::optional<int64_t>(*v - *r) : std::nullopt;
      } else {
        break;
      }
    }
    return v;
  }
  std::optional<int64_t> product() {
    auto v = atom();
    while (v) {
      if (eat('*')) {
        auto r = atom();
        v = r ? std::optional<int64_t>(*v * *r) : std::nullopt;
      } else if (eat('/')) {
        auto r = atom();
        v = r && *r != 0 ? std::optional<int64_t>(*v / *r) : std::nullopt;
      } else {
        break;
      }
    }
    return v;
  }
  std::optional<int64_t> atom() {
    skip();
    if (eat('(')) {
      auto v = sum();
      return eat(')') ? v : std::nullopt;
    }
    size_t start = pos;
    if (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos])))
        ++pos;
      if (pos - start > 18)
        return std::nullopt; // would not fit in int64
      return std::stoll(s.substr(start, pos - start));
    }
    while (pos < s.size() &&
           (std::isalnum(static_cast<unsigned char>(s[pos])) || s[pos] == '_'))
      ++pos;
    auto it = sizes.find(s.substr(start, pos - start));
    if (start == pos || it == sizes.end())
      return std::nullopt;
    return it->second;
  }

  const std::string &s;
  const std::map<std::string, int64_t> &sizes;
  size_t pos = 0;
};

//===----------------------------------------------------------------------===//
// The interpreter
//===----------------------------------------------------------------------===//

/// The value of an expression: a tensor or a mask.
struct Value {
  bool isMask = false;
  RefTensor tensor;
  bool literal = false; // an untyped number: adopts the other operand's dtype
  MaskPtr mask;
  /// A weight, read in place from the weights map (which outlives the run)
  /// instead of copied into `tensor`: GPT-2's are 1 GB as doubles.
  const RefTensor *weight = nullptr;

  static Value of(RefTensor t) {
    Value v;
    v.tensor = std::move(t);
    return v;
  }
  static Value ofMask(MaskPtr m) {
    Value v;
    v.isMask = true;
    v.mask = std::move(m);
    return v;
  }
};

class Interpreter {
public:
  /// `prefix` is prepended to every weight name the model looks up (a model
  /// called with params="..."); `depth` counts the calls around it.
  explicit Interpreter(const ast::Model &m, std::string prefix = "",
                       int depth = 0)
      : model(m), prefix(std::move(prefix)), depth(depth) {}

  bool run(const std::map<std::string, RefTensor> &inputs,
           const std::map<std::string, RefTensor> &weights,
           std::vector<RefTensor> &outputs);

  /// The inout arguments' buffers: their current contents (after run(),
  /// the contents the caller gets back).
  const std::map<std::string, RefTensor> &inoutBuffers() const {
    return buffers;
  }

  std::string error;

private:
  bool fail(ast::Location loc, const std::string &msg) {
    error = "model '" + model.name + "' at " + std::to_string(loc.line) + ":" +
            std::to_string(loc.col) + ": " + msg;
    return false;
  }

  // Binding and checking declared types.
  bool bindType(const ast::TensorType &decl, const RefTensor &t,
                const std::string &what, ast::Location loc);
  bool checkAgainstSema(const Expr &e, const std::vector<Value> &vals);

  // Expressions.
  bool eval(const Expr &e, std::vector<Value> &out);
  bool evalOne(const Expr &e, Value &out);
  bool evalTensor(const Expr &e, RefTensor &out);
  bool evalMask(const Expr &e, MaskPtr &out);
  bool foldConstant(const Expr &e, double &out);
  bool foldTree(const Expr &e, double &out);
  bool foldInteger(const Expr &e, const char *what, int64_t &out);
  bool evalBinary(const Expr &e, Value &out);
  bool evalCall(const Expr &e, std::vector<Value> &out);
  DType resultType(const Expr &e, size_t i, DType fallback) const {
    if (i < e.types.size() && e.types[i].kind == ast::ValueType::Tensor)
      return e.types[i].dtype;
    return fallback;
  }

  // Built-ins; each checks and evaluates its own arguments.
  bool callLinear(const Expr &e, Value &out);
  bool callMatmul(const Expr &e, Value &out);
  bool callTranspose(const Expr &e, Value &out);
  bool callSplitHeads(const Expr &e, Value &out);
  bool callMergeHeads(const Expr &e, Value &out);
  bool callSplit(const Expr &e, std::vector<Value> &out);
  bool callConcat(const Expr &e, Value &out);
  bool callSoftmax(const Expr &e, Value &out);
  bool callAttention(const Expr &e, Value &out);
  bool callNorm(const Expr &e, bool rms, Value &out);
  bool callUnary(const Expr &e, Value &out);
  bool callRope(const Expr &e, Value &out);
  bool callCausal(const Expr &e, Value &out);
  bool callSlidingWindow(const Expr &e, Value &out);
  bool callPadding(const Expr &e, Value &out);
  bool callMath(const Expr &e, Value &out);
  bool callMinMax(const Expr &e, Value &out);
  bool callReduce(const Expr &e, Value &out);
  bool callWhere(const Expr &e, Value &out);
  bool callMeanPool(const Expr &e, Value &out);
  bool callL2Normalize(const Expr &e, Value &out);
  bool callEmbedding(const Expr &e, Value &out);
  bool callArange(const Expr &e, Value &out);
  bool callUnsqueeze(const Expr &e, Value &out);
  bool callCacheWrite(const Expr &e, Value &out);
  bool callModel(const Expr &e, std::vector<Value> &out);
  bool inoutSlice(const Expr &e, std::string &name, int64_t &slice);
  bool evalIndex(const Expr &e, Value &out);
  bool evalNot(const Expr &e, Value &out);

  bool checkCall(const Expr &e, size_t minArgs, size_t maxArgs,
                 std::set<std::string> keywords);
  const Expr *keyword(const Expr &e, const char *name) const {
    for (const ast::KeywordArg &kw : e.kwargs)
      if (kw.name == name)
        return kw.value.get();
    return nullptr;
  }
  bool elementwise(const Expr &e, char op, const RefTensor &a,
                   const RefTensor &b, DType type, RefTensor &out);

  const ast::Model &model;
  const std::string prefix;
  const int depth;
  const std::map<std::string, RefTensor> *weights = nullptr; // during run()
  std::map<std::string, Value> env;
  std::map<std::string, int64_t> sizes;
  std::map<std::string, RefTensor> buffers; // inout arguments (see above)
};

bool Interpreter::bindType(const ast::TensorType &decl, const RefTensor &t,
                           const std::string &what, ast::Location loc) {
  std::string declared = ast::dtypeName(decl.dtype);
  declared += "[";
  for (size_t i = 0; i < decl.dims.size(); ++i)
    declared += (i ? ", " : "") + (decl.dims[i].isStatic()
                                       ? std::to_string(decl.dims[i].size)
                                       : decl.dims[i].sym);
  declared += "]";
  if (t.dtype != decl.dtype)
    return fail(loc, what + " is declared " + declared + " but given " +
                         typeString(t));
  for (int64_t d : t.shape)
    if (d < 0)
      return fail(loc, what + " has a negative dim: " + shapeString(t.shape));
  if (static_cast<int64_t>(t.data.size()) != t.numel())
    return fail(loc, what + " has shape " + shapeString(t.shape) + " but " +
                         std::to_string(t.data.size()) + " values");
  if (t.shape.size() != decl.dims.size())
    return fail(loc, what + " is declared " + declared + " but given " +
                         typeString(t));
  for (size_t i = 0; i < decl.dims.size(); ++i) {
    const ast::Dim &d = decl.dims[i];
    if (d.isStatic()) {
      if (d.size != t.shape[i])
        return fail(loc, what + " is declared " + declared + " but given " +
                             typeString(t));
      continue;
    }
    auto it = sizes.find(d.sym);
    if (it == sizes.end()) {
      sizes[d.sym] = t.shape[i];
    } else if (it->second != t.shape[i]) {
      return fail(loc, what + " is declared " + declared + " but given " +
                           typeString(t) + ", and " + d.sym + " is already " +
                           std::to_string(it->second));
    }
  }
  return true;
}

bool Interpreter::checkAgainstSema(const Expr &e,
                                   const std::vector<Value> &vals) {
  if (e.types.empty())
    return true; // Sema has not run; nothing to compare with
  if (e.types.size() != vals.size())
    return fail(e.loc, "Sema gives " + std::to_string(e.types.size()) +
                           " results, the reference computed " +
                           std::to_string(vals.size()));
  for (size_t i = 0; i < vals.size(); ++i) {
    const ast::ValueType &t = e.types[i];
    if ((t.kind == ast::ValueType::Mask) != vals[i].isMask)
      return fail(e.loc, "Sema types this as " + typeString(t) +
                             ", the reference computed a " +
                             (vals[i].isMask ? "mask" : "tensor"));
    if (vals[i].isMask)
      continue;
    const Shape &shape = vals[i].tensor.shape;
    bool same = t.dims.size() == shape.size();
    for (size_t d = 0; same && d < shape.size(); ++d) {
      std::optional<int64_t> size;
      if (t.dims[d].isStatic())
        size = t.dims[d].size;
      else
        size = DimText(t.dims[d].sym, sizes).eval();
      same = !size || *size == shape[d];
    }
    if (!same)
      return fail(e.loc, "Sema types this as " + typeString(t) +
                             ", the reference computed shape " +
                             shapeString(shape));
  }
  return true;
}

bool Interpreter::run(const std::map<std::string, RefTensor> &inputs,
                      const std::map<std::string, RefTensor> &weights,
                      std::vector<RefTensor> &outputs) {
  outputs.clear();
  this->weights = &weights;
  for (const auto &kv : inputs) {
    bool known = false;
    for (const ast::Arg &a : model.args)
      known = known || a.name == kv.first;
    if (!known)
      return fail(model.loc, "no argument named '" + kv.first + "'");
  }
  for (const ast::Arg &a : model.args) {
    auto it = inputs.find(a.name);
    if (it == inputs.end())
      return fail(a.loc, "input '" + a.name + "' is missing");
    if (!bindType(a.type, it->second, "input '" + a.name + "'", a.loc))
      return false;
    env[a.name] = Value::of(it->second);
    if (a.inout)
      buffers[a.name] = it->second;
  }

  for (const ast::Stmt &s : model.body) {
    switch (s.kind) {
    case ast::Stmt::Param: {
      std::string key = prefix + (s.weightName.empty() ? s.name : s.weightName);
      auto it = weights.find(key);
      if (it == weights.end())
        return fail(s.loc, "weight '" + key + "' is missing");
      if (!bindType(s.type, it->second, "param '" + s.name + "'", s.loc))
        return false;
      Value w;
      w.weight = &it->second;
      env[s.name] = std::move(w);
      break;
    }
    case ast::Stmt::Bind: {
      if (s.exprs.size() != 1)
        return fail(s.loc, "a binding needs exactly one expression");
      std::vector<Value> vals;
      if (!eval(*s.exprs[0], vals))
        return false;
      if (vals.size() != s.names.size())
        return fail(s.loc, std::to_string(s.names.size()) + " names bound to " +
                               std::to_string(vals.size()) + " results");
      for (size_t i = 0; i < vals.size(); ++i)
        env[s.names[i]] = std::move(vals[i]);
      break;
    }
    case ast::Stmt::Return: {
      std::vector<Value> vals;
      for (const ast::ExprPtr &e : s.exprs) {
        std::vector<Value> part;
        if (!eval(*e, part))
          return false;
        for (Value &v : part)
          vals.push_back(std::move(v));
      }
      if (vals.size() != model.results.size())
        return fail(s.loc, "returns " + std::to_string(vals.size()) +
                               " values, the model declares " +
                               std::to_string(model.results.size()));
      for (size_t i = 0; i < vals.size(); ++i) {
        if (vals[i].isMask)
          return fail(s.loc, "result " + std::to_string(i) + " is a mask");
        RefTensor t = std::move(vals[i].tensor);
        const ast::TensorType &decl = model.results[i];
        bool same = decl.dims.size() == t.shape.size();
        for (size_t d = 0; same && d < t.shape.size(); ++d) {
          const ast::Dim &dim = decl.dims[d];
          if (dim.isStatic()) {
            same = dim.size == t.shape[d];
          } else {
            auto v = DimText(dim.sym, sizes).eval();
            same = !v || *v == t.shape[d];
          }
        }
        if (!same)
          return fail(s.loc, "result " + std::to_string(i) + " has shape " +
                                 shapeString(t.shape) +
                                 ", which does not match its declared type");
        t.dtype = decl.dtype;
        for (double &x : t.data)
          x = roundToDType(x, decl.dtype);
        outputs.push_back(std::move(t));
      }
      return true;
    }
    }
  }
  return fail(model.loc, "the model has no return statement");
}

//===----------------------------------------------------------------------===//
// Expressions
//===----------------------------------------------------------------------===//

bool Interpreter::eval(const Expr &e, std::vector<Value> &out) {
  out.clear();
  switch (e.kind) {
  case Expr::Number: {
    Value v = Value::of(
        RefTensor({}, {e.number}, e.isInteger ? DType::I32 : DType::F32));
    v.literal = true;
    out.push_back(std::move(v));
    break;
  }
  case Expr::String:
    return fail(e.loc, "a string is only allowed as a keyword value");
  case Expr::Name: {
    auto it = env.find(e.name);
    if (it != env.end() && it->second.weight) {
      out.push_back(Value::of(*it->second.weight));
    } else if (it != env.end()) {
      out.push_back(it->second);
    } else if (e.name == "causal") {
      auto m = std::make_shared<MaskNode>();
      m->kind = MaskNode::Causal;
      out.push_back(Value::ofMask(m));
    } else {
      return fail(e.loc, "unknown name '" + e.name + "'");
    }
    break;
  }
  case Expr::Binary: {
    Value v;
    if (!evalBinary(e, v))
      return false;
    out.push_back(std::move(v));
    break;
  }
  case Expr::Neg: {
    if (e.args.size() != 1)
      return fail(e.loc, "malformed negation");
    Value v;
    if (!evalOne(*e.args[0], v))
      return false;
    if (v.isMask)
      return fail(e.loc, "cannot negate a mask");
    if (v.tensor.dtype == DType::Bool)
      return fail(e.loc, "cannot negate a bool tensor");
    for (double &x : v.tensor.data)
      x = -x;
    if (!v.literal)
      v.tensor.dtype = resultType(e, 0, v.tensor.dtype);
    out.push_back(std::move(v));
    break;
  }
  case Expr::Not:
  case Expr::Index: {
    Value v;
    if (!(e.kind == Expr::Not ? evalNot(e, v) : evalIndex(e, v)))
      return false;
    out.push_back(std::move(v));
    break;
  }
  case Expr::Call:
    if (!evalCall(e, out))
      return false;
    break;
  }
  return checkAgainstSema(e, out);
}

bool Interpreter::evalOne(const Expr &e, Value &out) {
  std::vector<Value> vals;
  if (!eval(e, vals))
    return false;
  if (vals.size() != 1)
    return fail(e.loc,
                "expected one value, got " + std::to_string(vals.size()));
  out = std::move(vals[0]);
  return true;
}

bool Interpreter::evalTensor(const Expr &e, RefTensor &out) {
  Value v;
  if (!evalOne(e, v))
    return false;
  if (v.isMask)
    return fail(e.loc, "expected a tensor, got a mask");
  out = std::move(v.tensor);
  return true;
}

bool Interpreter::evalMask(const Expr &e, MaskPtr &out) {
  Value v;
  if (!evalOne(e, v))
    return false;
  if (v.isMask) {
    out = v.mask;
    return true;
  }
  if (v.tensor.dtype != DType::Bool)
    return fail(e.loc, "a mask must be a mask or a bool tensor, got " +
                           typeString(v.tensor));
  auto m = std::make_shared<MaskNode>();
  m->kind = MaskNode::Keep;
  m->tensor = std::move(v.tensor);
  out = m;
  return true;
}

/// Folds a keyword constant (`scale=1/8`, `axis=-1`) from the tree, and
/// checks that Sema, when it folded the same expression, agrees.
bool Interpreter::foldConstant(const Expr &e, double &out) {
  if (!foldTree(e, out))
    return false;
  if (e.isConstant &&
      !(e.constant == out ||
        std::fabs(e.constant - out) <= 1e-12 * std::max(std::fabs(out), 1.0)))
    return fail(e.loc, "Sema folds this constant to " +
                           std::to_string(e.constant) + ", the reference to " +
                           std::to_string(out));
  return true;
}

bool Interpreter::foldTree(const Expr &e, double &out) {
  switch (e.kind) {
  case Expr::Number:
    out = e.number;
    return true;
  case Expr::Neg:
    if (e.args.size() != 1 || !foldTree(*e.args[0], out))
      return false;
    out = -out;
    return true;
  case Expr::Binary: {
    double a, b;
    if (e.args.size() != 2 || !foldTree(*e.args[0], a) ||
        !foldTree(*e.args[1], b))
      return false;
    switch (e.op) {
    case '+':
      out = a + b;
      return true;
    case '-':
      out = a - b;
      return true;
    case '*':
      out = a * b;
      return true;
    case '/':
      out = a / b; // real division: `scale=1/8` is 0.125
      return true;
    default:
      return fail(e.loc,
                  std::string("'") + e.op + "' is not allowed in a constant");
    }
  }
  case Expr::Name: {
    auto it = sizes.find(e.name); // a symbolic size is a constant at run time
    if (it != sizes.end()) {
      out = static_cast<double>(it->second);
      return true;
    }
    return fail(e.loc, "'" + e.name + "' is not a constant");
  }
  default:
    return fail(e.loc, "expected a constant expression");
  }
}

bool Interpreter::foldInteger(const Expr &e, const char *what, int64_t &out) {
  double v;
  if (!foldConstant(e, v))
    return false;
  if (v != std::trunc(v) || std::fabs(v) > 1e15)
    return fail(e.loc, std::string(what) + " must be an integer, got " +
                           std::to_string(v));
  out = static_cast<int64_t>(v);
  return true;
}

bool Interpreter::elementwise(const Expr &e, char op, const RefTensor &a,
                              const RefTensor &b, DType type, RefTensor &out) {
  Shape shape;
  if (!broadcastShapes(a.shape, b.shape, shape))
    return fail(e.loc, std::string("cannot broadcast ") + typeString(a) +
                           " and " + typeString(b) + " for '" + op + "'");
  out = RefTensor(shape, type);
  Shape sa = broadcastStrides(a.shape, shape);
  Shape sb = broadcastStrides(b.shape, shape);
  const int64_t n = out.numel();
  for (int64_t i = 0; i < n; ++i) {
    double x = a.data[offsetOf(i, shape, sa)];
    double y = b.data[offsetOf(i, shape, sb)];
    double r = 0;
    switch (op) {
    case '+':
      r = x + y;
      break;
    case '-':
      r = x - y;
      break;
    case '*':
      r = x * y;
      break;
    case '/':
      if (type == DType::I32 && y == 0)
        return fail(e.loc, "integer division by zero");
      r = x / y;
      break;
    case '&':
      r = (x != 0 && y != 0) ? 1.0 : 0.0;
      break;
    case '|':
      r = (x != 0 || y != 0) ? 1.0 : 0.0;
      break;
    case 'm': // min(a, b)
      r = std::min(x, y);
      break;
    case 'M': // max(a, b)
      r = std::max(x, y);
      break;
    case '<':
      r = x < y;
      break;
    case 'L':
      r = x <= y;
      break;
    case '>':
      r = x > y;
      break;
    case 'G':
      r = x >= y;
      break;
    case 'E':
      r = x == y;
      break;
    case 'N':
      r = x != y;
      break;
    }
    out.data[i] = type == DType::I32 ? std::trunc(r) : r;
  }
  return true;
}

/// The dtype of arithmetic on `a` and `b` without Sema: a literal adopts the
/// other operand's dtype, i32 with i32 stays i32, a float wins over i32 and
/// two different floats give f32.
DType promoted(const Value &a, const Value &b) {
  DType ta = a.tensor.dtype, tb = b.tensor.dtype;
  if (a.literal && b.literal)
    return ta == DType::I32 && tb == DType::I32 ? DType::I32 : DType::F32;
  if (a.literal)
    return ast::isFloat(ta) && !ast::isFloat(tb) ? DType::F32 : tb;
  if (b.literal)
    return ast::isFloat(tb) && !ast::isFloat(ta) ? DType::F32 : ta;
  if (ta == tb)
    return ta;
  if (!ast::isFloat(ta))
    return tb;
  if (!ast::isFloat(tb))
    return ta;
  return DType::F32;
}

bool Interpreter::evalBinary(const Expr &e, Value &out) {
  if (e.args.size() != 2)
    return fail(e.loc, "malformed binary expression");
  Value a, b;
  if (!evalOne(*e.args[0], a) || !evalOne(*e.args[1], b))
    return false;

  if (e.op == '&') {
    if (a.isMask || b.isMask) {
      MaskPtr ma, mb;
      for (int side = 0; side < 2; ++side) {
        Value &v = side ? b : a;
        MaskPtr &m = side ? mb : ma;
        if (v.isMask) {
          m = v.mask;
          continue;
        }
        if (v.tensor.dtype != DType::Bool)
          return fail(e.loc, "'&' needs masks or bool tensors, got " +
                                 typeString(v.tensor));
        auto keep = std::make_shared<MaskNode>();
        keep->kind = MaskNode::Keep;
        keep->tensor = v.tensor;
        m = keep;
      }
      auto both = std::make_shared<MaskNode>();
      both->kind = MaskNode::And;
      both->lhs = ma;
      both->rhs = mb;
      out = Value::ofMask(both);
      return true;
    }
    if (a.tensor.dtype != DType::Bool || b.tensor.dtype != DType::Bool)
      return fail(e.loc, "'&' needs masks or bool tensors, got " +
                             typeString(a.tensor) + " and " +
                             typeString(b.tensor));
    RefTensor r;
    if (!elementwise(e, '&', a.tensor, b.tensor, DType::Bool, r))
      return false;
    out = Value::of(std::move(r));
    return true;
  }

  const std::string opText = std::string("'") + ast::opName(e.op) + "'";
  if (a.isMask || b.isMask)
    return fail(e.loc, opText + " cannot take a mask");

  if (e.op == '|') {
    if (a.tensor.dtype != DType::Bool || b.tensor.dtype != DType::Bool)
      return fail(e.loc, "'|' needs bool tensors, got " + typeString(a.tensor) +
                             " and " + typeString(b.tensor));
    RefTensor r;
    if (!elementwise(e, '|', a.tensor, b.tensor, DType::Bool, r))
      return false;
    out = Value::of(std::move(r));
    return true;
  }
  if (a.tensor.dtype == DType::Bool || b.tensor.dtype == DType::Bool)
    return fail(e.loc, opText + " cannot take bool tensors");

  if (ast::isComparison(e.op)) {
    // Computed in i32 when both sides are i32 (integer literals are), else
    // in f32: both operands are rounded to f32 first, as generated code
    // compares f32 values (0.1 is f32(0.1) there).
    bool integral =
        a.tensor.dtype == DType::I32 && b.tensor.dtype == DType::I32;
    if (!integral)
      for (RefTensor *t : {&a.tensor, &b.tensor})
        for (double &x : t->data)
          x = roundToDType(x, DType::F32);
    RefTensor r;
    if (!elementwise(e, e.op, a.tensor, b.tensor, resultType(e, 0, DType::Bool),
                     r))
      return false;
    out = Value::of(std::move(r));
    return true;
  }

  // The result dtype is Sema's; without Sema, a literal adopts the other
  // operand's dtype and float wins over i32.
  DType fallback = promoted(a, b);
  // '/' is true division (NumPy, PyTorch): f32 even of two i32s.
  if (e.op == '/')
    fallback = DType::F32;
  DType type = resultType(e, 0, fallback);
  // A literal-only expression is real arithmetic, like a constant fold.
  if (a.literal && b.literal && e.op == '/')
    type = DType::F32;

  RefTensor r;
  if (!elementwise(e, e.op, a.tensor, b.tensor, type, r))
    return false;
  out = Value::of(std::move(r));
  out.literal = a.literal && b.literal;
  return true;
}

bool Interpreter::checkCall(const Expr &e, size_t minArgs, size_t maxArgs,
                            std::set<std::string> keywords) {
  if (e.args.size() < minArgs || e.args.size() > maxArgs) {
    std::string expected = std::to_string(minArgs);
    if (maxArgs != minArgs)
      expected +=
          maxArgs == SIZE_MAX ? " or more" : " to " + std::to_string(maxArgs);
    return fail(e.loc, e.name + " takes " + expected +
                           " positional arguments, got " +
                           std::to_string(e.args.size()));
  }
  std::set<std::string> seen;
  for (const ast::KeywordArg &kw : e.kwargs) {
    if (!keywords.count(kw.name))
      return fail(kw.loc, e.name + " has no keyword '" + kw.name + "'");
    if (!seen.insert(kw.name).second)
      return fail(kw.loc, "keyword '" + kw.name + "' given twice");
  }
  return true;
}

bool Interpreter::evalCall(const Expr &e, std::vector<Value> &out) {
  const std::string &f = e.name;
  if (e.callee) // Sema resolved the name to a model of the file
    return callModel(e, out);
  if (f == "split")
    return callSplit(e, out);
  Value v;
  bool ok;
  if (f == "linear")
    ok = callLinear(e, v);
  else if (f == "matmul")
    ok = callMatmul(e, v);
  else if (f == "transpose")
    ok = callTranspose(e, v);
  else if (f == "split_heads")
    ok = callSplitHeads(e, v);
  else if (f == "merge_heads")
    ok = callMergeHeads(e, v);
  else if (f == "concat")
    ok = callConcat(e, v);
  else if (f == "softmax")
    ok = callSoftmax(e, v);
  else if (f == "attention")
    ok = callAttention(e, v);
  else if (f == "layer_norm")
    ok = callNorm(e, /*rms=*/false, v);
  else if (f == "rms_norm")
    ok = callNorm(e, /*rms=*/true, v);
  else if (f == "gelu" || f == "gelu_tanh" || f == "silu" || f == "relu")
    ok = callUnary(e, v);
  else if (f == "rope")
    ok = callRope(e, v);
  else if (f == "causal")
    ok = callCausal(e, v);
  else if (f == "sliding_window")
    ok = callSlidingWindow(e, v);
  else if (f == "padding")
    ok = callPadding(e, v);
  else if (f == "exp" || f == "log" || f == "sqrt" || f == "rsqrt" ||
           f == "tanh" || f == "sigmoid" || f == "abs")
    ok = callMath(e, v);
  else if (f == "min" || f == "max")
    ok = callMinMax(e, v);
  else if (f == "sum" || f == "mean")
    ok = callReduce(e, v);
  else if (f == "where")
    ok = callWhere(e, v);
  else if (f == "mean_pool")
    ok = callMeanPool(e, v);
  else if (f == "l2_normalize")
    ok = callL2Normalize(e, v);
  else if (f == "embedding")
    ok = callEmbedding(e, v);
  else if (f == "arange")
    ok = callArange(e, v);
  else if (f == "unsqueeze")
    ok = callUnsqueeze(e, v);
  else if (f == "cache_write")
    ok = callCacheWrite(e, v);
  else
    return fail(e.loc, "the reference interpreter has no built-in '" + f + "'");
  if (!ok)
    return false;
  out.push_back(std::move(v));
  return true;
}

//===----------------------------------------------------------------------===//
// Built-ins
//===----------------------------------------------------------------------===//

// linear(x, w[, b]) = x @ w^T + b with w: [out, in] (PyTorch layout).
bool Interpreter::callLinear(const Expr &e, Value &out) {
  if (!checkCall(e, 2, 3, {}))
    return false;
  RefTensor x, w, b;
  if (!evalTensor(*e.args[0], x) || !evalTensor(*e.args[1], w))
    return false;
  if (e.args.size() == 3 && !evalTensor(*e.args[2], b))
    return false;
  if (x.shape.empty() || w.shape.size() != 2 || w.shape[1] != x.shape.back())
    return fail(e.loc, "linear needs x: [..., in] and w: [out, in], got " +
                           typeString(x) + " and " + typeString(w));
  const int64_t in = w.shape[1], outDim = w.shape[0];
  if (e.args.size() == 3 && (b.shape.size() != 1 || b.shape[0] != outDim))
    return fail(e.loc, "linear bias must be [" + std::to_string(outDim) +
                           "], got " + typeString(b));
  Shape shape = x.shape;
  shape.back() = outDim;
  RefTensor y(shape, resultType(e, 0, x.dtype));
  const int64_t rows =
      RefTensor::countElements(Shape(x.shape.begin(), x.shape.end() - 1));
  matmulNT(x.data.data(), w.data.data(), y.data.data(), rows, outDim, in);
  if (e.args.size() == 3)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t o = 0; o < outDim; ++o)
        y.data[r * outDim + o] += b.data[o];
  out = Value::of(std::move(y));
  return true;
}

// matmul(a, b): [..., M, K] @ [..., K, N], leading dims broadcast.
bool Interpreter::callMatmul(const Expr &e, Value &out) {
  if (!checkCall(e, 2, 2, {}))
    return false;
  RefTensor a, b;
  if (!evalTensor(*e.args[0], a) || !evalTensor(*e.args[1], b))
    return false;
  if (a.shape.size() < 2 || b.shape.size() < 2 ||
      a.shape.back() != b.shape[b.shape.size() - 2])
    return fail(e.loc, "matmul needs [..., M, K] and [..., K, N], got " +
                           typeString(a) + " and " + typeString(b));
  const int64_t M = a.shape[a.shape.size() - 2], K = a.shape.back();
  const int64_t N = b.shape.back();
  Shape batchA(a.shape.begin(), a.shape.end() - 2);
  Shape batchB(b.shape.begin(), b.shape.end() - 2);
  Shape batch;
  if (!broadcastShapes(batchA, batchB, batch))
    return fail(e.loc, "matmul batch dims do not broadcast: " + typeString(a) +
                           " and " + typeString(b));
  Shape shape = batch;
  shape.push_back(M);
  shape.push_back(N);
  RefTensor y(shape, resultType(e, 0, a.dtype));
  Shape strideA = broadcastStrides(batchA, batch);
  Shape strideB = broadcastStrides(batchB, batch);
  const int64_t nBatch = RefTensor::countElements(batch);
  std::vector<double> bT(N * K);
  for (int64_t i = 0; i < nBatch; ++i) {
    const double *pa = a.data.data() + offsetOf(i, batch, strideA) * M * K;
    const double *pb = b.data.data() + offsetOf(i, batch, strideB) * K * N;
    transposeMatrix(pb, bT.data(), K, N);
    matmulNT(pa, bT.data(), y.data.data() + i * M * N, M, N, K);
  }
  out = Value::of(std::move(y));
  return true;
}

// transpose(x) swaps the last two dims.
bool Interpreter::callTranspose(const Expr &e, Value &out) {
  if (!checkCall(e, 1, 1, {}))
    return false;
  RefTensor x;
  if (!evalTensor(*e.args[0], x))
    return false;
  if (x.shape.size() < 2)
    return fail(e.loc, "transpose needs rank >= 2, got " + typeString(x));
  const int64_t R = x.shape[x.shape.size() - 2], C = x.shape.back();
  Shape shape = x.shape;
  std::swap(shape[shape.size() - 2], shape.back());
  RefTensor y(shape, resultType(e, 0, x.dtype));
  const int64_t nBatch = R * C != 0 ? x.numel() / (R * C) : 0;
  for (int64_t i = 0; i < nBatch; ++i)
    transposeMatrix(x.data.data() + i * R * C, y.data.data() + i * R * C, R, C);
  out = Value::of(std::move(y));
  return true;
}

// split_heads(x, heads=H): [B, S, H*D] -> [B, H, S, D]; head h takes columns
// h*D .. h*D+D-1.
bool Interpreter::callSplitHeads(const Expr &e, Value &out) {
  if (!checkCall(e, 1, 1, {"heads"}))
    return false;
  const Expr *hk = keyword(e, "heads");
  if (!hk)
    return fail(e.loc, "split_heads needs heads=");
  RefTensor x;
  int64_t H;
  if (!evalTensor(*e.args[0], x) || !foldInteger(*hk, "heads", H))
    return false;
  if (x.shape.size() != 3)
    return fail(e.loc, "split_heads needs [B, S, H*D], got " + typeString(x));
  const int64_t B = x.shape[0], S = x.shape[1], E = x.shape[2];
  if (H <= 0 || E % H != 0)
    return fail(e.loc, "heads=" + std::to_string(H) + " does not divide " +
                           std::to_string(E));
  const int64_t D = E / H;
  RefTensor y({B, H, S, D}, resultType(e, 0, x.dtype));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t s = 0; s < S; ++s)
        for (int64_t d = 0; d < D; ++d)
          y.data[((b * H + h) * S + s) * D + d] =
              x.data[(b * S + s) * E + h * D + d];
  out = Value::of(std::move(y));
  return true;
}

// merge_heads(x): [B, H, S, D] -> [B, S, H*D], the inverse of split_heads.
bool Interpreter::callMergeHeads(const Expr &e, Value &out) {
  if (!checkCall(e, 1, 1, {}))
    return false;
  RefTensor x;
  if (!evalTensor(*e.args[0], x))
    return false;
  if (x.shape.size() != 4)
    return fail(e.loc, "merge_heads needs [B, H, S, D], got " + typeString(x));
  const int64_t B = x.shape[0], H = x.shape[1], S = x.shape[2], D = x.shape[3];
  RefTensor y({B, S, H * D}, resultType(e, 0, x.dtype));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t s = 0; s < S; ++s)
        for (int64_t d = 0; d < D; ++d)
          y.data[(b * S + s) * H * D + h * D + d] =
              x.data[((b * H + h) * S + s) * D + d];
  out = Value::of(std::move(y));
  return true;
}

// split(x, n): n equal parts along the last dim, n results.
bool Interpreter::callSplit(const Expr &e, std::vector<Value> &out) {
  if (!checkCall(e, 1, 2, {"n"}))
    return false;
  const Expr *nExpr = e.args.size() == 2 ? e.args[1].get() : keyword(e, "n");
  if (!nExpr || (e.args.size() == 2 && keyword(e, "n")))
    return fail(e.loc, "split needs the number of parts exactly once");
  RefTensor x;
  int64_t n;
  if (!evalTensor(*e.args[0], x) || !foldInteger(*nExpr, "n", n))
    return false;
  if (x.shape.empty() || n <= 0 || x.shape.back() % n != 0)
    return fail(e.loc, "split into " + std::to_string(n) +
                           " parts does not divide " + typeString(x));
  const int64_t L = x.shape.back(), part = L / n;
  const int64_t rows = L ? x.numel() / L : 0;
  Shape shape = x.shape;
  shape.back() = part;
  for (int64_t p = 0; p < n; ++p) {
    RefTensor y(shape, resultType(e, p, x.dtype));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < part; ++j)
        y.data[r * part + j] = x.data[r * L + p * part + j];
    out.push_back(Value::of(std::move(y)));
  }
  return true;
}

// concat(a, b, ..., axis=-1); a negative axis counts from the end.
bool Interpreter::callConcat(const Expr &e, Value &out) {
  if (!checkCall(e, 2, SIZE_MAX, {"axis"}))
    return false;
  std::vector<RefTensor> xs(e.args.size());
  for (size_t i = 0; i < xs.size(); ++i)
    if (!evalTensor(*e.args[i], xs[i]))
      return false;
  int64_t axis = -1;
  if (const Expr *ax = keyword(e, "axis"))
    if (!foldInteger(*ax, "axis", axis))
      return false;
  const int64_t rank = static_cast<int64_t>(xs[0].shape.size());
  if (axis < 0)
    axis += rank;
  if (axis < 0 || axis >= rank)
    return fail(e.loc, "concat axis is out of range for " + typeString(xs[0]));
  Shape shape = xs[0].shape;
  shape[axis] = 0;
  for (const RefTensor &x : xs) {
    bool ok = static_cast<int64_t>(x.shape.size()) == rank;
    for (int64_t d = 0; ok && d < rank; ++d)
      ok = d == axis || x.shape[d] == xs[0].shape[d];
    if (!ok)
      return fail(e.loc, "concat along axis " + std::to_string(axis) + " of " +
                             typeString(xs[0]) + " and " + typeString(x));
    shape[axis] += x.shape[axis];
  }
  RefTensor y(shape, resultType(e, 0, xs[0].dtype));
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; ++d)
    outer *= shape[d];
  const int64_t rowOut = outer ? y.numel() / outer : 0;
  int64_t start = 0;
  for (const RefTensor &x : xs) {
    const int64_t rowIn = outer ? x.numel() / outer : 0;
    for (int64_t o = 0; o < outer; ++o)
      std::copy(x.data.begin() + o * rowIn, x.data.begin() + (o + 1) * rowIn,
                y.data.begin() + o * rowOut + start);
    start += rowIn;
  }
  out = Value::of(std::move(y));
  return true;
}

// softmax(x[, mask=M]) over the last dim.
bool Interpreter::callSoftmax(const Expr &e, Value &out) {
  if (!checkCall(e, 1, 1, {"mask"}))
    return false;
  RefTensor x;
  MaskPtr mask;
  if (!evalTensor(*e.args[0], x))
    return false;
  if (const Expr *m = keyword(e, "mask"))
    if (!evalMask(*m, mask))
      return false;
  if (x.shape.empty())
    return fail(e.loc, "softmax needs rank >= 1, got " + typeString(x));
  std::string err;
  if (mask && !checkMask(*mask, x.shape, err))
    return fail(e.loc, err);
  x.dtype = resultType(e, 0, x.dtype);
  const int64_t n = x.shape.back();
  const int64_t rows = n ? x.numel() / n : 0;
  Shape rowShape(x.shape.begin(), x.shape.end() - 1), idx;
  std::vector<char> keep(n, 1);
  for (int64_t r = 0; r < rows; ++r) {
    if (mask) {
      unravel(r, rowShape, idx);
      maskRow(*mask, x.shape, idx, keep.data());
    }
    softmaxRow(x.data.data() + r * n, keep.data(), n);
  }
  out = Value::of(std::move(x));
  return true;
}

// attention(q, k, v[, mask][, bias][, scale]) =
//   softmax(q k^T * scale + bias, mask) v, query head h reads kv head
//   h / (Hq / Hkv).
bool Interpreter::callAttention(const Expr &e, Value &out) {
  if (!checkCall(e, 3, 3, {"mask", "bias", "scale"}))
    return false;
  RefTensor q, k, v, bias;
  MaskPtr mask;
  if (!evalTensor(*e.args[0], q) || !evalTensor(*e.args[1], k) ||
      !evalTensor(*e.args[2], v))
    return false;
  if (const Expr *m = keyword(e, "mask"))
    if (!evalMask(*m, mask))
      return false;
  const Expr *biasExpr = keyword(e, "bias");
  if (biasExpr && !evalTensor(*biasExpr, bias))
    return false;
  if (q.shape.size() != 4 || k.shape.size() != 4 || v.shape.size() != 4)
    return fail(e.loc, "attention needs rank-4 q, k, v, got " + typeString(q) +
                           ", " + typeString(k) + ", " + typeString(v));
  const int64_t B = q.shape[0], Hq = q.shape[1], Sq = q.shape[2],
                D = q.shape[3];
  const int64_t Hkv = k.shape[1], Sk = k.shape[2], Dv = v.shape[3];
  if (k.shape[0] != B || v.shape[0] != B || k.shape[3] != D ||
      v.shape[1] != Hkv || v.shape[2] != Sk)
    return fail(e.loc, "attention shapes do not agree: q " + typeString(q) +
                           ", k " + typeString(k) + ", v " + typeString(v));
  if (Hkv <= 0 || Hq % Hkv != 0)
    return fail(e.loc, "attention needs Hq % Hkv == 0, got Hq=" +
                           std::to_string(Hq) + " Hkv=" + std::to_string(Hkv));
  double scale = 1.0 / std::sqrt(static_cast<double>(D));
  if (const Expr *s = keyword(e, "scale"))
    if (!foldConstant(*s, scale))
      return false;

  const Shape scores = {B, Hq, Sq, Sk};
  std::string err;
  if (mask && !checkMask(*mask, scores, err))
    return fail(e.loc, err);
  Shape biasStrides;
  if (biasExpr) {
    if (!broadcastsTo(bias.shape, scores))
      return fail(biasExpr->loc, "attention bias " + typeString(bias) +
                                     " does not broadcast to scores " +
                                     shapeString(scores));
    biasStrides = broadcastStrides(bias.shape, scores);
  }

  RefTensor y({B, Hq, Sq, Dv}, resultType(e, 0, q.dtype));
  const int64_t group = Hq / Hkv;
  std::vector<double> s(Sq * Sk), vT(Dv * Sk);
  std::vector<char> keep(Sk, 1);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t hk = h / group;
      const double *qp = q.data.data() + (b * Hq + h) * Sq * D;
      const double *kp = k.data.data() + (b * Hkv + hk) * Sk * D;
      const double *vp = v.data.data() + (b * Hkv + hk) * Sk * Dv;
      matmulNT(qp, kp, s.data(), Sq, Sk, D);
      for (int64_t i = 0; i < Sq; ++i) {
        double *row = s.data() + i * Sk;
        for (int64_t j = 0; j < Sk; ++j) {
          row[j] *= scale;
          if (biasExpr)
            row[j] += bias.data[b * biasStrides[0] + h * biasStrides[1] +
                                i * biasStrides[2] + j * biasStrides[3]];
        }
        if (mask)
          maskRow(*mask, scores, {b, h, i}, keep.data());
        softmaxRow(row, keep.data(), Sk);
      }
      transposeMatrix(vp, vT.data(), Sk, Dv);
      matmulNT(s.data(), vT.data(), y.data.data() + (b * Hq + h) * Sq * Dv, Sq,
               Dv, Sk);
    }
  }
  out = Value::of(std::move(y));
  return true;
}

// layer_norm(x, g, b, eps=1e-5): (x - mean) / sqrt(var + eps) * g + b with the
// biased variance; rms_norm(x, g, eps=1e-6): x / sqrt(mean(x^2) + eps) * g.
bool Interpreter::callNorm(const Expr &e, bool rms, Value &out) {
  if (!checkCall(e, 2, rms ? 2 : 3, {"eps"}))
    return false;
  RefTensor x, g, b;
  if (!evalTensor(*e.args[0], x) || !evalTensor(*e.args[1], g))
    return false;
  if (e.args.size() == 3 && !evalTensor(*e.args[2], b))
    return false;
  double eps = rms ? 1e-6 : 1e-5;
  if (const Expr *ek = keyword(e, "eps"))
    if (!foldConstant(*ek, eps))
      return false;
  if (x.shape.empty())
    return fail(e.loc, e.name + " needs rank >= 1, got " + typeString(x));
  const int64_t n = x.shape.back();
  const Shape param = {n};
  if (g.shape != param || (e.args.size() == 3 && b.shape != param))
    return fail(e.loc, e.name + " weights must be [" + std::to_string(n) +
                           "] for " + typeString(x) + ", got " + typeString(g) +
                           (e.args.size() == 3 ? " and " + typeString(b) : ""));
  RefTensor y(x.shape, resultType(e, 0, x.dtype));
  const int64_t rows = n ? x.numel() / n : 0;
  for (int64_t r = 0; r < rows; ++r) {
    const double *xr = x.data.data() + r * n;
    double *yr = y.data.data() + r * n;
    if (rms) {
      double ss = 0;
      for (int64_t j = 0; j < n; ++j)
        ss += xr[j] * xr[j];
      const double inv = 1.0 / std::sqrt(ss / n + eps);
      for (int64_t j = 0; j < n; ++j)
        yr[j] = xr[j] * inv * g.data[j];
    } else {
      double sum = 0;
      for (int64_t j = 0; j < n; ++j)
        sum += xr[j];
      const double mean = sum / n;
      double var = 0;
      for (int64_t j = 0; j < n; ++j)
        var += (xr[j] - mean) * (xr[j] - mean);
      const double inv = 1.0 / std::sqrt(var / n + eps);
      for (int64_t j = 0; j < n; ++j)
        yr[j] = (xr[j] - mean) * inv * g.data[j] +
                (e.args.size() == 3 ? b.data[j] : 0.0);
    }
  }
  out = Value::of(std::move(y));
  return true;
}

// gelu (erf form), gelu_tanh, silu, relu.
bool Interpreter::callUnary(const Expr &e, Value &out) {
  if (!checkCall(e, 1, 1, {}))
    return false;
  RefTensor x;
  if (!evalTensor(*e.args[0], x))
    return false;
  if (!ast::isFloat(x.dtype) && x.dtype != DType::I32)
    return fail(e.loc,
                e.name + " needs a numeric tensor, got " + typeString(x));
  const double kPi = 3.14159265358979323846;
  for (double &t : x.data) {
    if (e.name == "gelu")
      t = 0.5 * t * (1.0 + std::erf(t / std::sqrt(2.0)));
    else if (e.name == "gelu_tanh")
      t = 0.5 * t *
          (1.0 + std::tanh(std::sqrt(2.0 / kPi) * (t + 0.044715 * t * t * t)));
    else if (e.name == "silu")
      t = t / (1.0 + std::exp(-t));
    else // relu
      t = t > 0 ? t : 0.0;
  }
  x.dtype = resultType(e, 0, x.dtype);
  out = Value::of(std::move(x));
  return true;
}

// rope(x, pos, theta=10000, style="rotate_half"|"interleaved") on
// x: [B, H, S, D], pos: [S] or [B, S]; inv_freq[i] = theta^(-2i/D).
bool Interpreter::callRope(const Expr &e, Value &out) {
  if (!checkCall(e, 2, 2, {"theta", "style"}))
    return false;
  RefTensor x, pos;
  if (!evalTensor(*e.args[0], x) || !evalTensor(*e.args[1], pos))
    return false;
  double theta = 10000.0;
  if (const Expr *t = keyword(e, "theta"))
    if (!foldConstant(*t, theta))
      return false;
  bool interleaved = false;
  if (const Expr *st = keyword(e, "style")) {
    if (st->kind != Expr::String ||
        (st->name != "rotate_half" && st->name != "interleaved"))
      return fail(st->loc,
                  "rope style must be \"rotate_half\" or \"interleaved\"");
    interleaved = st->name == "interleaved";
  }
  if (x.shape.size() != 4 || x.shape[3] % 2 != 0)
    return fail(e.loc,
                "rope needs [B, H, S, D] with even D, got " + typeString(x));
  const int64_t B = x.shape[0], H = x.shape[1], S = x.shape[2], D = x.shape[3],
                half = D / 2;
  const bool perBatch = pos.shape.size() == 2;
  if (!(pos.shape == Shape{S} || pos.shape == Shape{B, S}))
    return fail(e.loc, "rope positions must be [S] or [B, S] for " +
                           typeString(x) + ", got " + typeString(pos));
  std::vector<double> invFreq(half);
  for (int64_t i = 0; i < half; ++i)
    invFreq[i] = 1.0 / std::pow(theta, static_cast<double>(2 * i) / D);
  RefTensor y(x.shape, resultType(e, 0, x.dtype));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t s = 0; s < S; ++s) {
        const double p = pos.data[perBatch ? b * S + s : s];
        const double *xr = x.data.data() + ((b * H + h) * S + s) * D;
        double *yr = y.data.data() + ((b * H + h) * S + s) * D;
        for (int64_t i = 0; i < half; ++i) {
          const double c = std::cos(p * invFreq[i]);
          const double sn = std::sin(p * invFreq[i]);
          const int64_t a = interleaved ? 2 * i : i;
          const int64_t o = interleaved ? 2 * i + 1 : i + half;
          yr[a] = xr[a] * c - xr[o] * sn;
          yr[o] = xr[o] * c + xr[a] * sn;
        }
      }
  out = Value::of(std::move(y));
  return true;
}

// causal() is the same mask as the bare name `causal`; causal(start) puts
// query i of batch row b at position start[b] + i.
bool Interpreter::callCausal(const Expr &e, Value &out) {
  if (!checkCall(e, 0, 1, {}))
    return false;
  auto m = std::make_shared<MaskNode>();
  m->kind = MaskNode::Causal;
  if (e.args.size() == 1) {
    if (!evalTensor(*e.args[0], m->tensor))
      return false;
    if (m->tensor.dtype != DType::I32 || m->tensor.shape.size() != 1)
      return fail(e.args[0]->loc,
                  "causal starts must be i32[B], got " + typeString(m->tensor));
    m->hasStart = true;
  }
  out = Value::ofMask(m);
  return true;
}

// sliding_window(W): causal, keeping the W most recent keys.
bool Interpreter::callSlidingWindow(const Expr &e, Value &out) {
  if (!checkCall(e, 0, 1, {"window"}))
    return false;
  const Expr *w = e.args.size() == 1 ? e.args[0].get() : keyword(e, "window");
  if (!w || (e.args.size() == 1 && keyword(e, "window")))
    return fail(e.loc, "sliding_window needs its window size exactly once");
  auto m = std::make_shared<MaskNode>();
  m->kind = MaskNode::Window;
  if (!foldInteger(*w, "window", m->window))
    return false;
  if (m->window < 0)
    return fail(w->loc, "sliding_window size must be >= 0");
  out = Value::ofMask(m);
  return true;
}

// padding(lengths): keeps keys j < lengths[b].
bool Interpreter::callPadding(const Expr &e, Value &out) {
  if (!checkCall(e, 1, 1, {}))
    return false;
  auto m = std::make_shared<MaskNode>();
  m->kind = MaskNode::Padding;
  if (!evalTensor(*e.args[0], m->tensor))
    return false;
  if (m->tensor.shape.size() != 1)
    return fail(e.loc,
                "padding lengths must be [B], got " + typeString(m->tensor));
  out = Value::ofMask(m);
  return true;
}

//===----------------------------------------------------------------------===//
// Element-wise math, selections, reductions, pooling, gathers, subscripts
//===----------------------------------------------------------------------===//

// !x on a bool tensor.
bool Interpreter::evalNot(const Expr &e, Value &out) {
  if (e.args.size() != 1)
    return fail(e.loc, "malformed '!'");
  RefTensor x;
  if (!evalTensor(*e.args[0], x))
    return false;
  if (x.dtype != DType::Bool)
    return fail(e.loc, "'!' needs a bool tensor, got " + typeString(x));
  for (double &t : x.data)
    t = t != 0 ? 0.0 : 1.0;
  out = Value::of(std::move(x));
  return true;
}

// exp log sqrt rsqrt tanh sigmoid of a float (f32 result); abs also of i32.
bool Interpreter::callMath(const Expr &e, Value &out) {
  if (!checkCall(e, 1, 1, {}))
    return false;
  RefTensor x;
  if (!evalTensor(*e.args[0], x))
    return false;
  const std::string &f = e.name;
  const bool isInt = x.dtype == DType::I32;
  if (!ast::isFloat(x.dtype) && !(f == "abs" && isInt))
    return fail(e.loc, f + " needs a float tensor" +
                           (f == "abs" ? " or i32" : "") + ", got " +
                           typeString(x));
  for (double &t : x.data) {
    if (f == "exp")
      t = std::exp(t);
    else if (f == "log")
      t = std::log(t);
    else if (f == "sqrt")
      t = std::sqrt(t);
    else if (f == "rsqrt")
      t = 1.0 / std::sqrt(t);
    else if (f == "tanh")
      t = std::tanh(t);
    else if (f == "sigmoid")
      t = 1.0 / (1.0 + std::exp(-t));
    else // abs
      t = std::fabs(t);
  }
  x.dtype = resultType(e, 0, isInt ? DType::I32 : DType::F32);
  out = Value::of(std::move(x));
  return true;
}

// min(a, b) / max(a, b) element-wise with arithmetic's promotion, or
// min(x, dim=d) / max(x, dim=d) as reductions.
bool Interpreter::callMinMax(const Expr &e, Value &out) {
  if (e.args.size() == 1)
    return callReduce(e, out);
  if (!checkCall(e, 2, 2, {}))
    return false;
  Value a, b;
  if (!evalOne(*e.args[0], a) || !evalOne(*e.args[1], b))
    return false;
  if (a.isMask || b.isMask || a.tensor.dtype == DType::Bool ||
      b.tensor.dtype == DType::Bool)
    return fail(e.loc, e.name + "(a, b) needs numeric tensors");
  RefTensor r;
  if (!elementwise(e, e.name == "min" ? 'm' : 'M', a.tensor, b.tensor,
                   resultType(e, 0, promoted(a, b)), r))
    return false;
  out = Value::of(std::move(r));
  out.literal = a.literal && b.literal;
  return true;
}

// sum/mean/max/min(x, dim=d[, keepdim=0|1]); d may be negative.
bool Interpreter::callReduce(const Expr &e, Value &out) {
  if (!checkCall(e, 1, 1, {"dim", "keepdim"}))
    return false;
  const Expr *dimExpr = keyword(e, "dim");
  if (!dimExpr)
    return fail(e.loc, e.name + "(x) needs dim=");
  RefTensor x;
  int64_t dim, keep = 0;
  if (!evalTensor(*e.args[0], x) || !foldInteger(*dimExpr, "dim", dim))
    return false;
  if (const Expr *k = keyword(e, "keepdim"))
    if (!foldInteger(*k, "keepdim", keep))
      return false;
  const std::string &f = e.name;
  const bool isSum = f == "sum" || f == "mean";
  if (!ast::isFloat(x.dtype) && !(x.dtype == DType::I32 && !isSum))
    return fail(e.loc, f + " needs a float tensor" + (isSum ? "" : " or i32") +
                           ", got " + typeString(x));
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  if (dim < -rank || dim >= rank)
    return fail(dimExpr->loc, "dim " + std::to_string(dim) +
                                  " is out of range for " + typeString(x));
  if (dim < 0)
    dim += rank;
  if (keep != 0 && keep != 1)
    return fail(e.loc, "keepdim must be 0 or 1");
  // x as [outer, n, inner] with n the reduced dim.
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d)
    outer *= x.shape[d];
  for (int64_t d = dim + 1; d < rank; ++d)
    inner *= x.shape[d];
  const int64_t n = x.shape[dim];
  Shape shape = x.shape;
  if (keep)
    shape[dim] = 1;
  else
    shape.erase(shape.begin() + dim);
  RefTensor y(
      shape, resultType(e, 0, x.dtype == DType::I32 ? DType::I32 : DType::F32));
  if (n == 0 && f != "sum" && y.numel() > 0)
    return fail(e.loc, f + " over an empty dim of " + typeString(x));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const double *p = x.data.data() + o * n * inner + i;
      double acc = isSum ? 0.0 : p[0];
      for (int64_t k = 0; k < n; ++k) {
        const double v = p[k * inner];
        if (isSum)
          acc += v;
        else
          acc = f == "max" ? std::max(acc, v) : std::min(acc, v);
      }
      if (f == "mean")
        acc /= static_cast<double>(n);
      y.data[o * inner + i] = acc;
    }
  out = Value::of(std::move(y));
  return true;
}

// where(cond, a, b): cond ? a : b, the three shapes broadcast together.
bool Interpreter::callWhere(const Expr &e, Value &out) {
  if (!checkCall(e, 3, 3, {}))
    return false;
  Value c, a, b;
  if (!evalOne(*e.args[0], c) || !evalOne(*e.args[1], a) ||
      !evalOne(*e.args[2], b))
    return false;
  if (c.isMask || c.tensor.dtype != DType::Bool)
    return fail(e.args[0]->loc,
                "where needs a bool condition, got " +
                    (c.isMask ? std::string("a mask") : typeString(c.tensor)));
  if (a.isMask || b.isMask || a.tensor.dtype == DType::Bool ||
      b.tensor.dtype == DType::Bool)
    return fail(e.loc, "where needs numeric tensors to choose from");
  Shape ab, shape;
  if (!broadcastShapes(a.tensor.shape, b.tensor.shape, ab) ||
      !broadcastShapes(c.tensor.shape, ab, shape))
    return fail(e.loc, "where cannot broadcast " + typeString(c.tensor) + ", " +
                           typeString(a.tensor) + " and " +
                           typeString(b.tensor));
  RefTensor y(shape, resultType(e, 0, promoted(a, b)));
  const Shape sc = broadcastStrides(c.tensor.shape, shape);
  const Shape sa = broadcastStrides(a.tensor.shape, shape);
  const Shape sb = broadcastStrides(b.tensor.shape, shape);
  for (int64_t i = 0; i < y.numel(); ++i)
    y.data[i] = c.tensor.data[offsetOf(i, shape, sc)] != 0
                    ? a.tensor.data[offsetOf(i, shape, sa)]
                    : b.tensor.data[offsetOf(i, shape, sb)];
  out = Value::of(std::move(y));
  return true;
}

// mean_pool(x: [B, S, ...], lengths: i32[B]): the mean over the first
// n = min(lengths[b], S) positions, 0 when n <= 0.
bool Interpreter::callMeanPool(const Expr &e, Value &out) {
  if (!checkCall(e, 2, 2, {}))
    return false;
  RefTensor x, len;
  if (!evalTensor(*e.args[0], x) || !evalTensor(*e.args[1], len))
    return false;
  if (!ast::isFloat(x.dtype) || x.shape.size() < 2)
    return fail(e.loc, "mean_pool needs a float x of shape [B, S, ...], got " +
                           typeString(x));
  const int64_t B = x.shape[0], S = x.shape[1];
  if (len.dtype != DType::I32 || len.shape != Shape{B})
    return fail(e.loc, "mean_pool lengths must be i32[" + std::to_string(B) +
                           "], got " + typeString(len));
  Shape shape = x.shape;
  shape.erase(shape.begin() + 1);
  const int64_t inner = S ? x.numel() / (B * S) : 0;
  RefTensor y(shape, resultType(e, 0, DType::F32));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = std::min<int64_t>(
        S, std::max<int64_t>(0, static_cast<int64_t>(len.data[b])));
    for (int64_t i = 0; i < inner && n > 0; ++i) {
      double sum = 0;
      for (int64_t s = 0; s < n; ++s)
        sum += x.data[(b * S + s) * inner + i];
      y.data[b * inner + i] = sum / static_cast<double>(n);
    }
  }
  out = Value::of(std::move(y));
  return true;
}

// l2_normalize(x, eps=1e-12) = x / max(||x||_2, eps) over the last dim.
bool Interpreter::callL2Normalize(const Expr &e, Value &out) {
  if (!checkCall(e, 1, 1, {"eps"}))
    return false;
  RefTensor x;
  if (!evalTensor(*e.args[0], x))
    return false;
  double eps = 1e-12;
  if (const Expr *ek = keyword(e, "eps"))
    if (!foldConstant(*ek, eps))
      return false;
  if (!ast::isFloat(x.dtype) || x.shape.empty())
    return fail(e.loc, "l2_normalize needs a float tensor of rank >= 1, got " +
                           typeString(x));
  const int64_t n = x.shape.back();
  const int64_t rows = n ? x.numel() / n : 0;
  for (int64_t r = 0; r < rows; ++r) {
    double *xr = x.data.data() + r * n;
    double ss = 0;
    for (int64_t j = 0; j < n; ++j)
      ss += xr[j] * xr[j];
    const double norm = std::max(std::sqrt(ss), eps);
    for (int64_t j = 0; j < n; ++j)
      xr[j] /= norm;
  }
  x.dtype = resultType(e, 0, DType::F32);
  out = Value::of(std::move(x));
  return true;
}

// embedding(table: [V, D], ids: i32[...]) -> [..., D]; an id outside [0, V)
// is an error that names the ids.
bool Interpreter::callEmbedding(const Expr &e, Value &out) {
  if (!checkCall(e, 2, 2, {}))
    return false;
  RefTensor table, ids;
  if (!evalTensor(*e.args[0], table) || !evalTensor(*e.args[1], ids))
    return false;
  if (!ast::isFloat(table.dtype) || table.shape.size() != 2)
    return fail(e.loc, "embedding needs a float table [V, D], got " +
                           typeString(table));
  const std::string idsName =
      e.args[1]->kind == Expr::Name ? "'" + e.args[1]->name + "'" : "ids";
  if (ids.dtype != DType::I32)
    return fail(e.loc, "embedding needs i32 ids, " + idsName + " is " +
                           typeString(ids));
  const int64_t V = table.shape[0], D = table.shape[1];
  Shape shape = ids.shape;
  shape.push_back(D);
  RefTensor y(shape, resultType(e, 0, DType::F32));
  for (int64_t i = 0; i < ids.numel(); ++i) {
    const double id = ids.data[i];
    if (!(id >= 0 && id < static_cast<double>(V)))
      return fail(e.args[1]->loc, "embedding: " + idsName + " holds id " +
                                      std::to_string(static_cast<int64_t>(id)) +
                                      " (flat index " + std::to_string(i) +
                                      "), outside [0, " + std::to_string(V) +
                                      ")");
    std::copy(table.data.begin() + static_cast<int64_t>(id) * D,
              table.data.begin() + (static_cast<int64_t>(id) + 1) * D,
              y.data.begin() + i * D);
  }
  out = Value::of(std::move(y));
  return true;
}

// arange(n) = [0, 1, ..., n-1] as i32; n is a size name or an integer.
bool Interpreter::callArange(const Expr &e, Value &out) {
  if (!checkCall(e, 1, 1, {}))
    return false;
  int64_t n;
  if (!foldInteger(*e.args[0], "arange's size", n))
    return false;
  if (n < 0)
    return fail(e.loc, "arange of a negative size " + std::to_string(n));
  RefTensor y({n}, DType::I32);
  for (int64_t i = 0; i < n; ++i)
    y.data[i] = static_cast<double>(i);
  out = Value::of(std::move(y));
  return true;
}

// unsqueeze(x, dim=d): x with a dim of size 1 inserted before dim d, d in
// [-rank-1, rank] (a negative d counts from the end of the result's dims,
// as torch.unsqueeze). The values do not move.
bool Interpreter::callUnsqueeze(const Expr &e, Value &out) {
  if (!checkCall(e, 1, 1, {"dim"}))
    return false;
  const Expr *dimExpr = keyword(e, "dim");
  if (!dimExpr)
    return fail(e.loc, "unsqueeze(x) needs dim=");
  Value v;
  int64_t dim;
  if (!evalOne(*e.args[0], v) || !foldInteger(*dimExpr, "dim", dim))
    return false;
  if (v.isMask)
    return fail(e.args[0]->loc, "unsqueeze needs a tensor, got a mask");
  const int64_t rank = static_cast<int64_t>(v.tensor.shape.size());
  if (dim < -rank - 1 || dim > rank)
    return fail(dimExpr->loc, "dim " + std::to_string(dim) +
                                  " is out of range for unsqueeze of " +
                                  typeString(v.tensor));
  if (dim < 0)
    dim += rank + 1;
  v.tensor.shape.insert(v.tensor.shape.begin() + dim, 1);
  v.tensor.dtype = resultType(e, 0, v.tensor.dtype);
  v.literal = false;
  out = std::move(v);
  return true;
}

// cache_write(cache, new, start) with cache an inout argument [B, H, T, D],
// new [B, H, S, D], start i32[B]: rows start[b] .. start[b] + S - 1 of the
// cache's buffer take new[b] (rounded to the cache's dtype); the value is
// the buffer after the write, as f32. A start outside [0, T - S] is an
// error naming the cache, and then nothing is written.
bool Interpreter::callCacheWrite(const Expr &e, Value &out) {
  if (!checkCall(e, 3, 3, {}))
    return false;
  const Expr &c = *e.args[0];
  auto buf = c.kind == Expr::Name ? buffers.find(c.name) : buffers.end();
  if (buf == buffers.end())
    return fail(c.loc,
                "cache_write writes an inout argument of the model, not " +
                    (c.kind == Expr::Name ? "'" + c.name + "'"
                                          : std::string("an expression")));
  RefTensor &cache = buf->second;
  RefTensor fresh, start;
  if (!evalTensor(*e.args[1], fresh) || !evalTensor(*e.args[2], start))
    return false;
  if (cache.shape.size() != 4 || fresh.shape.size() != 4 ||
      fresh.shape[0] != cache.shape[0] || fresh.shape[1] != cache.shape[1] ||
      fresh.shape[3] != cache.shape[3])
    return fail(e.loc, "cache_write needs a cache [B, H, T, D] and new rows "
                       "[B, H, S, D], got '" +
                           c.name + "' " + typeString(cache) + " and " +
                           typeString(fresh));
  const int64_t B = cache.shape[0], H = cache.shape[1], T = cache.shape[2],
                D = cache.shape[3], S = fresh.shape[2];
  if (start.dtype != DType::I32 || start.shape != Shape{B})
    return fail(e.args[2]->loc, "cache_write: start must be i32[" +
                                    std::to_string(B) + "], got " +
                                    typeString(start));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t st = static_cast<int64_t>(start.data[b]);
    if (st < 0 || st + S > T)
      return fail(e.loc, "cache_write: '" + c.name + "' holds " +
                             std::to_string(T) + " positions but start[" +
                             std::to_string(b) + "] = " + std::to_string(st) +
                             " with " + std::to_string(S) +
                             " new rows needs [" + std::to_string(st) + ", " +
                             std::to_string(st + S) + ")");
  }
  for (int64_t b = 0; b < B; ++b) {
    const int64_t st = static_cast<int64_t>(start.data[b]);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t s = 0; s < S; ++s)
        for (int64_t d = 0; d < D; ++d)
          cache.data[((b * H + h) * T + st + s) * D + d] = roundToDType(
              fresh.data[((b * H + h) * S + s) * D + d], cache.dtype);
  }
  RefTensor y = cache;
  y.dtype = resultType(e, 0, DType::F32);
  out = Value::of(std::move(y));
  return true;
}

// x[s0, s1, ...]: resolved here from the subscripts as written (not from
// Sema's Expr::slices) against the actual shape: `...` stands for as many `:`
// as the rank needs, an index drops its dim, a bound is an integer
// (negative counts from the end) or a size name, and every bound must lie
// within the dim.
bool Interpreter::evalIndex(const Expr &e, Value &out) {
  if (e.args.size() != 1)
    return fail(e.loc, "malformed subscript");
  RefTensor x;
  if (!evalTensor(*e.args[0], x))
    return false;
  const size_t rank = x.shape.size();
  size_t given = 0, ellipses = 0;
  for (const ast::Subscript &sub : e.subscripts)
    (sub.kind == ast::Subscript::Ellipsis ? ellipses : given) += 1;
  if (ellipses > 1 || given > rank)
    return fail(e.loc, "a subscript of " + std::to_string(given) +
                           " entries does not fit " + typeString(x));
  // As in NumPy, dims left out at the end are taken whole (`cache[i]`).
  const size_t trailing = ellipses ? 0 : rank - given;
  // Per dim of x: the first position taken, how many, and whether the dim
  // stays.
  Shape start, count;
  std::vector<bool> keep;
  auto fold = [&](const ast::ExprPtr &b, int64_t dflt, int64_t n, int64_t &v) {
    if (!b) {
      v = dflt;
      return true;
    }
    if (!foldInteger(*b, "a subscript bound", v))
      return false;
    if (v < 0)
      v += n;
    return true;
  };
  size_t d = 0;
  for (const ast::Subscript &sub : e.subscripts) {
    if (sub.kind == ast::Subscript::Ellipsis) {
      for (size_t k = 0; k < rank - given; ++k, ++d) {
        start.push_back(0);
        count.push_back(x.shape[d]);
        keep.push_back(true);
      }
      continue;
    }
    const int64_t n = x.shape[d++];
    int64_t lo = 0, hi = n;
    if (sub.kind == ast::Subscript::Index) {
      if (!fold(sub.lo, 0, n, lo))
        return false;
      if (lo < 0 || lo >= n)
        return fail(sub.loc, "index " + std::to_string(lo) +
                                 " is out of range for dim " +
                                 std::to_string(d - 1) + " of " +
                                 typeString(x));
      hi = lo + 1;
    } else if (sub.kind == ast::Subscript::Range) {
      if (!fold(sub.lo, 0, n, lo) || !fold(sub.hi, n, n, hi))
        return false;
      if (lo < 0 || hi < lo || hi > n)
        return fail(sub.loc,
                    "range " + std::to_string(lo) + ":" + std::to_string(hi) +
                        " is out of range for dim " + std::to_string(d - 1) +
                        " of " + typeString(x));
    }
    start.push_back(lo);
    count.push_back(hi - lo);
    keep.push_back(sub.kind != ast::Subscript::Index);
  }
  for (size_t k = 0; k < trailing; ++k, ++d) {
    start.push_back(0);
    count.push_back(x.shape[d]);
    keep.push_back(true);
  }
  Shape shape;
  for (size_t k = 0; k < rank; ++k)
    if (keep[k])
      shape.push_back(count[k]);
  RefTensor y(shape, resultType(e, 0, x.dtype));
  const Shape strides = stridesOf(x.shape);
  Shape idx;
  for (int64_t i = 0; i < y.numel(); ++i) {
    unravel(i, count, idx); // count has the same numel as shape
    int64_t off = 0;
    for (size_t k = 0; k < rank; ++k)
      off += (start[k] + idx[k]) * strides[k];
    y.data[i] = x.data[off];
  }
  out = Value::of(std::move(y));
  return true;
}

// A call of another model: the callee runs in a fresh interpreter on the
// argument values, its weights looked up under this model's prefix plus the
// call's params= prefix. Its results are rounded to their declared dtypes,
// as the results of any model are.
bool Interpreter::callModel(const Expr &e, std::vector<Value> &out) {
  const ast::Model &callee = *e.callee;
  std::string callPrefix;
  for (const ast::KeywordArg &kw : e.kwargs) {
    if (kw.name != "params" || kw.value->kind != Expr::String)
      return fail(kw.loc, "a model call takes only params=\"prefix\"");
    callPrefix = kw.value->name;
  }
  if (e.args.size() != callee.args.size())
    return fail(e.loc, "model '" + callee.name + "' takes " +
                           std::to_string(callee.args.size()) +
                           " arguments, got " + std::to_string(e.args.size()));
  if (depth >= 64)
    return fail(e.loc, "model calls nest more than 64 deep");
  // An inout argument of the callee gets the current contents of this
  // model's buffer (or of its slice), and the buffer takes the callee's
  // contents back after the call.
  struct Binding {
    std::string callee, buffer;
    int64_t slice; // -1: the whole buffer
  };
  std::vector<Binding> bound;
  std::map<std::string, RefTensor> inputs;
  for (size_t i = 0; i < e.args.size(); ++i) {
    RefTensor t;
    if (callee.args[i].inout) {
      Binding b{callee.args[i].name, "", -1};
      if (!inoutSlice(*e.args[i], b.buffer, b.slice)) {
        if (!error.empty())
          return false; // a bad index, reported by inoutSlice
        return fail(e.args[i]->loc,
                    "argument '" + callee.args[i].name + "' of model '" +
                        callee.name +
                        "' is inout: pass an inout argument of this model, "
                        "or one slice of it (cache[i])");
      }
      const RefTensor &whole = buffers.at(b.buffer);
      if (b.slice < 0) {
        t = whole;
      } else {
        Shape shape(whole.shape.begin() + 1, whole.shape.end());
        const int64_t n = RefTensor::countElements(shape);
        t = RefTensor(
            shape,
            std::vector<double>(whole.data.begin() + b.slice * n,
                                whole.data.begin() + (b.slice + 1) * n),
            whole.dtype);
      }
      bound.push_back(b);
    } else if (!evalTensor(*e.args[i], t)) {
      return false;
    }
    inputs[callee.args[i].name] = std::move(t);
  }
  Interpreter sub(callee, prefix + callPrefix, depth + 1);
  std::vector<RefTensor> results;
  if (!sub.run(inputs, *weights, results))
    return fail(e.loc, "in the call of '" + callee.name + "' (params=\"" +
                           prefix + callPrefix + "\"): " + sub.error);
  for (const Binding &b : bound) {
    const RefTensor &written = sub.inoutBuffers().at(b.callee);
    RefTensor &whole = buffers.at(b.buffer);
    const int64_t n = written.numel();
    std::copy(written.data.begin(), written.data.end(),
              whole.data.begin() + std::max<int64_t>(b.slice, 0) * n);
  }
  for (RefTensor &r : results)
    out.push_back(Value::of(std::move(r)));
  return true;
}

// The inout argument (`name`) that `e` passes: the name itself (slice -1),
// or `name[i]` (an index on dim 0, every other dim whole; slice i, a
// negative i counting from the end).
bool Interpreter::inoutSlice(const Expr &e, std::string &name, int64_t &slice) {
  slice = -1;
  const Expr *n = &e;
  if (e.kind == Expr::Index) {
    if (e.args.size() != 1 || e.subscripts.empty() ||
        e.subscripts[0].kind != ast::Subscript::Index)
      return false;
    for (size_t k = 1; k < e.subscripts.size(); ++k)
      if (e.subscripts[k].kind != ast::Subscript::All &&
          e.subscripts[k].kind != ast::Subscript::Ellipsis)
        return false;
    n = e.args[0].get();
  }
  if (n->kind != Expr::Name || !buffers.count(n->name))
    return false;
  name = n->name;
  if (n == &e)
    return true;
  const RefTensor &whole = buffers.at(name);
  if (whole.shape.empty() || !e.subscripts[0].lo ||
      !foldInteger(*e.subscripts[0].lo, "a subscript bound", slice))
    return false;
  if (slice < 0)
    slice += whole.shape[0];
  if (slice < 0 || slice >= whole.shape[0])
    return fail(e.subscripts[0].loc, "index " + std::to_string(slice) +
                                         " is out of range for dim 0 of " +
                                         typeString(whole));
  return true;
}

} // namespace

bool evaluate(const ast::Model &m,
              const std::map<std::string, RefTensor> &inputs,
              const std::map<std::string, RefTensor> &weights,
              std::vector<RefTensor> &outputs, std::string &error,
              std::map<std::string, RefTensor> *inouts) {
  Interpreter interp(m);
  if (inouts)
    inouts->clear();
  if (!interp.run(inputs, weights, outputs)) {
    error = interp.error.empty() ? "model '" + m.name + "': malformed tree"
                                 : interp.error;
    outputs.clear();
    return false;
  }
  if (inouts)
    *inouts = interp.inoutBuffers();
  return true;
}

} // namespace attn
