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

  ExprPtr parseExpr();
  ExprPtr parseBinary(int level);
  ExprPtr parseUnary();
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
          !expect(Tok::Colon, "after the argument name") ||
          !parseType(arg.type))
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

bool Parser::parseDim(ast::Dim &d) {
  d.loc = tok.loc;
  if (tok.is(Tok::Ident)) {
    d.sym = tok.text;
    consume();
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

ExprPtr Parser::parseExpr() {
  ExprPtr e = parseBinary(0);
  if (e && !checkDepth(*e))
    return nullptr;
  return e;
}

/// Level 0: `&`; level 1: `+ -`; level 2: `* /`.
ExprPtr Parser::parseBinary(int level) {
  if (level == 3)
    return parseUnary();
  ExprPtr lhs = parseBinary(level + 1);
  while (lhs) {
    char op = tok.is(Tok::Amp)     ? '&'
              : tok.is(Tok::Plus)  ? '+'
              : tok.is(Tok::Minus) ? '-'
              : tok.is(Tok::Star)  ? '*'
              : tok.is(Tok::Slash) ? '/'
                                   : 0;
    int opLevel = op == '&' ? 0 : (op == '+' || op == '-') ? 1 : 2;
    if (!op || opLevel != level)
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
  if (!tok.is(Tok::Minus))
    return parsePrimary();
  if (++nesting > kMaxExprDepth) {
    fail("expression is nested too deeply (more than " +
         std::to_string(kMaxExprDepth) + " levels)");
    return nullptr;
  }
  auto e = std::make_unique<Expr>(Expr::Neg, tok.loc);
  consume();
  ExprPtr x = parseUnary();
  --nesting;
  if (!x)
    return nullptr;
  e->args.push_back(std::move(x));
  return e;
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
