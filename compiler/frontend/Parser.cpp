//===- Parser.cpp - Recursive-descent parser for the attn language --------===//
//
// Implements the grammar of DESIGN.md section 3. The parser stops at the first
// syntax error. Operator precedence, lowest first: `&`; `+ -`; `* /`; unary
// `-`; primaries. Binary operators are left-associative.
//
//===----------------------------------------------------------------------===//
#include "attn/Frontend/Frontend.h"
#include "attn/Frontend/Lexer.h"

#include <limits>

namespace attn {
namespace {

using ast::Expr;
using ast::ExprPtr;

/// Deeper expressions are rejected so that every recursive walk over the
/// tree (Sema, printing, lowering) stays far from the stack limit.
constexpr unsigned kMaxExprDepth = 256;
/// The largest static dimension: products of two dims still fit in int64.
constexpr int64_t kMaxDim = std::numeric_limits<int32_t>::max();

class Parser {
public:
  explicit Parser(SourceDiagnostics &diags)
      : diags(diags), lexer(diags), errorsBefore(diags.numErrors()) {
    tok = lexer.next();
  }

  std::optional<ast::Module> parseModule();

private:
  // Token handling.
  void consume() {
    if (hasPeeked) {
      tok = std::move(peeked);
      hasPeeked = false;
    } else {
      tok = lexer.next();
    }
  }
  const Token &peekToken() {
    if (!hasPeeked) {
      peeked = lexer.next();
      hasPeeked = true;
    }
    return peeked;
  }
  bool fail(const std::string &message) { return fail(tok.loc, message); }
  bool fail(ast::Location loc, const std::string &message) {
    // Report only the first error (a lexical one may come first).
    if (!failed && diags.numErrors() == errorsBefore)
      diags.error(loc, message);
    failed = true;
    return false;
  }
  bool expected(const std::string &what) {
    return fail("expected " + what + ", found " + tok.describe());
  }
  bool expect(Tok kind, const std::string &context = "") {
    if (!tok.is(kind))
      return expected(std::string(tokName(kind)) +
                      (context.empty() ? "" : " " + context));
    consume();
    return true;
  }
  bool expectName(std::string &name, ast::Location &loc,
                  const std::string &what) {
    if (!tok.is(Tok::Ident))
      return expected(what);
    name = tok.text;
    loc = tok.loc;
    consume();
    return true;
  }

  bool parseModel(ast::Model &m);
  bool parseType(ast::TensorType &t);
  bool parseDim(ast::Dim &d);
  bool parseStmt(ast::Model &m);
  bool parseFor(ast::Model &m);

  ExprPtr parseExpr();
  ExprPtr parseBinary(int level);
  ExprPtr parseUnary();
  ExprPtr parsePostfix();
  bool parseSubscript(ast::Subscript &sub);
  ExprPtr parseBound();
  ExprPtr parsePrimary();
  ExprPtr parseCall(std::string name, ast::Location loc);
  bool checkDepth(const Expr &e);

