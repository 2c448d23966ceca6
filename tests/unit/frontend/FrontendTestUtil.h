//===- FrontendTestUtil.h - Helpers for the front-end unit tests -*- C++
//-*-===//
#ifndef ATTN_TESTS_FRONTEND_TESTUTIL_H
#define ATTN_TESTS_FRONTEND_TESTUTIL_H

#include "attn/Frontend/Frontend.h"

#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace attn {
namespace test {

/// The whole text of `path` ("" if it cannot be read).
inline std::string readFile(const std::string &path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// Parses (and with `check`, type-checks) `src` as the file "t.attn".
struct Compiled {
  std::optional<ast::Module> module;
  bool ok = false;
  std::string diags;

  /// The first line of the diagnostics: "t.attn:L:C: error: ...".
  std::string firstError() const { return diags.substr(0, diags.find('\n')); }
  unsigned numErrors() const {
    unsigned n = 0;
    for (size_t p = diags.find(": error: "); p != std::string::npos;
         p = diags.find(": error: ", p + 1))
      ++n;
    return n;
  }
};

inline Compiled compile(const std::string &src, bool check = true) {
  Compiled c;
  std::ostringstream os;
  SourceDiagnostics diags("t.attn", src, os);
  c.module = parseModule(diags);
  c.ok = c.module.has_value();
  if (c.ok && check)
    c.ok = checkModule(*c.module, diags);
  c.diags = os.str();
  return c;
}

/// A one-model file: `model m<sizes>(args) -> results {` on line 1, then
/// `body` from line 2.
inline std::string model(const std::string &body,
                         const std::string &args = "x: f32[B, S, 768]",
                         const std::string &results = "f32[B, S, 768]",
                         const std::string &sizes = "B, S") {
  return "model m<" + sizes + ">(" + args + ") -> " + results + " {\n" + body +
         "\n}\n";
}

/// The statement of `m` that binds `name` (or the return for "return").
inline const ast::Stmt *findStmt(const ast::Model &m, const std::string &name) {
  for (const ast::Stmt &s : m.body) {
    if (name == "return" && s.kind == ast::Stmt::Return)
      return &s;
    for (const std::string &n : s.names)
      if (n == name && s.kind == ast::Stmt::Bind)
        return &s;
  }
  return nullptr;
}

/// The checked types of the expression bound to `name`, joined by "; ".
inline std::string typeOf(const Compiled &c, const std::string &name) {
  if (!c.module || c.module->models.empty())
    return "<no module>";
  const ast::Stmt *s = findStmt(c.module->models.back(), name);
  if (!s || s->exprs.empty())
    return "<no statement " + name + ">";
  std::string out;
  for (const ast::ValueType &t : s->exprs[0]->types)
    out += (out.empty() ? "" : "; ") + t.str();
  return out;
}

} // namespace test
} // namespace attn

#endif // ATTN_TESTS_FRONTEND_TESTUTIL_H
