//===- Sema.cpp - Name resolution and type checking of the attn AST -------===//
//
// Walks each model in order, resolving names and giving every expression its
// symbolic type (ast::Expr::types). Shapes are symbolic: a dim is a static
// size or a name, and two symbolic dims are equal iff their text is equal.
//
// Masks have no shape of their own. To check them against the scores they
// mask, every mask-valued expression carries a MaskInfo: the lengths shapes
// of the `padding(...)` terms and the bool tensors it was built from.
//
// After an error the statement is abandoned; names it would have defined are
// "poisoned" so that later uses do not report the same problem again.
//
//===----------------------------------------------------------------------===//
#include "attn/Frontend/Frontend.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <set>
#include <tuple>

namespace attn {
namespace {

using ast::Dim;
using ast::DType;
using ast::Expr;
using ast::KeywordArg;
using ast::Location;
using ast::ValueType;
using Dims = std::vector<Dim>;

//===----------------------------------------------------------------------===//
// Formatting and shape helpers
//===----------------------------------------------------------------------===//

std::string locStr(Location l) {
  return std::to_string(l.line) + ":" + std::to_string(l.col);
}

std::string dimsStr(const Dims &dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    s += (i ? ", " : "") + dims[i].str();
  return s + "]";
}

std::string numStr(double v) {
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

bool sameType(const ValueType &a, const ValueType &b) {
  return a.kind == b.kind && (a.kind == ValueType::Mask ||
                              (a.dtype == b.dtype && a.dims == b.dims));
}

ValueType f32(Dims dims) {
  return ValueType::tensor(DType::F32, std::move(dims));
}

/// NumPy broadcasting of two shapes; false if some pair of dims clashes.
bool broadcast(const Dims &a, const Dims &b, Dims &out) {
  size_t n = std::max(a.size(), b.size());
  out.assign(n, Dim());
  for (size_t i = 0; i < n; ++i) {
    const Dim *da = i < a.size() ? &a[a.size() - 1 - i] : nullptr;
    const Dim *db = i < b.size() ? &b[b.size() - 1 - i] : nullptr;
    Dim &d = out[n - 1 - i];
    if (!da || (da->isStatic() && da->size == 1 && db))
      d = *db;
    else if (!db || (db->isStatic() && db->size == 1) || *da == *db)
      d = *da;
    else
      return false;
    d.loc = {};
  }
  return true;
}

/// True if `from` broadcasts to exactly `to` (it never widens `to`).
bool broadcastsTo(const Dims &from, const Dims &to) {
  Dims out;
  return from.size() <= to.size() && broadcast(from, to, out) && out == to;
}

//===----------------------------------------------------------------------===//
// The built-in table
//===----------------------------------------------------------------------===//

class Checker;
using CallRule = bool (Checker::*)(Expr &, std::vector<ValueType> &);

struct Builtin {
  const char *name;
  unsigned minArgs, maxArgs; // positional
  int constArg;              // the positional argument that is a constant
  std::vector<const char *> keywords;
  const char *required; // a keyword that must be given, or nullptr
  CallRule rule;
};

/// What a mask value was built from (see the file comment).
struct MaskInfo {
  std::vector<Dims> paddings;     // lengths shapes
  std::vector<ValueType> tensors; // bool tensors

  void merge(const MaskInfo &o) {
    for (const Dims &d : o.paddings)
      if (std::find(paddings.begin(), paddings.end(), d) == paddings.end())
        paddings.push_back(d);
    for (const ValueType &t : o.tensors)
      addTensor(t);
  }
  void addTensor(const ValueType &t) {
    for (const ValueType &u : tensors)
      if (sameType(t, u))
        return;
    tensors.push_back(t);
  }
};

struct Value {
  ValueType type;
  Location loc;
  bool poisoned = false;
  MaskInfo mask;
  bool rebindable = false; // bound by a statement (not an argument or param)
  bool inout = false;      // an `inout` argument (a cache written in place)
};

class Checker {
public:
  Checker(SourceDiagnostics &diags) : diags(diags) {}
  void checkModel(ast::Model &m);

  // One rule per built-in family.
  bool checkLinear(Expr &e, std::vector<ValueType> &a);
  bool checkMatmul(Expr &e, std::vector<ValueType> &a);
  bool checkTranspose(Expr &e, std::vector<ValueType> &a);
  bool checkSplitHeads(Expr &e, std::vector<ValueType> &a);
  bool checkMergeHeads(Expr &e, std::vector<ValueType> &a);
  bool checkSplit(Expr &e, std::vector<ValueType> &a);
  bool checkConcat(Expr &e, std::vector<ValueType> &a);
  bool checkSoftmax(Expr &e, std::vector<ValueType> &a);
  bool checkAttention(Expr &e, std::vector<ValueType> &a);
  bool checkNorm(Expr &e, std::vector<ValueType> &a);
  bool checkElementwise(Expr &e, std::vector<ValueType> &a);
  bool checkRope(Expr &e, std::vector<ValueType> &a);
  bool checkMaskCall(Expr &e, std::vector<ValueType> &a);
  bool checkMath(Expr &e, std::vector<ValueType> &a);
  bool checkMinMax(Expr &e, std::vector<ValueType> &a);
  bool checkReduce(Expr &e, std::vector<ValueType> &a);
  bool checkWhere(Expr &e, std::vector<ValueType> &a);
  bool checkMeanPool(Expr &e, std::vector<ValueType> &a);
  bool checkL2Normalize(Expr &e, std::vector<ValueType> &a);
  bool checkEmbedding(Expr &e, std::vector<ValueType> &a);
  bool checkArange(Expr &e, std::vector<ValueType> &a);
  bool checkCacheWrite(Expr &e, std::vector<ValueType> &a);
  bool checkUnsqueeze(Expr &e, std::vector<ValueType> &a);

  /// The models that calls may name (this file's and imported ones), and
  /// which of them failed their own checks.
  std::map<std::string, const ast::Model *> callable;
  std::set<std::string> broken;

private:
  /// Reports `msg` at `loc` once: the statements of an unrolled loop share
  /// their source locations, and each copy would repeat the error.
  bool error(Location loc, const std::string &msg) {
    if (reported.insert({loc.line, loc.col, msg}).second)
      diags.error(loc, msg);
    return false;
  }
  std::set<std::tuple<unsigned, unsigned, std::string>> reported;

  // Declarations.
  bool checkType(const ast::TensorType &t);
  bool define(const std::string &name, Location loc, Value v,
              bool inLoop = false);
  void checkStmt(ast::Stmt &s);
  void checkReturn(ast::Stmt &s);

  // Expressions.
  bool check(Expr &e);
  bool operand(Expr &e, ValueType &t);
  bool checkName(Expr &e);
  bool checkBinary(Expr &e);
  bool checkCall(Expr &e);
  bool checkIndex(Expr &e);
  bool checkModelCall(Expr &e, const ast::Model &callee);
  bool bindParam(const ast::BoundParam &p, Location at);

  // Call arguments.
  bool floatArg(const Expr &call, std::vector<ValueType> &a, size_t i,
                const char *what, size_t rank = 0, bool exact = false,
                const char *layout = nullptr);
  bool requireNumber(const Expr &at, const ValueType &t, const std::string &op);
  bool requireFloat(const Expr &at, const ValueType &t, const std::string &fn,
                    const std::string &what);
  KeywordArg *keyword(Expr &call, const char *name);
  int fold(Expr &e, double &v);
  bool constant(Expr &e, const std::string &what, double &v);
  bool constInt(Expr &e, const std::string &what, int64_t min, int64_t max,
                int64_t &v);
  bool maskArg(Expr &call, Expr &value, const Dims &scores);

  SourceDiagnostics &diags;
  ast::Model *model = nullptr;
  std::set<std::string> sizes;
  std::map<std::string, Value> values;
  std::map<std::string, Location> definitions; // every name the model binds
  std::map<const Expr *, MaskInfo> masks;      // of mask-valued expressions
  std::map<std::string, Location> written;     // inout args: where written
  std::set<size_t> badResults;                 // result types with errors
  /// The inout argument that `e` names, directly or as `cache[i]` (an index
  /// on dim 0), or null.
  const Value *inoutOf(const Expr &e, std::string *name = nullptr);
  bool claimWrite(const std::string &name, Location at);
};

const std::vector<Builtin> &builtins() {
  static const std::vector<Builtin> table = {
      {"linear", 2, 3, -1, {}, nullptr, &Checker::checkLinear},
      {"matmul", 2, 2, -1, {}, nullptr, &Checker::checkMatmul},
      {"transpose", 1, 1, -1, {}, nullptr, &Checker::checkTranspose},
      {"split_heads", 1, 1, -1, {"heads"}, "heads", &Checker::checkSplitHeads},
      {"merge_heads", 1, 1, -1, {}, nullptr, &Checker::checkMergeHeads},
      {"split", 1, 2, 1, {"n"}, nullptr, &Checker::checkSplit},
      {"concat", 2, 2, -1, {"axis"}, nullptr, &Checker::checkConcat},
      {"softmax", 1, 1, -1, {"mask"}, nullptr, &Checker::checkSoftmax},
      {"attention",
       3,
       3,
       -1,
       {"mask", "bias", "scale"},
       nullptr,
       &Checker::checkAttention},
      {"layer_norm", 3, 3, -1, {"eps"}, nullptr, &Checker::checkNorm},
      {"rms_norm", 2, 2, -1, {"eps"}, nullptr, &Checker::checkNorm},
      {"gelu", 1, 1, -1, {}, nullptr, &Checker::checkElementwise},
      {"gelu_tanh", 1, 1, -1, {}, nullptr, &Checker::checkElementwise},
      {"silu", 1, 1, -1, {}, nullptr, &Checker::checkElementwise},
      {"relu", 1, 1, -1, {}, nullptr, &Checker::checkElementwise},
      {"rope", 2, 2, -1, {"theta", "style"}, nullptr, &Checker::checkRope},
      {"causal", 0, 1, -1, {}, nullptr, &Checker::checkMaskCall},
      {"sliding_window", 1, 1, 0, {}, nullptr, &Checker::checkMaskCall},
      {"padding", 1, 1, -1, {}, nullptr, &Checker::checkMaskCall},
      {"exp", 1, 1, -1, {}, nullptr, &Checker::checkMath},
      {"log", 1, 1, -1, {}, nullptr, &Checker::checkMath},
      {"sqrt", 1, 1, -1, {}, nullptr, &Checker::checkMath},
      {"rsqrt", 1, 1, -1, {}, nullptr, &Checker::checkMath},
      {"tanh", 1, 1, -1, {}, nullptr, &Checker::checkMath},
      {"sigmoid", 1, 1, -1, {}, nullptr, &Checker::checkMath},
      {"abs", 1, 1, -1, {}, nullptr, &Checker::checkMath},
      {"min", 1, 2, -1, {"dim", "keepdim"}, nullptr, &Checker::checkMinMax},
      {"max", 1, 2, -1, {"dim", "keepdim"}, nullptr, &Checker::checkMinMax},
      {"sum", 1, 1, -1, {"dim", "keepdim"}, "dim", &Checker::checkReduce},
      {"mean", 1, 1, -1, {"dim", "keepdim"}, "dim", &Checker::checkReduce},
      {"where", 3, 3, -1, {}, nullptr, &Checker::checkWhere},
      {"mean_pool", 2, 2, -1, {}, nullptr, &Checker::checkMeanPool},
      {"l2_normalize", 1, 1, -1, {"eps"}, nullptr,
       &Checker::checkL2Normalize},
      {"embedding", 2, 2, -1, {}, nullptr, &Checker::checkEmbedding},
      {"arange", 1, 1, 0, {}, nullptr, &Checker::checkArange},
      {"cache_write", 3, 3, -1, {}, nullptr, &Checker::checkCacheWrite},
      {"unsqueeze", 1, 1, -1, {"dim"}, "dim", &Checker::checkUnsqueeze},
  };
  return table;
}

const Builtin *findBuiltin(const std::string &name) {
  for (const Builtin &b : builtins())
    if (name == b.name)
      return &b;
  return nullptr;
}

size_t editDistance(const std::string &a, const std::string &b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min(
          {row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

//===----------------------------------------------------------------------===//
// Models and statements
//===----------------------------------------------------------------------===//

bool Checker::checkType(const ast::TensorType &t) {
  bool ok = true;
  if (t.dims.size() > kMaxRank)
    ok = error(t.loc, "rank " + std::to_string(t.dims.size()) + " is above " +
                          std::to_string(kMaxRank) +
                          ", the most the runtime accepts for a model's "
                          "inputs, params and outputs");
  for (const Dim &d : t.dims) {
    if (d.isStatic())
      continue;
    // A name, or a sum of names and integers (`T+1`).
    size_t from = 0;
    while (from <= d.sym.size()) {
      size_t to = d.sym.find('+', from);
      std::string term =
          d.sym.substr(from, to == std::string::npos ? to : to - from);
      bool number = !term.empty() && std::isdigit((unsigned char)term[0]);
      if (!number && !sizes.count(term)) {
        ok = error(d.loc, "unknown size '" + term +
                              "'; declare it in the model's <...> list");
        break;
      }
      if (to == std::string::npos)
        break;
      from = to + 1;
    }
  }
  return ok;
}

bool Checker::define(const std::string &name, Location loc, Value v,
                     bool inLoop) {
  auto it = values.find(name);
  if (it != values.end() && inLoop && it->second.rebindable) {
    v.loc = loc;
    it->second = std::move(v);
    return true;
  }
  if (it != values.end())
    return error(loc, "'" + name + "' is already defined at " +
                          locStr(it->second.loc) +
                          (inLoop ? " (a loop body may rebind only names "
                                    "bound by statements)"
                                  : ""));
  v.loc = loc;
  values.emplace(name, std::move(v));
  return true;
}

void Checker::checkModel(ast::Model &m) {
  model = &m;
  m.calleeParams.clear();
  written.clear();
  sizes.clear();
  values.clear();
  definitions.clear();
  masks.clear();

  std::map<std::string, Location> sizeLocs;
  for (size_t i = 0; i < m.syms.size(); ++i) {
    Location loc = i < m.symLocs.size() ? m.symLocs[i] : m.loc;
    auto [it, fresh] = sizeLocs.emplace(m.syms[i], loc);
    if (!fresh)
      error(loc, "size '" + m.syms[i] + "' is already declared at " +
                     locStr(it->second));
    sizes.insert(m.syms[i]);
  }
  for (const ast::Arg &a : m.args) {
    bool ok = checkType(a.type);
    Value v;
    v.type = ValueType::tensor(a.type.dtype, a.type.dims);
    v.poisoned = !ok;
    v.inout = a.inout;
    define(a.name, a.loc, v);
  }
  badResults.clear();
  for (size_t i = 0; i < m.results.size(); ++i)
    if (!checkType(m.results[i]))
      badResults.insert(i); // reported; the return is not checked against it

  for (const ast::Stmt &s : m.body)
    for (size_t i = 0; i < s.nameLocs.size() && i < s.names.size(); ++i)
      definitions.emplace(s.names[i], s.nameLocs[i]);

  bool returned = false;
  for (size_t i = 0; i < m.body.size(); ++i) {
    ast::Stmt &s = m.body[i];
    if (s.kind == ast::Stmt::Return) {
      if (i + 1 != m.body.size()) {
        error(s.loc,
              "'return' must be the last statement of model '" + m.name + "'");
        return;
      }
      returned = true;
    }
    checkStmt(s);
  }
  if (!returned)
    error(m.end.line ? m.end : m.loc,
          "model '" + m.name + "' must end with a 'return' statement");
}

void Checker::checkStmt(ast::Stmt &s) {
  switch (s.kind) {
  case ast::Stmt::Param: {
    Value v;
    v.type = ValueType::tensor(s.type.dtype, s.type.dims);
    v.poisoned = !checkType(s.type);
    Location loc = s.nameLocs.empty() ? s.loc : s.nameLocs[0];
    define(s.name, loc, v);
    return;
  }
  case ast::Stmt::Return:
    checkReturn(s);
    return;
  case ast::Stmt::Bind:
    break;
  }

  // A binding: `a, b = expr`.
  bool ok = s.exprs.size() == 1 && check(*s.exprs[0]);
  Expr *e = ok ? s.exprs[0].get() : nullptr;
  if (ok && e->types.size() != s.names.size()) {
    std::string what = e->kind == Expr::Call ? e->name : "the expression";
    size_t n = e->types.size();
    error(e->loc, what + " returns " + std::to_string(n) +
                      (n == 1 ? " value" : " values") + " but " +
                      std::to_string(s.names.size()) + " names are bound");
    ok = false;
  }
  for (size_t i = 0; i < s.names.size(); ++i) {
    Value v;
    v.poisoned = !ok;
    v.rebindable = true; // a loop body may rebind it

    if (ok) {
      v.type = e->types[i];
      if (v.type.kind == ValueType::Mask)
        v.mask = masks[e];
    }
    define(s.names[i], i < s.nameLocs.size() ? s.nameLocs[i] : s.loc, v,
           s.inLoop);
  }
}

void Checker::checkReturn(ast::Stmt &s) {
  const std::string &name = model->name;
  if (s.exprs.size() != model->results.size()) {
    size_t n = model->results.size();
    error(s.loc, "'return' gives " + std::to_string(s.exprs.size()) +
                     (s.exprs.size() == 1 ? " value" : " values") +
                     " but model '" + name + "' declares " + std::to_string(n) +
                     (n == 1 ? " result" : " results"));
    return;
  }
  for (size_t i = 0; i < s.exprs.size(); ++i) {
    ValueType t;
    if (!operand(*s.exprs[i], t) || badResults.count(i))
      continue;
    const ast::TensorType &want = model->results[i];
    bool dtypeOk = t.kind == ValueType::Tensor &&
                   (t.dtype == want.dtype ||
                    (ast::isFloat(t.dtype) && ast::isFloat(want.dtype)));
    if (dtypeOk && t.dims == want.dims)
      continue;
    std::string which = s.exprs.size() == 1
                            ? "the returned value"
                            : "returned value " + std::to_string(i + 1);
    error(s.exprs[i]->loc, which + " is " + t.str() + " but model '" + name +
                               "' declares " + dtypeName(want.dtype) +
                               dimsStr(want.dims));
  }
}

//===----------------------------------------------------------------------===//
// Expressions
//===----------------------------------------------------------------------===//

bool Checker::check(Expr &e) {
  e.types.clear();
  switch (e.kind) {
  case Expr::Number:
    e.types = {f32({})};
    return true;
  case Expr::String:
    return error(e.loc, "a string is only allowed as the value of style=");
  case Expr::Name:
    return checkName(e);
  case Expr::Neg: {
    ValueType t;
    if (e.args.size() != 1 || !operand(*e.args[0], t) ||
        !requireNumber(*e.args[0], t, "'-'"))
      return false;
    e.types = {ValueType::tensor(
        t.dtype == DType::I32 ? DType::I32 : DType::F32, t.dims)};
    return true;
  }
  case Expr::Not: {
    ValueType t;
    if (e.args.size() != 1 || !operand(*e.args[0], t))
      return false;
    if (t.kind == ValueType::Mask || t.dtype != DType::Bool)
      return error(e.args[0]->loc, "'!' expects a bool tensor, got " + t.str());
    e.types = {t};
    return true;
  }
  case Expr::Binary:
    return checkBinary(e);
  case Expr::Call:
    return checkCall(e);
  case Expr::Index:
    return checkIndex(e);
  }
  return false;
}

/// Checks `e` and requires exactly one result.
bool Checker::operand(Expr &e, ValueType &t) {
  if (!check(e))
    return false;
  if (e.types.size() != 1) {
    size_t n = e.types.size();
    std::string names;
    for (size_t i = 0; i < n && i < 3; ++i)
      names += std::string(i ? ", " : "") + char('a' + i);
    if (n > 3)
      names += ", ...";
    return error(e.loc, e.name + " returns " + std::to_string(n) +
                            " values; bind them to names first (" + names +
                            " = " + e.name + "(...))");
  }
  t = e.types[0];
  return true;
}

bool Checker::checkName(Expr &e) {
  auto it = values.find(e.name);
  if (it != values.end()) {
    if (it->second.poisoned)
      return false;
    e.types = {it->second.type};
    if (it->second.type.kind == ValueType::Mask)
      masks[&e] = it->second.mask;
    return true;
  }
  if (e.name == "causal") {
    e.types = {ValueType::mask()};
    masks[&e] = {};
    return true;
  }
  auto later = definitions.find(e.name);
  if (later != definitions.end())
    return error(e.loc, "'" + e.name + "' is used before its definition at " +
                            locStr(later->second));
  if (findBuiltin(e.name))
    return error(e.loc, "'" + e.name + "' is a function; call it as " + e.name +
                            "(...)");
  if (sizes.count(e.name))
    return error(e.loc, "'" + e.name +
                            "' is a size, not a value; sizes can only appear "
                            "in types");
  return error(e.loc, "unknown name '" + e.name + "'");
}

/// An integer literal, or the negation of one (`1`, `-2`).
static bool isIntLiteral(const Expr &e) {
  if (e.kind == Expr::Neg)
    return e.args.size() == 1 && isIntLiteral(*e.args[0]);
  return e.kind == Expr::Number && e.isInteger;
}

/// Types an integer literal (and its negations) i32: it meets an i32 operand.
static void typeIntLiteral(Expr &e) {
  e.types = {ValueType::tensor(DType::I32, {})};
  if (e.kind == Expr::Neg)
    typeIntLiteral(*e.args[0]);
}

bool Checker::checkBinary(Expr &e) {
  if (e.args.size() != 2)
    return false;
  ValueType l, r;
  if (!operand(*e.args[0], l) || !operand(*e.args[1], r))
    return false;
  std::string op = std::string("'") + ast::opName(e.op) + "'";
  Dims dims;
  if (e.op == '|') {
    for (int i = 0; i < 2; ++i) {
      const ValueType &t = i ? r : l;
      if (t.kind == ValueType::Mask)
        return error(e.args[i]->loc,
                     "'|' of masks is not supported; build a bool tensor "
                     "(comparisons of arange(...) positions) instead");
      if (t.dtype != DType::Bool)
        return error(e.args[i]->loc,
                     "'|' expects bool tensors, got " + t.str());
    }
    if (!broadcast(l.dims, r.dims, dims))
      return error(e.loc, "cannot broadcast " + l.str() + " with " + r.str());
    e.types = {ValueType::tensor(DType::Bool, dims)};
    return true;
  }
  if (e.op != '&') {
    if (!requireNumber(*e.args[0], l, op) || !requireNumber(*e.args[1], r, op))
      return false;
    if (!broadcast(l.dims, r.dims, dims))
      return error(e.loc, "cannot broadcast " + l.str() + " with " + r.str());
    // NumPy's promotion: i32 with i32 (or with an integer literal, which
    // takes the other side's type: `pos + 1`) stays i32 for + - *; a float
    // side makes it f32; / is true division, f32 (MLIRGen casts).
    bool intLit[2] = {isIntLiteral(*e.args[0]), isIntLiteral(*e.args[1])};
    bool isInt[2] = {l.dtype == DType::I32, r.dtype == DType::I32};
    bool integral = (isInt[0] || isInt[1]) && (isInt[0] || intLit[0]) &&
                    (isInt[1] || intLit[1]);
    if (integral && e.op != '/') {
      for (int i = 0; i < 2; ++i)
        if (intLit[i])
          typeIntLiteral(*e.args[i]);
      e.types = {ValueType::tensor(DType::I32, dims)};
    } else {
      e.types = {f32(dims)};
    }
    // A comparison computes in that type and gives bool (MLIRGen casts).
    if (ast::isComparison(e.op))
      e.types[0].dtype = DType::Bool;
    return true;
  }

  // `&`: mask & mask and mask & bool tensor give a mask; bool & bool gives
  // a bool tensor.
  const ValueType *sides[] = {&l, &r};
  for (int i = 0; i < 2; ++i) {
    const ValueType &t = *sides[i];
    if (t.kind == ValueType::Tensor && t.dtype != DType::Bool)
      return error(e.args[i]->loc,
                   "'&' expects masks or bool tensors, got " + t.str());
  }
  if (l.kind == ValueType::Tensor && r.kind == ValueType::Tensor) {
    if (!broadcast(l.dims, r.dims, dims))
      return error(e.loc, "cannot broadcast " + l.str() + " with " + r.str());
    e.types = {ValueType::tensor(DType::Bool, dims)};
    return true;
  }
  MaskInfo info;
  for (int i = 0; i < 2; ++i) {
    if (sides[i]->kind == ValueType::Mask)
      info.merge(masks[e.args[i].get()]);
    else
      info.addTensor(*sides[i]);
  }
  masks[&e] = std::move(info);
  e.types = {ValueType::mask()};
  return true;
}

bool Checker::checkCall(Expr &e) {
  const Builtin *b = findBuiltin(e.name);
  if (!b) {
    auto callee = callable.find(e.name);
    if (callee != callable.end())
      return checkModelCall(e, *callee->second);
    if (values.count(e.name))
      return error(e.loc, "'" + e.name + "' is a value, not a function");
    std::string best;
    size_t bestDist = 3;
    auto consider = [&](const std::string &c) {
      size_t d = editDistance(e.name, c);
      if (d < bestDist) {
        bestDist = d;
        best = c;
      }
    };
    for (const Builtin &c : builtins())
      consider(c.name);
    for (const auto &m : callable)
      consider(m.first);
    return error(e.loc,
                 "unknown function '" + e.name + "'" +
                     (best.empty() ? "" : "; did you mean '" + best + "'?"));
  }

  // Arity.
  size_t n = e.args.size();
  if (n < b->minArgs || n > b->maxArgs) {
    std::string expects;
    if (b->maxArgs == 0)
      expects = "no positional arguments";
    else if (b->minArgs == b->maxArgs)
      expects = std::to_string(b->minArgs) + " positional argument" +
                (b->minArgs == 1 ? "" : "s");
    else
      expects = std::to_string(b->minArgs) +
                (b->maxArgs == b->minArgs + 1 ? " or " : " to ") +
                std::to_string(b->maxArgs) + " positional arguments";
    Location at = n > b->maxArgs ? e.args[b->maxArgs]->loc : e.loc;
    return error(at,
                 e.name + " expects " + expects + ", got " + std::to_string(n));
  }

  // Keyword names.
  for (size_t i = 0; i < e.kwargs.size(); ++i) {
    const KeywordArg &kw = e.kwargs[i];
    bool known = false;
    std::string valid;
    for (const char *k : b->keywords) {
      known |= kw.name == k;
      valid += (valid.empty() ? "" : ", ") + std::string(k);
    }
    if (!known)
      return error(kw.loc, e.name + " has no keyword '" + kw.name + "'" +
                               (valid.empty() ? "; it takes no keywords"
                                              : "; valid keywords: " + valid));
    for (size_t j = 0; j < i; ++j)
      if (e.kwargs[j].name == kw.name)
        return error(kw.loc, "duplicate keyword '" + kw.name +
                                 "' (first given at " +
                                 locStr(e.kwargs[j].loc) + ")");
  }
  if (b->required && !keyword(e, b->required))
    return error(e.loc, e.name + " needs " + b->required + "=");

  // Positional operands; a constant argument is left to the rule.
  std::vector<ValueType> args(n);
  for (size_t i = 0; i < n; ++i)
    if (int(i) != b->constArg && !operand(*e.args[i], args[i]))
      return false;
  return (this->*b->rule)(e, args);
}

//===----------------------------------------------------------------------===//
// Argument helpers
//===----------------------------------------------------------------------===//

/// Operands of + - * / and unary -: float or i32 tensors.
bool Checker::requireNumber(const Expr &at, const ValueType &t,
                            const std::string &op) {
  if (t.kind == ValueType::Mask)
    return error(at.loc, op + " expects a float or i32 operand, got a mask "
                              "(masks are only allowed as mask= and in '&')");
  if (!ast::isFloat(t.dtype) && t.dtype != DType::I32)
    return error(at.loc,
                 op + " expects a float or i32 operand, got " + t.str());
  return true;
}

bool Checker::requireFloat(const Expr &at, const ValueType &t,
                           const std::string &fn, const std::string &what) {
  if (t.kind == ValueType::Mask)
    return error(at.loc, fn + " expects a float " + what +
                             ", got a mask (masks are only allowed as mask= "
                             "and in '&')");
  if (!ast::isFloat(t.dtype))
    return error(at.loc, fn + " expects a float " + what + ", got " + t.str());
  return true;
}

/// Positional argument `i` must be a float tensor; with `rank`, of exactly
/// that rank (`exact`) or at least that rank.
bool Checker::floatArg(const Expr &call, std::vector<ValueType> &a, size_t i,
                       const char *what, size_t rank, bool exact,
                       const char *layout) {
  const Expr &arg = *call.args[i];
  if (!requireFloat(arg, a[i], call.name, what))
    return false;
  size_t r = a[i].dims.size();
  if (exact && r != rank)
    return error(arg.loc, call.name + " expects " + what + " of rank " +
                              std::to_string(rank) +
                              (layout ? std::string(" (") + layout + ")" : "") +
                              ", got " + a[i].str());
  if (!exact && r < rank)
    return error(arg.loc, call.name + " expects " + what + " of rank >= " +
                              std::to_string(rank) + ", got " + a[i].str());
  return true;
}

KeywordArg *Checker::keyword(Expr &call, const char *name) {
  for (KeywordArg &kw : call.kwargs)
    if (kw.name == name)
      return &kw;
  return nullptr;
}

/// Folds numbers, unary minus and + - * /. Returns 1 with the value, 0 if
/// `e` is not a constant, -1 after reporting an error.
int Checker::fold(Expr &e, double &v) {
  switch (e.kind) {
  case Expr::Number:
    v = e.number;
    break;
  case Expr::Neg: {
    if (e.args.size() != 1)
      return 0;
    int r = fold(*e.args[0], v);
    if (r != 1)
      return r;
    v = -v;
    break;
  }
  case Expr::Binary: {
    double l, r;
    if (e.op == '&' || e.args.size() != 2)
      return 0;
    int rl = fold(*e.args[0], l);
    if (rl != 1)
      return rl;
    int rr = fold(*e.args[1], r);
    if (rr != 1)
      return rr;
    if (e.op == '/' && r == 0) {
      error(e.loc, "division by zero in a constant");
      return -1;
    }
    v = e.op == '+' ? l + r : e.op == '-' ? l - r : e.op == '*' ? l * r : l / r;
    if (!std::isfinite(v)) {
      error(e.loc, "constant is out of range");
      return -1;
    }
    break;
  }
  default:
    return 0;
  }
  e.types = {f32({})};
  e.isConstant = true;
  e.constant = v;
  return 1;
}

bool Checker::constant(Expr &e, const std::string &what, double &v) {
  if (e.kind == Expr::String)
    return error(e.loc, what + " must be a constant number, got a string");
  int r = fold(e, v);
  if (r == 0)
    return error(e.loc, what + " must be a constant number");
  return r == 1;
}

bool Checker::constInt(Expr &e, const std::string &what, int64_t min,
                       int64_t max, int64_t &v) {
  double d;
  if (!constant(e, what, d))
    return false;
  if (d != std::floor(d))
    return error(e.loc, what + " must be an integer, got " + numStr(d));
  if (d < double(min))
    return error(e.loc, what + " must be >= " + std::to_string(min) + ", got " +
                            numStr(d));
  if (d > double(max))
    return error(e.loc, what + " must be <= " + std::to_string(max) + ", got " +
                            numStr(d));
  v = static_cast<int64_t>(d);
  return true;
}

/// Checks a `mask=` value against the shape of the scores it masks.
bool Checker::maskArg(Expr &call, Expr &value, const Dims &scores) {
  ValueType t;
  if (!operand(value, t))
    return false;
  const std::string &fn = call.name;
  MaskInfo info;
  if (t.kind == ValueType::Mask)
    info = masks[&value];
  else if (t.dtype == DType::Bool)
    info.addTensor(t);
  else
    return error(value.loc, fn +
                                " expects mask= to be a mask or a bool "
                                "tensor, got " +
                                t.str());
  for (const Dims &lengths : info.paddings) {
    if (scores.size() < 3)
      return error(value.loc, fn +
                                  ": a padding mask needs scores of rank >= 3 "
                                  "([B, ..., Sq, Sk]), got " +
                                  dimsStr(scores));
    if (lengths.empty() || lengths[0] != scores[0])
      return error(value.loc, fn + ": padding lengths are i32" +
                                  dimsStr(lengths) + " but the scores are " +
                                  dimsStr(scores) + "; lengths must be [" +
                                  scores[0].str() + "]");
  }
  for (const ValueType &b : info.tensors)
    if (!broadcastsTo(b.dims, scores))
      return error(value.loc, fn + ": the mask " + b.str() +
                                  " does not broadcast to the scores " +
                                  dimsStr(scores));
  return true;
}

//===----------------------------------------------------------------------===//
// Built-in rules
//===----------------------------------------------------------------------===//

bool Checker::checkLinear(Expr &e, std::vector<ValueType> &a) {
  if (!floatArg(e, a, 0, "x", 1) ||
      !floatArg(e, a, 1, "w", 2, true, "[out, in]") ||
      (a.size() == 3 && !floatArg(e, a, 2, "b", 1, true, "[out]")))
    return false;
  const Dims &x = a[0].dims, &w = a[1].dims;
  if (x.back() != w[1])
    return error(e.loc, "linear: x is " + a[0].str() + " but w is " +
                            a[1].str() +
                            "; the last dim of x must equal w's dim 1 (" +
                            w[1].str() + ")");
  if (a.size() == 3 && a[2].dims[0] != w[0])
    return error(e.loc, "linear: b is " + a[2].str() + " but w is " +
                            a[1].str() + "; b must be [" + w[0].str() +
                            "] (w's dim 0)");
  Dims out(x.begin(), x.end() - 1);
  out.push_back(w[0]);
  e.types = {f32(out)};
  return true;
}

bool Checker::checkMatmul(Expr &e, std::vector<ValueType> &a) {
  if (!floatArg(e, a, 0, "a", 2) || !floatArg(e, a, 1, "b", 2))
    return false;
  const Dims &x = a[0].dims, &y = a[1].dims;
  if (x.back() != y[y.size() - 2])
    return error(e.loc, "matmul: a is " + a[0].str() + " but b is " +
                            a[1].str() +
                            "; the last dim of a must equal the "
                            "second-to-last dim of b");
  Dims batch;
  if (!broadcast(Dims(x.begin(), x.end() - 2), Dims(y.begin(), y.end() - 2),
                 batch))
    return error(e.loc, "matmul: cannot broadcast the batch dims of a " +
                            a[0].str() + " and b " + a[1].str());
  batch.push_back(x[x.size() - 2]);
  batch.push_back(y.back());
  e.types = {f32(batch)};
  return true;
}

bool Checker::checkTranspose(Expr &e, std::vector<ValueType> &a) {
  if (!floatArg(e, a, 0, "x", 2))
    return false;
  Dims d = a[0].dims;
  std::swap(d[d.size() - 1], d[d.size() - 2]);
  e.types = {f32(d)};
  return true;
}

bool Checker::checkSplitHeads(Expr &e, std::vector<ValueType> &a) {
  int64_t heads;
  if (!floatArg(e, a, 0, "x", 3, true, "[B, S, E]") ||
      !constInt(*keyword(e, "heads")->value, "heads", 1, INT32_MAX, heads))
    return false;
  const Dims &x = a[0].dims;
  if (!x[2].isStatic())
    return error(e.loc,
                 "split_heads needs a static last dim, got " + a[0].str());
  if (x[2].size % heads != 0)
    return error(e.loc, "heads=" + std::to_string(heads) + " does not divide " +
                            x[2].str());
  e.types = {
      f32({x[0], Dim::fixed(heads), x[1], Dim::fixed(x[2].size / heads)})};
  return true;
}

bool Checker::checkMergeHeads(Expr &e, std::vector<ValueType> &a) {
  if (!floatArg(e, a, 0, "x", 4, true, "[B, H, S, D]"))
    return false;
  const Dims &x = a[0].dims;
  if (!x[1].isStatic() || !x[3].isStatic())
    return error(e.loc, "merge_heads needs static heads and head dims "
                        "(dims 1 and 3), got " +
                            a[0].str());
  e.types = {f32({x[0], x[2], Dim::fixed(x[1].size * x[3].size)})};
  return true;
}

bool Checker::checkSplit(Expr &e, std::vector<ValueType> &a) {
  KeywordArg *kw = keyword(e, "n");
  if (kw && e.args.size() == 2)
    return error(kw->loc, "split: n is given twice, as the second positional "
                          "argument and as n=");
  if (!kw && e.args.size() < 2)
    return error(e.loc, "split needs n= (or n as the second positional "
                        "argument)");
  int64_t n;
  if (!floatArg(e, a, 0, "x", 1) ||
      !constInt(kw ? *kw->value : *e.args[1], "n", 1, 1024, n))
    return false;
  const Dims &x = a[0].dims;
  if (!x.back().isStatic())
    return error(e.loc, "split needs a static last dim, got " + a[0].str());
  if (x.back().size % n != 0)
    return error(e.loc, "n=" + std::to_string(n) + " does not divide " +
                            x.back().str());
  Dims d = x;
  d.back() = Dim::fixed(x.back().size / n);
  e.types.assign(size_t(n), f32(d));
  return true;
}

bool Checker::checkConcat(Expr &e, std::vector<ValueType> &a) {
  if (!floatArg(e, a, 0, "a", 1) || !floatArg(e, a, 1, "b", 1))
    return false;
  const Dims &x = a[0].dims, &y = a[1].dims;
  if (x.size() != y.size())
    return error(e.loc, "concat: a is " + a[0].str() + " and b is " +
                            a[1].str() + "; they must have the same rank");
  int64_t axis = -1, rank = int64_t(x.size());
  if (KeywordArg *kw = keyword(e, "axis")) {
    if (!constInt(*kw->value, "axis", INT32_MIN, INT32_MAX, axis))
      return false;
    if (axis < -rank || axis >= rank)
      return error(kw->value->loc, "axis=" + std::to_string(axis) +
                                       " is out of range for rank " +
                                       std::to_string(rank));
  }
  size_t ax = size_t(axis < 0 ? axis + rank : axis);
  for (size_t i = 0; i < x.size(); ++i)
    if (i != ax && x[i] != y[i])
      return error(e.loc, "concat: a is " + a[0].str() + " but b is " +
                              a[1].str() + "; all dims except axis " +
                              std::to_string(axis) + " must be equal");
  Dims out = x;
  out[ax] = x[ax].isStatic() && y[ax].isStatic()
                ? Dim::fixed(x[ax].size + y[ax].size)
                : Dim::symbol(x[ax].str() + "+" + y[ax].str());
  e.types = {f32(out)};
  return true;
}

bool Checker::checkSoftmax(Expr &e, std::vector<ValueType> &a) {
  KeywordArg *mask = keyword(e, "mask");
  if (!floatArg(e, a, 0, "x", mask ? 2 : 0))
    return false;
  if (mask && !maskArg(e, *mask->value, a[0].dims))
    return false;
  e.types = {f32(a[0].dims)};
  return true;
}

bool Checker::checkAttention(Expr &e, std::vector<ValueType> &a) {
  const char *layout = "[B, H, S, D]";
  if (!floatArg(e, a, 0, "q", 4, true, layout) ||
      !floatArg(e, a, 1, "k", 4, true, layout) ||
      !floatArg(e, a, 2, "v", 4, true, layout))
    return false;
  const Dims &q = a[0].dims, &k = a[1].dims, &v = a[2].dims;
  auto mismatch = [&](const char *x, const char *y, const ValueType &tx,
                      const ValueType &ty, const char *what) {
    return error(e.loc, std::string("attention: ") + x + " is " + tx.str() +
                            " but " + y + " is " + ty.str() +
                            "; they must have the same " + what);
  };
  if (q[0] != k[0])
    return mismatch("q", "k", a[0], a[1], "batch size (dim 0)");
  if (q[3] != k[3])
    return mismatch("q", "k", a[0], a[1], "head dim (dim 3)");
  static const char *kvDims[] = {"batch size (dim 0)",
                                 "number of heads (dim 1)", "length (dim 2)"};
  for (int i = 0; i < 3; ++i)
    if (k[i] != v[i])
      return mismatch("k", "v", a[1], a[2], kvDims[i]);
  if (!q[1].isStatic() || !k[1].isStatic())
    return error(e.loc, "attention needs static head counts, got q " +
                            a[0].str() + " and k " + a[1].str());
  if (q[1].size % k[1].size != 0)
    return error(e.loc, "Hq=" + q[1].str() +
                            " is not a multiple of Hkv=" + k[1].str());
  Dims scores = {q[0], q[1], q[2], k[2]};
  if (KeywordArg *kw = keyword(e, "scale")) {
    double s;
    if (!constant(*kw->value, "scale", s))
      return false;
  }
  if (KeywordArg *kw = keyword(e, "bias")) {
    ValueType b;
    if (!operand(*kw->value, b) ||
        !requireFloat(*kw->value, b, "attention", "bias"))
      return false;
    if (!broadcastsTo(b.dims, scores))
      return error(kw->value->loc, "attention: bias " + b.str() +
                                       " does not broadcast to the scores " +
                                       dimsStr(scores));
  }
  if (KeywordArg *kw = keyword(e, "mask"))
    if (!maskArg(e, *kw->value, scores))
      return false;
  e.types = {f32({q[0], q[1], q[2], v[3]})};
  return true;
}

bool Checker::checkNorm(Expr &e, std::vector<ValueType> &a) {
  if (!floatArg(e, a, 0, "x", 1))
    return false;
  static const char *names[] = {"x", "g", "b"};
  const Dim &last = a[0].dims.back();
  for (size_t i = 1; i < a.size(); ++i) {
    if (!floatArg(e, a, i, names[i], 1, true, "[E]"))
      return false;
    if (a[i].dims[0] != last)
      return error(e.loc, e.name + ": x is " + a[0].str() + " but " + names[i] +
                              " is " + a[i].str() + "; " + names[i] +
                              " must be [" + last.str() + "] (x's last dim)");
  }
  if (KeywordArg *kw = keyword(e, "eps")) {
    double eps;
    if (!constant(*kw->value, "eps", eps))
      return false;
    if (eps < 0)
      return error(kw->value->loc, "eps must be >= 0, got " + numStr(eps));
  }
  e.types = {f32(a[0].dims)};
  return true;
}

bool Checker::checkElementwise(Expr &e, std::vector<ValueType> &a) {
  if (!floatArg(e, a, 0, "x"))
    return false;
  e.types = {f32(a[0].dims)};
  return true;
}

bool Checker::checkRope(Expr &e, std::vector<ValueType> &a) {
  if (!floatArg(e, a, 0, "x", 4, true, "[B, H, S, D]"))
    return false;
  const Dims &x = a[0].dims;
  if (!x[3].isStatic() || x[3].size % 2 != 0)
    return error(e.loc, "rope needs a static, even head dim (dim 3), got " +
                            a[0].str());
  const ValueType &p = a[1];
  const Expr &pos = *e.args[1];
  if (p.kind == ValueType::Mask || p.dtype != DType::I32)
    return error(pos.loc, "rope expects an i32 pos, got " + p.str());
  bool ok = (p.dims.size() == 1 && p.dims[0] == x[2]) ||
            (p.dims.size() == 2 && p.dims[0] == x[0] && p.dims[1] == x[2]);
  if (!ok)
    return error(e.loc, "rope: x is " + a[0].str() + " but pos is " + p.str() +
                            "; pos must be [" + x[2].str() + "] or [" +
                            x[0].str() + ", " + x[2].str() + "]");
  if (KeywordArg *kw = keyword(e, "theta")) {
    double theta;
    if (!constant(*kw->value, "theta", theta))
      return false;
    if (theta <= 0)
      return error(kw->value->loc, "theta must be > 0, got " + numStr(theta));
  }
  if (KeywordArg *kw = keyword(e, "style")) {
    const Expr &s = *kw->value;
    if (s.kind != Expr::String ||
        (s.name != "rotate_half" && s.name != "interleaved"))
      return error(s.loc,
                   "style must be \"rotate_half\" or \"interleaved\"" +
                       (s.kind == Expr::String ? ", got \"" + s.name + "\""
                                               : std::string()));
  }
  e.types = {f32(x)};
  return true;
}

/// causal(), sliding_window(W), padding(lengths).
bool Checker::checkMaskCall(Expr &e, std::vector<ValueType> &a) {
  MaskInfo info;
  if (e.name == "sliding_window") {
    int64_t w;
    if (!constInt(*e.args[0], "sliding_window's W", 1, INT32_MAX, w))
      return false;
  } else if (e.name == "causal" && !a.empty()) {
    // causal(start): positions from a KV cache; start is [B] like lengths.
    const ValueType &t = a[0];
    if (t.kind == ValueType::Mask || t.dtype != DType::I32 ||
        t.dims.size() != 1)
      return error(e.args[0]->loc,
                   "causal expects i32 cache starts of rank 1 ([B]), got " +
                       t.str());
    info.paddings.push_back(t.dims);
  } else if (e.name == "padding") {
    const ValueType &t = a[0];
    if (t.kind == ValueType::Mask || t.dtype != DType::I32 ||
        t.dims.size() != 1)
      return error(e.args[0]->loc,
                   "padding expects i32 lengths of rank 1 ([B]), got " +
                       t.str());
    info.paddings.push_back(t.dims);
  }
  masks[&e] = std::move(info);
  e.types = {ValueType::mask()};
  return true;
}


/// exp log sqrt rsqrt tanh sigmoid (float -> f32) and abs (also i32).
bool Checker::checkMath(Expr &e, std::vector<ValueType> &a) {
  if (e.name == "abs" && a[0].kind == ValueType::Tensor &&
      a[0].dtype == DType::I32) {
    e.types = {a[0]};
    return true;
  }
  if (!floatArg(e, a, 0, "x"))
    return false;
  e.types = {f32(a[0].dims)};
  return true;
}

/// A `dim=` keyword: a constant in [-rank, rank), normalised to >= 0.
static bool normaliseDim(int64_t &d, size_t rank) {
  if (d < -int64_t(rank) || d >= int64_t(rank))
    return false;
  if (d < 0)
    d += int64_t(rank);
  return true;
}

/// min/max(a, b) element-wise, or min/max(x, dim=d) as a reduction.
bool Checker::checkMinMax(Expr &e, std::vector<ValueType> &a) {
  if (a.size() == 1)
    return checkReduce(e, a);
  if (keyword(e, "dim") || keyword(e, "keepdim"))
    return error(e.kwargs[0].loc, e.name + "(a, b) is element-wise and takes "
                                  "no keywords; " + e.name +
                                  "(x, dim=d) reduces");
  for (size_t i = 0; i < 2; ++i)
    if (!requireNumber(*e.args[i], a[i], e.name))
      return false;
  Dims dims;
  if (!broadcast(a[0].dims, a[1].dims, dims))
    return error(e.loc, "cannot broadcast " + a[0].str() + " with " +
                            a[1].str());
  bool isInt[2] = {a[0].dtype == DType::I32, a[1].dtype == DType::I32};
  bool lit[2] = {isIntLiteral(*e.args[0]), isIntLiteral(*e.args[1])};
  bool integral = (isInt[0] || isInt[1]) && (isInt[0] || lit[0]) &&
                  (isInt[1] || lit[1]);
  if (integral)
    for (int i = 0; i < 2; ++i)
      if (lit[i])
        typeIntLiteral(*e.args[i]);
  e.types = {ValueType::tensor(integral ? DType::I32 : DType::F32, dims)};
  return true;
}

/// sum/mean/max/min(x, dim=d[, keepdim=0|1]).
bool Checker::checkReduce(Expr &e, std::vector<ValueType> &a) {
  KeywordArg *dk = keyword(e, "dim");
  if (!dk)
    return error(e.loc, e.name + "(x) needs dim= (the dim to reduce)");
  const ValueType &x = a[0];
  if (!requireNumber(*e.args[0], x, e.name))
    return false;
  bool isInt = x.dtype == DType::I32;
  if (isInt && (e.name == "sum" || e.name == "mean"))
    return error(e.args[0]->loc,
                 e.name + " expects a float operand, got " + x.str());
  if (x.dims.empty())
    return error(e.args[0]->loc, e.name + " needs a tensor of rank >= 1, got " +
                                     x.str());
  int64_t d, keep = 0;
  if (!constInt(*dk->value, "dim", INT32_MIN, INT32_MAX, d))
    return false;
  if (!normaliseDim(d, x.dims.size()))
    return error(dk->value->loc, "dim " + std::to_string(d) +
                                     " is out of range for " + x.str());
  if (KeywordArg *kk = keyword(e, "keepdim"))
    if (!constInt(*kk->value, "keepdim", 0, 1, keep))
      return false;
  Dims dims = x.dims;
  if (keep)
    dims[d] = Dim::fixed(1);
  else
    dims.erase(dims.begin() + d);
  e.types = {ValueType::tensor(isInt ? DType::I32 : DType::F32, dims)};
  return true;
}

/// where(cond, a, b): bool cond; a and b promote as arithmetic does.
bool Checker::checkWhere(Expr &e, std::vector<ValueType> &a) {
  if (a[0].kind == ValueType::Mask || a[0].dtype != DType::Bool)
    return error(e.args[0]->loc,
                 "where expects a bool condition, got " + a[0].str());
  for (size_t i = 1; i < 3; ++i)
    if (!requireNumber(*e.args[i], a[i], "where"))
      return false;
  Dims ab, dims;
  if (!broadcast(a[1].dims, a[2].dims, ab) || !broadcast(a[0].dims, ab, dims))
    return error(e.loc, "where: cannot broadcast " + a[0].str() + ", " +
                            a[1].str() + " and " + a[2].str());
  bool isInt[2] = {a[1].dtype == DType::I32, a[2].dtype == DType::I32};
  bool lit[2] = {isIntLiteral(*e.args[1]), isIntLiteral(*e.args[2])};
  bool integral = (isInt[0] || isInt[1]) && (isInt[0] || lit[0]) &&
                  (isInt[1] || lit[1]);
  if (integral)
    for (int i = 0; i < 2; ++i)
      if (lit[i])
        typeIntLiteral(*e.args[i + 1]);
  e.types = {ValueType::tensor(integral ? DType::I32 : DType::F32, dims)};
  return true;
}

/// mean_pool(x: [B, S, ...], lengths: i32[B]) -> [B, ...].
bool Checker::checkMeanPool(Expr &e, std::vector<ValueType> &a) {
  if (!floatArg(e, a, 0, "x", 2))
    return false;
  const ValueType &l = a[1];
  if (l.kind == ValueType::Mask || l.dtype != DType::I32 ||
      l.dims.size() != 1 || l.dims[0] != a[0].dims[0])
    return error(e.args[1]->loc, "mean_pool: x is " + a[0].str() +
                                     " so lengths must be i32[" +
                                     a[0].dims[0].str() + "], got " + l.str());
  Dims dims = a[0].dims;
  dims.erase(dims.begin() + 1);
  e.types = {f32(dims)};
  return true;
}

bool Checker::checkL2Normalize(Expr &e, std::vector<ValueType> &a) {
  if (!floatArg(e, a, 0, "x", 1))
    return false;
  if (KeywordArg *kw = keyword(e, "eps")) {
    double eps;
    if (!constant(*kw->value, "eps", eps))
      return false;
    if (eps < 0)
      return error(kw->value->loc, "eps must be >= 0, got " + numStr(eps));
  }
  e.types = {f32(a[0].dims)};
  return true;
}

/// embedding(table: [V, D], ids: i32[...]) -> [..., D].
bool Checker::checkEmbedding(Expr &e, std::vector<ValueType> &a) {
  if (!floatArg(e, a, 0, "table", 2, true, "[V, D]"))
    return false;
  const ValueType &ids = a[1];
  if (ids.kind == ValueType::Mask || ids.dtype != DType::I32)
    return error(e.args[1]->loc,
                 "embedding expects i32 ids, got " + ids.str());
  Dims dims = ids.dims;
  dims.push_back(a[0].dims[1]);
  e.types = {f32(dims)};
  return true;
}

/// arange(n): n a size name of the model or a positive integer.
bool Checker::checkArange(Expr &e, std::vector<ValueType> &) {
  Expr &n = *e.args[0];
  if (n.kind == Expr::Name) {
    if (!sizes.count(n.name))
      return error(n.loc, "arange expects a size of the model's <...> list "
                          "or an integer, got '" + n.name + "'");
    e.types = {ValueType::tensor(DType::I32, {Dim::symbol(n.name)})};
    return true;
  }
  int64_t v;
  if (!constInt(n, "arange's size", 1, INT32_MAX, v))
    return false;
  e.types = {ValueType::tensor(DType::I32, {Dim::fixed(v)})};
  return true;
}

/// `x[...]`: `:`, `...`, one index (the dim is dropped) or one range per
/// dim. A bound is an integer, negative from the end, or a size name.
bool Checker::checkIndex(Expr &e) {
  ValueType x;
  if (!operand(*e.args[0], x))
    return false;
  if (x.kind == ValueType::Mask)
    return error(e.args[0]->loc, "a mask cannot be subscripted");
  size_t rank = x.dims.size(), given = 0, ellipses = 0;
  for (const ast::Subscript &sub : e.subscripts) {
    if (sub.kind == ast::Subscript::Ellipsis)
      ++ellipses;
    else
      ++given;
  }
  if (ellipses > 1)
    return error(e.subscripts[1].loc, "a subscript has at most one '...'");
  if (given > rank)
    return error(e.loc, "the subscript has " + std::to_string(given) +
                            " entries but " + x.str() + " has rank " +
                            std::to_string(rank));
  // As in NumPy, dims left out at the end are taken whole (`cache[i]`).
  if (!ellipses && given < rank) {
    ast::Subscript rest;
    rest.kind = ast::Subscript::Ellipsis;
    rest.loc = e.loc;
    e.subscripts.push_back(std::move(rest));
    ellipses = 1;
  }
  e.slices.clear();
  Dims dims;
  size_t d = 0;
  auto bound = [&](Expr &b, const Dim &dim, int64_t &v, std::string &sym,
                   bool isStop) {
    if (b.kind == Expr::Name) {
      if (!sizes.count(b.name))
        return error(b.loc, "a subscript bound is an integer or a size of "
                            "the model, got '" + b.name + "'");
      sym = b.name;
      return true;
    }
    if (!constInt(b, "a subscript bound", INT32_MIN, INT32_MAX, v))
      return false;
    if (dim.isStatic() && (v > dim.size || v < -dim.size ||
                           (v == dim.size && !isStop)))
      return error(b.loc, "index " + std::to_string(v) +
                              " is out of range for dim " + dim.str() + " of " +
                              x.str());
    return true;
  };
  for (const ast::Subscript &sub : e.subscripts) {
    if (sub.kind == ast::Subscript::Ellipsis) {
      for (size_t k = 0; k < rank - given; ++k, ++d) {
        e.slices.push_back({});
        dims.push_back(x.dims[d]);
      }
      continue;
    }
    const Dim &dim = x.dims[d++];
    Expr::Slice sl;
    sl.kind = sub.kind;
    if (sub.kind == ast::Subscript::All) {
      dims.push_back(dim);
      e.slices.push_back(sl);
      continue;
    }
    std::string loSym, hiSym;
    if (sub.lo && !bound(*sub.lo, dim, sl.start, loSym, false))
      return false;
    if (!loSym.empty())
      return error(sub.lo->loc, "a size name can only end a range (0:" +
                                    loSym + ")");
    if (sub.kind == ast::Subscript::Index) {
      if (!dim.isStatic() && sl.start >= 0)
        return error(sub.loc, "indexing a symbolic dim (" + dim.str() +
                                  ") from the start needs a range; use a "
                                  "negative index to count from the end");
      if (dim.isStatic() && sl.start < 0)
        sl.start += dim.size;
      e.slices.push_back(sl);
      continue;
    }
    if (sub.hi && !bound(*sub.hi, dim, sl.stop, hiSym, true))
      return false;
    if (!dim.isStatic() && sl.start < 0)
      return error(sub.loc, "a range of a symbolic dim (" + dim.str() +
                                ") starts at an index >= 0");
    int64_t lo = sl.start < 0 ? sl.start + dim.size : sl.start;
    if (!hiSym.empty()) {
      if (lo != 0)
        return error(sub.loc, "a range that ends at a size starts at 0");
      sl.stopSym = hiSym;
      sl.stop = -1;
      dims.push_back(Dim::symbol(hiSym));
    } else if (!sub.hi) {
      if (!dim.isStatic() && lo != 0)
        return error(sub.loc, "a range of a symbolic dim (" + dim.str() +
                                  ") from " + std::to_string(lo) +
                                  " needs a static end");
      dims.push_back(dim.isStatic() ? Dim::fixed(dim.size - lo) : dim);
      sl.stop = -1;
    } else {
      int64_t hi = sl.stop < 0 && dim.isStatic() ? sl.stop + dim.size : sl.stop;
      if (hi < 0)
        return error(sub.hi->loc, "a negative end needs a static dim, got " +
                                      dim.str());
      if (hi <= lo || (dim.isStatic() && hi > dim.size))
        return error(sub.loc, "range " + std::to_string(lo) + ":" +
                                  std::to_string(hi) +
                                  " is empty or out of range for dim " +
                                  dim.str() + " of " + x.str());
      sl.stop = hi;
      dims.push_back(Dim::fixed(hi - lo));
    }
    sl.start = lo;
    e.slices.push_back(sl);
  }
  e.types = {ValueType::tensor(x.dtype, dims)};
  return true;
}


/// unsqueeze(x, dim=d): a dim of size 1 inserted at d (in [-rank-1, rank],
/// as torch.unsqueeze): `unsqueeze(start, dim=1) + arange(S)` is [B, S].
bool Checker::checkUnsqueeze(Expr &e, std::vector<ValueType> &a) {
  const ValueType &x = a[0];
  if (x.kind == ValueType::Mask)
    return error(e.args[0]->loc, "unsqueeze expects a tensor, got a mask");
  KeywordArg *dk = keyword(e, "dim");
  int64_t d, rank = (int64_t)x.dims.size();
  if (!constInt(*dk->value, "dim", INT32_MIN, INT32_MAX, d))
    return false;
  if (d < -rank - 1 || d > rank)
    return error(dk->value->loc, "dim " + std::to_string(d) +
                                     " is out of range for unsqueeze of " +
                                     x.str() + " (valid: " +
                                     std::to_string(-rank - 1) + " to " +
                                     std::to_string(rank) + ")");
  if (d < 0)
    d += rank + 1;
  Dims dims = x.dims;
  dims.insert(dims.begin() + d, Dim::fixed(1));
  e.types = {ValueType::tensor(x.dtype, dims)};
  return true;
}

/// The inout argument that `e` names, directly or as `cache[i]`.
const Value *Checker::inoutOf(const Expr &e, std::string *name) {
  const Expr *n = &e;
  if (e.kind == Expr::Index) {
    size_t indices = 0;
    for (const ast::Subscript &sub : e.subscripts)
      indices += sub.kind == ast::Subscript::Index ||
                 sub.kind == ast::Subscript::Range;
    if (indices != 1 || e.subscripts.empty() ||
        e.subscripts[0].kind != ast::Subscript::Index)
      return nullptr;
    n = e.args[0].get();
  }
  if (n->kind != Expr::Name)
    return nullptr;
  auto it = values.find(n->name);
  if (it == values.end() || !it->second.inout)
    return nullptr;
  if (name)
    *name = n->name + (n == &e ? "" : "[" + std::to_string(int64_t(e.slices.empty() ? 0 : e.slices[0].start)) + "]");
  return &it->second;
}

/// An inout argument (or one slice of it) is written once per call.
bool Checker::claimWrite(const std::string &name, Location at) {
  auto [it, fresh] = written.emplace(name, at);
  if (!fresh)
    return error(at, "'" + name + "' is already written at " +
                         locStr(it->second) +
                         "; a cache is written once per call");
  return true;
}

/// cache_write(cache: inout [B, H, T, D], new: [B, H, S, D], start: i32[B])
/// -> the cache after the write, f32.
bool Checker::checkCacheWrite(Expr &e, std::vector<ValueType> &a) {
  std::string name;
  if (!inoutOf(*e.args[0], &name) || e.args[0]->kind != Expr::Name)
    return error(e.args[0]->loc, "cache_write writes an inout argument of "
                                 "the model (declared 'NAME: inout TYPE')");
  if (!floatArg(e, a, 0, "cache", 4, true, "[B, H, T, D]") ||
      !floatArg(e, a, 1, "new", 4, true, "[B, H, S, D]"))
    return false;
  const Dims &c = a[0].dims, &n = a[1].dims;
  if (c[0] != n[0] || c[1] != n[1] || c[3] != n[3])
    return error(e.loc, "cache_write: the cache is " + a[0].str() +
                            " but the new rows are " + a[1].str() +
                            "; they must be [B, H, T, D] and [B, H, S, D]");
  const ValueType &st = a[2];
  if (st.kind == ValueType::Mask || st.dtype != DType::I32 ||
      st.dims.size() != 1 || st.dims[0] != c[0])
    return error(e.args[2]->loc, "cache_write: start must be i32[" +
                                     c[0].str() + "], got " + st.str());
  if (!claimWrite(name, e.loc))
    return false;
  e.types = {f32(c)};
  return true;
}

//===----------------------------------------------------------------------===//
// Model calls
//===----------------------------------------------------------------------===//

/// Records a param that a call binds in the model's table; a weight bound
/// twice (tied weights, or the same prefix twice) must have one type.
bool Checker::bindParam(const ast::BoundParam &p, Location at) {
  ValueType t = ValueType::tensor(p.dtype, p.dims);
  for (const ast::Stmt &s : model->body)
    if (s.kind == ast::Stmt::Param && s.weightName == p.weightName) {
      if (sameType(t, ValueType::tensor(s.type.dtype, s.type.dims)))
        return true;
      return error(at, "weight '" + p.weightName + "' is " + t.str() +
                           " in the called model but " +
                           dtypeName(s.type.dtype) + dimsStr(s.type.dims) +
                           " at " + locStr(s.loc));
    }
  for (const ast::BoundParam &q : model->calleeParams)
    if (q.weightName == p.weightName) {
      if (q.dtype == p.dtype && q.dims == p.dims)
        return true;
      return error(at, "weight '" + p.weightName + "' is bound as " + t.str() +
                           " here and as " + dtypeName(q.dtype) +
                           dimsStr(q.dims) + " at " + locStr(q.loc));
    }
  model->calleeParams.push_back(p);
  model->calleeParams.back().loc = at;
  return true;
}

/// `y = layer(x, lengths, params="encoder.layer.{i}.")`: the arguments bind
/// the callee's sizes; its results and params take the caller's sizes.
bool Checker::checkModelCall(Expr &e, const ast::Model &callee) {
  if (broken.count(callee.name))
    return error(e.loc, "model '" + callee.name +
                            "' has errors (reported above); it cannot be "
                            "called");
  std::string prefix;
  for (KeywordArg &kw : e.kwargs) {
    if (kw.name != "params")
      return error(kw.loc, "a model call takes only the keyword params= "
                           "(the prefix of its weight names), got '" +
                               kw.name + "'");
    if (kw.value->kind != Expr::String)
      return error(kw.value->loc, "params= expects a string, such as "
                                  "\"encoder.layer.{i}.\"");
    prefix = kw.value->name;
    size_t open = prefix.find('{');
    if (open != std::string::npos)
      return error(kw.value->loc,
                   "'" + prefix.substr(open, prefix.find('}', open) - open + 1) +
                       "' in params= names no enclosing loop variable");
  }
  if (e.args.size() != callee.args.size())
    return error(e.loc, "model '" + callee.name + "' takes " +
                            std::to_string(callee.args.size()) +
                            " arguments, got " + std::to_string(e.args.size()));
  std::map<std::string, Dim> bound;
  for (size_t i = 0; i < e.args.size(); ++i) {
    ValueType t;
    if (!operand(*e.args[i], t))
      return false;
    const ast::Arg &p = callee.args[i];
    std::string want = dtypeName(p.type.dtype) + dimsStr(p.type.dims);
    bool ok = t.kind == ValueType::Tensor && t.dtype == p.type.dtype &&
              t.dims.size() == p.type.dims.size();
    for (size_t k = 0; ok && k < t.dims.size(); ++k) {
      const Dim &d = p.type.dims[k];
      if (d.isStatic()) {
        ok = t.dims[k] == d;
        continue;
      }
      auto [it, fresh] = bound.emplace(d.sym, t.dims[k]);
      if (!fresh && it->second != t.dims[k])
        return error(e.args[i]->loc,
                     "argument '" + p.name + "' of model '" + callee.name +
                         "' is " + t.str() + ", but size " + d.sym +
                         " is already " + it->second.str() +
                         " from an earlier argument");
    }
    if (!ok)
      return error(e.args[i]->loc, "argument '" + p.name + "' of model '" +
                                       callee.name + "' is " + want +
                                       ", got " + t.str());
    if (p.inout) {
      std::string name;
      if (!inoutOf(*e.args[i], &name))
        return error(e.args[i]->loc,
                     "argument '" + p.name + "' of model '" + callee.name +
                         "' is inout: pass an inout argument of this model, "
                         "or one slice of it (cache[i])");
      if (!claimWrite(name, e.args[i]->loc))
        return false;
    }
  }
  auto subst = [&](const Dims &dims, Dims &out, std::string &unbound) {
    out.clear();
    for (const Dim &d : dims) {
      if (d.isStatic()) {
        out.push_back(Dim::fixed(d.size));
        continue;
      }
      auto it = bound.find(d.sym);
      if (it == bound.end()) {
        unbound = d.sym;
        return false;
      }
      out.push_back(it->second);
      out.back().loc = {};
    }
    return true;
  };
  std::string unbound;
  for (const ast::TensorType &r : callee.results) {
    Dims dims;
    if (!subst(r.dims, dims, unbound))
      return error(e.loc, "size " + unbound + " of model '" + callee.name +
                              "' is not bound by its arguments");
    e.types.push_back(ValueType::tensor(r.dtype, dims));
  }
  std::vector<ast::BoundParam> params;
  for (const ast::Stmt &s : callee.body)
    if (s.kind == ast::Stmt::Param)
      params.push_back({s.weightName, s.type.dtype, s.type.dims, s.loc});
  for (const ast::BoundParam &p : callee.calleeParams)
    params.push_back(p);
  e.calleeParams.clear();
  for (ast::BoundParam &p : params) {
    Dims dims;
    if (!subst(p.dims, dims, unbound))
      return error(e.loc, "size " + unbound + " of weight '" + p.weightName +
                              "' of model '" + callee.name +
                              "' is not bound by its arguments");
    p.weightName = prefix + p.weightName;
    p.dims = dims;
    if (!bindParam(p, e.loc))
      return false;
    e.calleeParams.push_back(p);
  }
  e.callee = &callee;
  return true;
}

/// The models that `m` calls (names of calls that are not built-ins).
void collectCalls(const Expr &e, std::vector<const Expr *> &out) {
  if (e.kind == Expr::Call && !findBuiltin(e.name))
    out.push_back(&e);
  for (const ast::ExprPtr &a : e.args)
    collectCalls(*a, out);
  for (const KeywordArg &kw : e.kwargs)
    collectCalls(*kw.value, out);
}

/// Model names become a library's symbols and file names (Symbols.cpp):
/// each must be short enough, and no two models (this file's or imported)
/// nor the runtime may define the same symbol.
void checkSymbols(const ast::Module &module, SourceDiagnostics &diags) {
  std::vector<const ast::Model *> all;
  for (const ast::Model &m : module.imported)
    all.push_back(&m);
  for (const ast::Model &m : module.models)
    all.push_back(&m);
  size_t firstLocal = module.imported.size();
  for (size_t i = 0; i < all.size(); ++i) {
    const ast::Model &m = *all[i];
    // Imported models are reported in their own file, or at the import.
    Location at = i >= firstLocal          ? m.loc
                  : module.imports.empty() ? Location{}
                                           : module.imports[0].loc;
    std::string why = badModelName(m.name), reserved = reservedSymbol(m.name);
    if (why.empty() && !reserved.empty())
      why = "would define the symbol '" + reserved +
            "', which the library's table or the runtime's C API defines";
    if (!why.empty() && i >= firstLocal) {
      diags.error(at, "model name '" + m.name + "' " + why);
      continue;
    }
    for (size_t j = 0; j < i; ++j) {
      std::string symbol = sharedSymbol(all[j]->name, m.name);
      if (symbol.empty())
        continue;
      std::string other = j >= firstLocal ? "defined at " + locStr(all[j]->loc)
                                          : "imported from " + all[j]->file;
      diags.error(at, "model '" + m.name + "' clashes with model '" +
                          all[j]->name + "' (" + other +
                          "): a library of both would define the symbol '" +
                          symbol + "' twice");
      break;
    }
  }
}

} // namespace

bool isBuiltin(const std::string &name) { return findBuiltin(name) != nullptr; }

bool checkModule(ast::Module &module, SourceDiagnostics &diags) {
  unsigned before = diags.numErrors();
  std::map<std::string, Location> names;
  Checker checker(diags);
  std::map<std::string, ast::Model *> byName;
  for (ast::Model &m : module.imported)
    byName.emplace(m.name, &m);
  for (ast::Model &m : module.models) {
    auto [it, fresh] = names.emplace(m.name, m.loc);
    if (!fresh)
      diags.error(m.loc, "model '" + m.name + "' is already defined at " +
                             locStr(it->second));
    byName[m.name] = &m;
  }
  for (auto &[name, m] : byName)
    checker.callable[name] = m;
  checkSymbols(module, diags);

  // Callees are checked before their callers (their params are bound
  // through the call); a cycle of calls is an error at the call.
  std::map<const ast::Model *, int> state; // 1: in progress, 2: done
  std::function<void(ast::Model &)> visit = [&](ast::Model &m) {
    state[&m] = 1;
    std::vector<const Expr *> calls;
    for (const ast::Stmt &s : m.body)
      for (const ast::ExprPtr &e : s.exprs)
        collectCalls(*e, calls);
    for (const Expr *c : calls) {
      auto it = byName.find(c->name);
      if (it == byName.end())
        continue;
      int st = state[it->second];
      if (st == 1) {
        diags.error(c->loc, "model '" + m.name + "' calls '" + c->name +
                                "', which calls it back: recursive calls are "
                                "not allowed");
        checker.broken.insert(c->name);
        checker.broken.insert(m.name);
      } else if (st == 0) {
        visit(*it->second);
      }
    }
    unsigned errs = diags.numErrors();
    if (!checker.broken.count(m.name))
      checker.checkModel(m);
    if (diags.numErrors() != errs)
      checker.broken.insert(m.name);
    state[&m] = 2;
  };
  for (ast::Model &m : module.models)
    if (!state[&m])
      visit(m);
  return diags.numErrors() == before;
}

} // namespace attn