  SourceDiagnostics &diags;
  Lexer lexer;
  Token tok, peeked;
  bool hasPeeked = false;
  bool failed = false;
  unsigned errorsBefore;
  unsigned nesting = 0; // of parentheses, calls and unary minus
};

std::optional<ast::Module> Parser::parseModule() {
  ast::Module module;
  module.file = diags.file();
  // `import "other.attn"` lines come first.
  while (tok.is(Tok::Ident) && tok.text == "import" &&
         peekToken().is(Tok::String)) {
    ast::Import imp;
    imp.loc = tok.loc;
    consume();
    imp.path = tok.text;
    consume();
    module.imports.push_back(std::move(imp));
  }
  while (!tok.is(Tok::Eof)) {
    if (!tok.is(Tok::KwModel)) {
      expected("'model'");
      return std::nullopt;
    }
    module.models.emplace_back();
    if (!parseModel(module.models.back()))
      return std::nullopt;
  }
  if (module.models.empty()) {
    expected("'model' (a file holds one or more models)");
    return std::nullopt;
  }
  if (failed || diags.numErrors() != errorsBefore)
    return std::nullopt;
  return module;
}

bool Parser::parseModel(ast::Model &m) {
  consume(); // 'model'
  if (!expectName(m.name, m.loc, "a model name after 'model'"))
    return false;
  if (tok.is(Tok::Less)) {
    consume();
    do {
      std::string sym;
      ast::Location loc;
      if (!expectName(sym, loc, "a size name in '<...>'"))
        return false;
      m.syms.push_back(sym);
      m.symLocs.push_back(loc);
    } while (tok.is(Tok::Comma) && (consume(), true));
    if (!expect(Tok::Greater, "to close the size list"))
      return false;
  }
  if (!expect(Tok::LParen,
              "to start the argument list of model '" + m.name + "'"))
    return false;
  if (!tok.is(Tok::RParen)) {
    do {
      ast::Arg arg;
      if (!expectName(arg.name, arg.loc, "an argument name") ||
          !expect(Tok::Colon, "after the argument name"))
        return false;
      if (tok.is(Tok::Ident) && tok.text == "inout" &&
          peekToken().is(Tok::Ident)) {
        arg.inout = true;
        consume();
      }
      if (!parseType(arg.type))
        return false;
      m.args.push_back(std::move(arg));
    } while (tok.is(Tok::Comma) && (consume(), true));
  }
  if (!expect(Tok::RParen, "to close the argument list") ||
      !expect(Tok::Arrow, "before the result types"))
    return false;
  if (tok.is(Tok::LParen)) {
    consume();
    do {
      m.results.emplace_back();
      if (!parseType(m.results.back()))
        return false;
    } while (tok.is(Tok::Comma) && (consume(), true));
    if (!expect(Tok::RParen, "to close the result types"))
      return false;
  } else {
    m.results.emplace_back();
    if (!parseType(m.results.back()))
      return false;
  }
  if (!expect(Tok::LBrace, "to start the body of model '" + m.name + "'"))
    return false;
  while (!tok.is(Tok::RBrace)) {
    if (!parseStmt(m))
      return false;
  }
  m.end = tok.loc;
  consume(); // '}'
  return true;
}

bool Parser::parseType(ast::TensorType &t) {
  static const struct {
    const char *name;
    ast::DType dtype;
  } dtypes[] = {{"f32", ast::DType::F32},
                {"f16", ast::DType::F16},
                {"bf16", ast::DType::BF16},
                {"i32", ast::DType::I32},
                {"bool", ast::DType::Bool}};
  if (!tok.is(Tok::Ident))
    return expected("a type such as f32[B, S, 768]");
  t.loc = tok.loc;
  bool known = false;
  for (const auto &d : dtypes) {
    if (tok.text == d.name) {
      t.dtype = d.dtype;
      known = true;
    }
  }
  if (!known)
    return fail("unknown dtype '" + tok.text +
                "'; expected f32, f16, bf16, i32 or bool");
  consume();
  if (!expect(Tok::LBracket, "after the dtype"))
    return false;
  do {
    t.dims.emplace_back();
    if (!parseDim(t.dims.back()))
      return false;
  } while (tok.is(Tok::Comma) && (consume(), true));
  return expect(Tok::RBracket, "to close the shape");
}

/// `768`, `S`, or a sum of sizes and integers (`T+1`, `P+S`): a derived
/// size, written as its text; an all-integer sum is folded.
bool Parser::parseDim(ast::Dim &d) {
  d.loc = tok.loc;
  if (tok.is(Tok::Ident) || (tok.is(Tok::Number) && peekToken().is(Tok::Plus))) {
    std::string text;
    int64_t constant = 0;
    bool names = false;
    while (true) {
      if (tok.is(Tok::Ident)) {
        text += (text.empty() ? "" : "+") + tok.text;
        names = true;
      } else if (tok.is(Tok::Number) && tok.isInteger && tok.number <= kMaxDim) {
        constant += (int64_t)tok.number;
        text += (text.empty() ? "" : "+") + tok.text;
      } else {
        return expected("a size name or an integer in a sum of sizes");
      }
      consume();
      if (!tok.is(Tok::Plus))
        break;
      consume();
    }
    if (!names) {
      if (constant < 1 || constant > kMaxDim)
        return fail(d.loc, "dimension " + text + " is out of range");
      d.size = constant;
      return true;
    }
    d.sym = text;
    return true;
  }
  if (!tok.is(Tok::Number))
    return expected("a dimension (an integer or a size name)");
  if (!tok.isInteger || tok.number < 1)
    return fail("a dimension must be a positive integer, found '" + tok.text +
                "'");
  if (tok.number > double(kMaxDim))
    return fail("dimension " + tok.text + " is too large (the limit is " +
                std::to_string(kMaxDim) + ")");
  d.size = static_cast<int64_t>(tok.number);
  consume();
  return true;
}

bool Parser::parseStmt(ast::Model &m) {
  if (tok.is(Tok::KwParam)) {
    ast::Stmt s(ast::Stmt::Param, tok.loc);
    consume();
    ast::Location nameLoc;
    if (!expectName(s.name, nameLoc, "a parameter name after 'param'"))
      return false;
    s.names.push_back(s.name);
    s.nameLocs.push_back(nameLoc);
    if (!expect(Tok::Colon, "after the parameter name") || !parseType(s.type))
      return false;
    s.weightName = s.name;
    if (tok.is(Tok::Equal)) {
      consume();
      if (!tok.is(Tok::String))
        return expected("a string with the weight's name in the weights file");
      if (tok.text.empty())
        return fail("the weight name must not be empty");
      s.weightName = tok.text;
      consume();
    }
    m.body.push_back(std::move(s));
    return true;
  }
  if (tok.is(Tok::KwReturn)) {
    ast::Stmt s(ast::Stmt::Return, tok.loc);
    consume();
    do {
      ExprPtr e = parseExpr();
      if (!e)
        return false;
      s.exprs.push_back(std::move(e));
    } while (tok.is(Tok::Comma) && (consume(), true));
    m.body.push_back(std::move(s));
    return true;
  }
  if (tok.is(Tok::Ident) && tok.text == "for" && peekToken().is(Tok::Ident))
    return parseFor(m);
  if (tok.is(Tok::Ident)) {
    ast::Stmt s(ast::Stmt::Bind, tok.loc);
    s.names.push_back(tok.text);
    s.nameLocs.push_back(tok.loc);
    consume();
    if (!tok.is(Tok::Comma) && !tok.is(Tok::Equal))
      return fail("expected '=' or ',' after '" + s.names[0] +
                  "' in a binding, found " + tok.describe());
    while (tok.is(Tok::Comma)) {
      consume();
      std::string name;
      ast::Location loc;
      if (!expectName(name, loc, "a name after ',' in a binding"))
        return false;
      s.names.push_back(name);
      s.nameLocs.push_back(loc);
    }
    if (!expect(Tok::Equal, "in the binding"))
      return false;
    ExprPtr e = parseExpr();
    if (!e)
      return false;
    s.exprs.push_back(std::move(e));
    m.body.push_back(std::move(s));
    return true;
  }
  if (tok.is(Tok::Eof))
    return fail("expected '}' to close model '" + m.name +
                "', found end of file");
  return expected("a statement ('param', 'return' or 'name = ...')");
}

namespace {

/// `text` with every `{var}` replaced by `value`.
std::string substitute(std::string text, const std::string &var,
                       int64_t value) {
  std::string pat = "{" + var + "}", rep = std::to_string(value);
  for (size_t at = text.find(pat); at != std::string::npos;
       at = text.find(pat, at + rep.size()))
    text.replace(at, pat.size(), rep);
  return text;
}

/// A deep copy of `e` for iteration `value` of a loop over `var`.
ExprPtr cloneExpr(const Expr &e, const std::string &var, int64_t value) {
  auto c = std::make_unique<Expr>(e.kind, e.loc);
  c->number = e.number;
  c->isInteger = e.isInteger;
  c->name = e.name;
  c->op = e.op;
  if (e.kind == Expr::String)
    c->name = substitute(e.name, var, value);
  if (e.kind == Expr::Name && e.name == var) {
    c->kind = Expr::Number;
    c->number = double(value);
    c->isInteger = true;
    c->name.clear();
    if (value < 0) { // a negative literal is a negation, as if written
      c->number = -double(value);
      auto neg = std::make_unique<Expr>(Expr::Neg, e.loc);
      neg->args.push_back(std::move(c));
      return neg;
    }
  }
  for (const ExprPtr &a : e.args)
    c->args.push_back(cloneExpr(*a, var, value));
  for (const ast::KeywordArg &kw : e.kwargs)
    c->kwargs.push_back({kw.name, kw.loc, cloneExpr(*kw.value, var, value)});
  for (const ast::Subscript &sub : e.subscripts) {
    ast::Subscript d;
    d.kind = sub.kind;
    d.loc = sub.loc;
    d.lo = sub.lo ? cloneExpr(*sub.lo, var, value) : nullptr;
    d.hi = sub.hi ? cloneExpr(*sub.hi, var, value) : nullptr;
    c->subscripts.push_back(std::move(d));
  }
  return c;
}

} // namespace

/// `for i in A..B { stmts }`: i from A up to B - 1, unrolled (file comment).
bool Parser::parseFor(ast::Model &m) {
  ast::Location forLoc = tok.loc;
  consume(); // 'for'
  std::string var;
  ast::Location varLoc;
  if (!expectName(var, varLoc, "a loop variable after 'for'"))
    return false;
  if (!tok.is(Tok::Ident) || tok.text != "in")
    return expected("'in' after the loop variable");
  consume();
  int64_t bounds[2];
  for (int i = 0; i < 2; ++i) {
    bool neg = tok.is(Tok::Minus);
    if (neg)
      consume();
    if (!tok.is(Tok::Number) || !tok.isInteger)
      return expected(i == 0 ? "an integer to start the loop range"
                             : "an integer to end the loop range");
    if (tok.number > 1e6)
      return fail("loop bound " + tok.text + " is too large (the limit is " +
                  "1000000)");
    bounds[i] = int64_t(tok.number) * (neg ? -1 : 1);
    consume();
    if (i == 0 && !expect(Tok::DotDot, "in the loop range (A..B)"))
      return false;
  }
  if (bounds[1] - bounds[0] > 4096)
    return fail(forLoc, "a loop runs at most 4096 times, this one " +
                            std::to_string(bounds[1] - bounds[0]));
  if (!expect(Tok::LBrace, "to start the loop body"))
    return false;
  size_t first = m.body.size();
  while (!tok.is(Tok::RBrace)) {
    if (tok.is(Tok::KwParam) || tok.is(Tok::KwReturn))
      return fail(std::string(tok.is(Tok::KwParam) ? "'param'" : "'return'") +
                  " is not allowed in a loop body");
    if (!parseStmt(m))
      return false;
  }
  consume(); // '}'
  std::vector<ast::Stmt> body;
  for (size_t i = first; i < m.body.size(); ++i)
    body.push_back(std::move(m.body[i]));
  m.body.erase(m.body.begin() + first, m.body.end());
  for (int64_t v = bounds[0]; v < bounds[1]; ++v)
    for (const ast::Stmt &b : body) {
      ast::Stmt s(b.kind, b.loc);
      s.names = b.names;
      s.nameLocs = b.nameLocs;
      s.inLoop = true;
      for (const ExprPtr &e : b.exprs)
        s.exprs.push_back(cloneExpr(*e, var, v));
      m.body.push_back(std::move(s));
    }
  return true;
}

ExprPtr Parser::parseExpr() {
  ExprPtr e = parseBinary(0);
  if (e && !checkDepth(*e))
    return nullptr;
  return e;
}

/// Level 0: `|`; 1: `&`; 2: comparisons; 3: `+ -`; 4: `* /`.
ExprPtr Parser::parseBinary(int level) {
  if (level == 5)
    return parseUnary();
  ExprPtr lhs = parseBinary(level + 1);
  while (lhs) {
    static const struct {
      Tok tok;
      char op;
      int level;
    } ops[] = {{Tok::Pipe, '|', 0},      {Tok::Amp, '&', 1},
               {Tok::Less, '<', 2},      {Tok::Greater, '>', 2},
               {Tok::LessEq, 'L', 2},    {Tok::GreaterEq, 'G', 2},
               {Tok::EqEq, 'E', 2},      {Tok::NotEq, 'N', 2},
               {Tok::Plus, '+', 3},      {Tok::Minus, '-', 3},
               {Tok::Star, '*', 4},      {Tok::Slash, '/', 4}};
    char op = 0;
    for (const auto &o : ops)
      if (tok.is(o.tok) && o.level == level)
        op = o.op;
    if (!op)
      break;
    auto e = std::make_unique<Expr>(Expr::Binary, tok.loc);
    e->op = op;
    consume();
    ExprPtr rhs = parseBinary(level + 1);
    if (!rhs)
      return nullptr;
    e->args.push_back(std::move(lhs));
    e->args.push_back(std::move(rhs));
    lhs = std::move(e);
    // Left-associative chains grow the tree without recursing here.
    if (!checkDepth(*lhs))
      return nullptr;
  }
  return lhs;
}

bool Parser::checkDepth(const Expr &root) {
  // Iterative, so that it is safe on any tree the loop above can build.
  std::vector<std::pair<const Expr *, unsigned>> stack{{&root, 1}};
  while (!stack.empty()) {
    auto [e, depth] = stack.back();
    stack.pop_back();
    if (depth > kMaxExprDepth) {
      fail(root.loc, "expression is nested too deeply (more than " +
                         std::to_string(kMaxExprDepth) + " levels)");
      return false;
    }
    for (const auto &a : e->args)
      stack.push_back({a.get(), depth + 1});
    for (const auto &kw : e->kwargs)
      stack.push_back({kw.value.get(), depth + 1});
  }
  return true;
}

ExprPtr Parser::parseUnary() {
  if (!tok.is(Tok::Minus) && !tok.is(Tok::Bang))
    return parsePostfix();
  if (++nesting > kMaxExprDepth) {
    fail("expression is nested too deeply (more than " +
         std::to_string(kMaxExprDepth) + " levels)");
    return nullptr;
  }
  auto e = std::make_unique<Expr>(tok.is(Tok::Bang) ? Expr::Not : Expr::Neg,
                                  tok.loc);
  consume();
  ExprPtr x = parseUnary();
  --nesting;
  if (!x)
    return nullptr;
  e->args.push_back(std::move(x));
  return e;
}

/// A primary followed by any number of subscripts `[...]`.
ExprPtr Parser::parsePostfix() {
  ExprPtr e = parsePrimary();
  while (e && tok.is(Tok::LBracket)) {
    auto ix = std::make_unique<Expr>(Expr::Index, tok.loc);
    consume(); // '['
    do {
      ix->subscripts.emplace_back();
      if (!parseSubscript(ix->subscripts.back()))
        return nullptr;
    } while (tok.is(Tok::Comma) && (consume(), true));
    if (!expect(Tok::RBracket, "to close the subscript"))
      return nullptr;
    ix->args.push_back(std::move(e));
    e = std::move(ix);
  }
  return e;
}

/// `:`, `...`, `i`, `lo:`, `:hi` or `lo:hi`.
bool Parser::parseSubscript(ast::Subscript &sub) {
  sub.loc = tok.loc;
  if (tok.is(Tok::Ellipsis)) {
    sub.kind = ast::Subscript::Ellipsis;
    consume();
    return true;
  }
  if (!tok.is(Tok::Colon)) {
    if (!(sub.lo = parseBound()))
      return false;
    if (!tok.is(Tok::Colon)) {
      sub.kind = ast::Subscript::Index;
      return true;
    }
  }
  consume(); // ':'
  sub.kind = sub.lo ? ast::Subscript::Range : ast::Subscript::All;
  if (!tok.is(Tok::Comma) && !tok.is(Tok::RBracket)) {
    sub.kind = ast::Subscript::Range;
    if (!(sub.hi = parseBound()))
      return false;
  }
  return true;
}

/// A subscript bound: an integer, a negative one, or a size name.
ExprPtr Parser::parseBound() {
  ast::Location at = tok.loc;
  bool neg = tok.is(Tok::Minus);
  if (neg)
    consume();
  ExprPtr e;
  if (tok.is(Tok::Number) && tok.isInteger) {
    e = std::make_unique<Expr>(Expr::Number, tok.loc);
    e->number = tok.number;
  } else if (tok.is(Tok::Ident) && !neg) {
    e = std::make_unique<Expr>(Expr::Name, tok.loc);
    e->name = tok.text;
  } else {
    expected("an integer or a size name in the subscript");
    return nullptr;
  }
  consume();
  if (!neg)
    return e;
  auto n = std::make_unique<Expr>(Expr::Neg, at);
  n->args.push_back(std::move(e));
  return n;
}

ExprPtr Parser::parsePrimary() {
  if (tok.is(Tok::Number)) {
    auto e = std::make_unique<Expr>(Expr::Number, tok.loc);
    e->number = tok.number;
    e->isInteger = tok.isInteger;
    consume();
    return e;
  }
  if (tok.is(Tok::Ident)) {
    std::string name = tok.text;
    ast::Location loc = tok.loc;
    consume();
    if (tok.is(Tok::LParen))
      return parseCall(std::move(name), loc);
    auto e = std::make_unique<Expr>(Expr::Name, loc);
    e->name = std::move(name);
    return e;
  }
  if (tok.is(Tok::LParen)) {
    if (++nesting > kMaxExprDepth) {
      fail("expression is nested too deeply (more than " +
           std::to_string(kMaxExprDepth) + " levels)");
      return nullptr;
    }
    consume();
    ExprPtr e = parseBinary(0);
    --nesting;
    if (!e || !expect(Tok::RParen, "to close the parenthesis"))
      return nullptr;
    return e;
  }
  expected("an expression");
  return nullptr;
}

ExprPtr Parser::parseCall(std::string name, ast::Location loc) {
  if (++nesting > kMaxExprDepth) {
    fail(loc, "expression is nested too deeply (more than " +
                  std::to_string(kMaxExprDepth) + " levels)");
    return nullptr;
  }
  auto call = std::make_unique<Expr>(Expr::Call, loc);
  call->name = std::move(name);
  consume(); // '('
  if (!tok.is(Tok::RParen)) {
    do {
      if (tok.is(Tok::Ident) && peekToken().is(Tok::Equal)) {
        ast::KeywordArg kw;
        kw.name = tok.text;
        kw.loc = tok.loc;
        consume(); // the name
        consume(); // '='
        if (tok.is(Tok::String)) {
          kw.value = std::make_unique<Expr>(Expr::String, tok.loc);
          kw.value->name = tok.text;
          consume();
        } else {
          kw.value = parseBinary(0);
        }
        if (!kw.value)
          return nullptr;
        call->kwargs.push_back(std::move(kw));
        continue;
      }
      if (!call->kwargs.empty()) {
        fail("positional argument after keyword arguments");
        return nullptr;
      }
      ExprPtr arg = parseBinary(0);
      if (!arg)
        return nullptr;
      call->args.push_back(std::move(arg));
    } while (tok.is(Tok::Comma) && (consume(), true));
  }
  --nesting;
  if (!expect(Tok::RParen, "to close the argument list"))
    return nullptr;
  return call;
}

} // namespace

std::optional<ast::Module> parseModule(SourceDiagnostics &diags) {
  return Parser(diags).parseModule();
}

} // namespace attn
