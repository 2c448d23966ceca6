//===- AST.cpp - Abstract syntax tree helpers and printer -----------------===//
//
// The printer writes an S-expression, one statement per line; an expression
// that does not fit in the line width is broken into one operand per line.
// Checked trees show every expression's type after a ':'.
//
//===----------------------------------------------------------------------===//
#include "attn/Frontend/AST.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace attn {
namespace ast {

const char *dtypeName(DType t) {
  switch (t) {
  case DType::F32:
    return "f32";
  case DType::F16:
    return "f16";
  case DType::BF16:
    return "bf16";
  case DType::I32:
    return "i32";
  case DType::Bool:
    return "bool";
  }
  return "?";
}

bool isFloat(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

std::string Dim::str() const { return isStatic() ? std::to_string(size) : sym; }

static std::string dimsStr(const std::vector<Dim> &dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    s += (i ? ", " : "") + dims[i].str();
  return s + "]";
}

std::string ValueType::str() const {
  if (kind == Mask)
    return "mask";
  return dtypeName(dtype) + dimsStr(dims);
}

namespace {

constexpr size_t kLineWidth = 100;

/// The shortest text that reads back as the same double; a number written
/// with a '.' or an exponent keeps looking like a float.
std::string numberStr(const Expr &e) {
  char buf[64];
  if (e.number == std::floor(e.number) && std::fabs(e.number) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", e.number);
  } else {
    for (int prec = 1; prec <= 17; ++prec) {
      std::snprintf(buf, sizeof buf, "%.*g", prec, e.number);
      if (std::strtod(buf, nullptr) == e.number)
        break;
    }
  }
  std::string s = buf;
  if (!e.isInteger && s.find_first_of(".eni") == std::string::npos)
    s += ".0";
  return s;
}

std::string quoted(const std::string &text) {
  std::string s = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\')
      s += '\\';
    s += c;
  }
  return s + "\"";
}

std::string typesStr(const Expr &e) {
  if (e.types.empty())
    return "";
  if (e.types.size() == 1)
    return " :" + e.types[0].str();
  std::string s = " :(";
  for (size_t i = 0; i < e.types.size(); ++i)
    s += (i ? ", " : "") + e.types[i].str();
  return s + ")";
}

/// An expression is printed as an atom or as `(head child...)`.
struct Node {
  std::string head;
  std::vector<Node> children; // empty and !isList: an atom
  bool isList = false;

  std::string flat() const {
    if (!isList)
      return head;
    std::string s = "(" + head;
    for (const Node &c : children)
      s += " " + c.flat();
    return s + ")";
  }

  void print(std::ostream &os, size_t indent) const {
    std::string f = flat();
    if (!isList || indent + f.size() <= kLineWidth) {
      os << f;
      return;
    }
    os << "(" << head;
    for (const Node &c : children) {
      os << "\n" << std::string(indent + 2, ' ');
      c.print(os, indent + 2);
    }
    os << ")";
  }
};

Node list(std::string head, std::vector<Node> children = {}) {
  Node n{std::move(head), std::move(children), true};
  return n;
}
Node atom(std::string text) { return Node{std::move(text), {}, false}; }

} // namespace

const char *opName(char op) {
  switch (op) {
  case '+':
    return "+";
  case '-':
    return "-";
  case '*':
    return "*";
  case '/':
    return "/";
  case '&':
    return "&";
  case '|':
    return "|";
  case '<':
    return "<";
  case '>':
    return ">";
  case 'L':
    return "<=";
  case 'G':
    return ">=";
  case 'E':
    return "==";
  case 'N':
    return "!=";
  }
  return "?";
}

bool isComparison(char op) {
  return op == '<' || op == '>' || op == 'L' || op == 'G' || op == 'E' ||
         op == 'N';
}

namespace {

Node toNode(const Expr &e) {
  switch (e.kind) {
  case Expr::Number:
    return atom(numberStr(e));
  case Expr::String:
    return atom(quoted(e.name));
  case Expr::Name:
    return list("name " + e.name + typesStr(e));
  case Expr::Binary:
  case Expr::Neg:
  case Expr::Not: {
    Node n = list((e.kind == Expr::Neg   ? std::string("neg")
                   : e.kind == Expr::Not ? std::string("not")
                                         : std::string(opName(e.op))) +
                  typesStr(e));
    for (const ExprPtr &a : e.args)
      n.children.push_back(toNode(*a));
    return n;
  }
  case Expr::Index: {
    Node n = list("index" + typesStr(e), {toNode(*e.args[0])});
    for (const Subscript &s : e.subscripts) {
      switch (s.kind) {
      case Subscript::All:
        n.children.push_back(atom(":"));
        break;
      case Subscript::Ellipsis:
        n.children.push_back(atom("..."));
        break;
      case Subscript::Index:
        n.children.push_back(toNode(*s.lo));
        break;
      case Subscript::Range: {
        Node r = list("range");
        r.children.push_back(s.lo ? toNode(*s.lo) : atom("_"));
        r.children.push_back(s.hi ? toNode(*s.hi) : atom("_"));
        n.children.push_back(r);
        break;
      }
      }
    }
    return n;
  }
  case Expr::Call: {
    Node n = list((e.callee ? "call model " : "call ") + e.name + typesStr(e));
    for (const ExprPtr &a : e.args)
      n.children.push_back(toNode(*a));
    for (const KeywordArg &kw : e.kwargs)
      n.children.push_back(list("kw " + kw.name, {toNode(*kw.value)}));
    return n;
  }
  }
  return atom("?");
}

std::string typeStr(const TensorType &t) {
  return dtypeName(t.dtype) + dimsStr(t.dims);
}

} // namespace

void print(const Module &m, std::ostream &os) {
  os << "(module " << quoted(m.file);
  for (const Model &model : m.models) {
    os << "\n  (model " << model.name;
    if (!model.syms.empty()) {
      os << " (sizes";
      for (const std::string &s : model.syms)
        os << " " << s;
      os << ")";
    }
    for (const Arg &a : model.args)
      os << "\n    (arg " << a.name << " " << (a.inout ? "inout " : "")
         << typeStr(a.type) << ")";
    for (const TensorType &t : model.results)
      os << "\n    (result " << typeStr(t) << ")";
    for (const Stmt &s : model.body) {
      os << "\n    ";
      switch (s.kind) {
      case Stmt::Param:
        os << "(param " << s.name << " " << typeStr(s.type) << " "
           << quoted(s.weightName) << ")";
        break;
      case Stmt::Bind: {
        std::string names;
        for (size_t i = 0; i < s.names.size(); ++i)
          names += (i ? " " : "") + s.names[i];
        Node n = list(std::string(s.inLoop ? "bind-in-loop (" : "bind (") +
                      names + ")");
        for (const ExprPtr &e : s.exprs)
          n.children.push_back(toNode(*e));
        n.print(os, 4);
        break;
      }
      case Stmt::Return: {
        Node n = list("return");
        for (const ExprPtr &e : s.exprs)
          n.children.push_back(toNode(*e));
        n.print(os, 4);
        break;
      }
      }
    }
    for (const BoundParam &p : model.calleeParams)
      os << "\n    (bound-param " << quoted(p.weightName) << " "
         << dtypeName(p.dtype) << dimsStr(p.dims) << ")";
    os << ")";
  }
  os << ")\n";
}

} // namespace ast
} // namespace attn
