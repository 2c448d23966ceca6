//===- AST.h - Abstract syntax tree of the attn language --------*- C++ -*-===//
//
// The parser builds this tree; Sema annotates every expression with its
// symbolic type; MLIRGen lowers the checked tree to the attn dialect.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_FRONTEND_AST_H
#define ATTN_FRONTEND_AST_H

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace attn {
namespace ast {

/// A 1-based position in a source file.
struct Location {
  unsigned line = 0;
  unsigned col = 0;
};

enum class DType { F32, F16, BF16, I32, Bool };

/// "f32", "f16", "bf16", "i32" or "bool".
const char *dtypeName(DType t);
/// True for f32, f16 and bf16.
bool isFloat(DType t);

/// One dimension of a tensor type: a static size, or a symbolic one. A
/// symbolic dimension is either a name from the model's `<...>` list ("S") or
/// a derived size written as text ("P+S"); two symbolic dims are the same iff
/// their text is the same.
struct Dim {
  int64_t size = -1; // >= 0: static size
  std::string sym;   // when size < 0
  Location loc;      // where it was written (invalid for inferred dims)

  static Dim fixed(int64_t n) { return Dim{n, "", {}}; }
  static Dim symbol(std::string s) { return Dim{-1, std::move(s), {}}; }
  bool isStatic() const { return size >= 0; }
  bool operator==(const Dim &o) const {
    return isStatic() ? o.size == size : (!o.isStatic() && o.sym == sym);
  }
  bool operator!=(const Dim &o) const { return !(*this == o); }
  /// "768" or "S".
  std::string str() const;
};

/// A type written in the source: `f32[B, S, 768]`.
struct TensorType {
  DType dtype = DType::F32;
  std::vector<Dim> dims;
  Location loc;
};

/// The checked type of a value. Masks (`causal`, `padding(l)`, `m1 & m2`)
/// have no shape of their own: they take the shape of the scores they mask.
struct ValueType {
  enum Kind { Tensor, Mask } kind = Tensor;
  DType dtype = DType::F32; // Tensor only
  std::vector<Dim> dims;    // Tensor only
  static ValueType mask() {
    ValueType t;
    t.kind = Mask;
    return t;
  }
  static ValueType tensor(DType d, std::vector<Dim> ds) {
    ValueType t;
    t.dtype = d;
    t.dims = std::move(ds);
    return t;
  }
  /// "f32[B, S, 768]" or "mask".
  std::string str() const;
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;
struct Model;

/// One entry of a subscript `x[:, 0:S, -1, ...]`.
struct Subscript {
  enum Kind {
    All,      // `:`
    Ellipsis, // `...`: as many `:` as the rank needs
    Index,    // `i`: one position, the dim is dropped
    Range     // `lo:hi`, either bound optional
  };
  Kind kind = All;
  Location loc;
  /// Index: `lo`; Range: `lo` and `hi`, each null when left out. A bound is
  /// an integer (negative counts from the end) or a size name.
  ExprPtr lo, hi;
};

/// A param that a model call binds: the callee's param under the call's
/// prefix, with the callee's sizes replaced by the caller's.
struct BoundParam {
  std::string weightName;
  DType dtype = DType::F32;
  std::vector<Dim> dims;
  Location loc; // the call that first binds it
};

struct KeywordArg {
  std::string name;
  Location loc; // of the keyword name
  ExprPtr value;
};

struct Expr {
  enum Kind {
    Number, // `0.125`, `12`
    String, // `"interleaved"` (only as a keyword value)
    Name,   // a binding, an argument, a param, or `causal`
    Binary, // lhs op rhs, op in + - * / & | and the comparisons (opName)
    Neg,    // -operand
    Not,    // !operand
    Call,   // name(args..., kw=value...), a built-in or a model
    Index   // args[0][subscripts...]
  };
  Kind kind;
  Location loc; // first character of the expression (the operator for
                // Binary, the callee name for Call)

  double number = 0;     // Number
  bool isInteger = true; // Number: written without '.' or exponent
  std::string name;      // Name: identifier; Call: callee; String: contents
  char op = 0;           // Binary: + - * / & | < > and L(<=) G(>=) E(==) N(!=)
  std::vector<ExprPtr> args;     // Binary: {lhs, rhs}; Neg: {x}; Call: positional
  std::vector<KeywordArg> kwargs; // Call
  std::vector<Subscript> subscripts; // Index

  /// Filled by Sema for a call of a model: the callee, and the params it
  /// binds (its own and its callees', under the call's prefix).
  const Model *callee = nullptr;
  std::vector<BoundParam> calleeParams;
  /// Filled by Sema for Index: per dim of args[0], the resolved subscript
  /// (kind All, Index or Range; `...` expanded), bounds folded into
  /// `start`/`stop` where static, or a size name in `stopSym`.
  struct Slice {
    Subscript::Kind kind = Subscript::All;
    int64_t start = 0;
    int64_t stop = -1;   // -1: to the end
    std::string stopSym; // `0:S`
  };
  std::vector<Slice> slices;

  /// Filled by Sema: one type per result (`split(x, 3)` has three).
  std::vector<ValueType> types;

  /// Filled by Sema for the arguments that must be constants (heads=, n,
  /// axis=, eps=, theta=, scale=, sliding_window's W): the folded value of
  /// this expression (`scale=1/8` gives 0.125, `axis=-1` gives -1).
  bool isConstant = false;
  double constant = 0;

  explicit Expr(Kind k, Location l) : kind(k), loc(l) {}
};

/// How a Binary operator is written: "+", "<=", "==".
const char *opName(char op);
/// True for < <= > >= == !=.
bool isComparison(char op);

struct Stmt {
  enum Kind { Param, Bind, Return };
  Kind kind;
  Location loc;

  // Param: `param NAME : type [= "weights name"]`
  std::string name;
  TensorType type;
  std::string weightName; // defaults to name

  // Bind: `a, b = expr` (names, one expr); Return: `return e1, e2`.
  // Param: names/nameLocs hold its one name and where that name is written
  // (`loc` is the `param` keyword).
  std::vector<std::string> names;
  std::vector<Location> nameLocs;
  std::vector<ExprPtr> exprs;

  /// Bind: the statement comes from the body of a `for` loop, which may
  /// rebind a name bound before (`h = layer(h, params="l.{i}.")`).
  bool inLoop = false;

  explicit Stmt(Kind k, Location l) : kind(k), loc(l) {}
};

struct Arg {
  std::string name;
  Location loc;
  TensorType type;
  bool inout = false; // `k_cache: inout f32[...]`: written in place
};

struct Model {
  std::string name;
  Location loc;
  std::vector<std::string> syms; // the `<B, S>` list
  std::vector<Location> symLocs;
  std::vector<Arg> args;
  std::vector<TensorType> results;
  std::vector<Stmt> body;
  Location end; // the closing '}'
  std::string file; // set for imported models: the file they come from
  /// Filled by Sema: the params that the model's calls bind, after its own
  /// (deduplicated by weight name), in the order of first use.
  std::vector<BoundParam> calleeParams;
};

struct Import {
  std::string path; // as written, relative to the importing file
  Location loc;
};

struct Module {
  std::string file;
  std::vector<Import> imports;
  std::vector<Model> models;
  /// Models of imported files (callable, not compiled unless called).
  std::vector<Model> imported;
};

/// Prints the tree as an indented S-expression (`attnc --emit=ast`). When
/// Sema has run, every expression also shows its type.
void print(const Module &m, std::ostream &os);

} // namespace ast
} // namespace attn

#endif // ATTN_FRONTEND_AST_H
