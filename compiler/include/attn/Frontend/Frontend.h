//===- Frontend.h - Lexer, parser and semantic checks -----------*- C++ -*-===//
#ifndef ATTN_FRONTEND_FRONTEND_H
#define ATTN_FRONTEND_FRONTEND_H

#include "attn/Frontend/AST.h"
#include "attn/Frontend/Diagnostics.h"

#include <optional>
#include <ostream>

namespace attn {

/// Parses the whole buffer held by `diags`. Reports the first syntax error
/// and returns std::nullopt on failure.
std::optional<ast::Module> parseModule(SourceDiagnostics &diags);

/// True if `name` is a built-in function of the language (a call of it
/// never names a model).
bool isBuiltin(const std::string &name);

/// Parses and checks the files `module` imports (relative to its file, each
/// once, errors reported with their own file names on `os`) and adds their
/// models to module.imported. Returns false after reporting errors.
bool loadImports(ast::Module &module, SourceDiagnostics &diags,
                 std::ostream &os);

/// Resolves names, checks every call (arity, keywords, dtypes, symbolic
/// shapes) and fills `Expr::types`. Returns false after reporting errors.
bool checkModule(ast::Module &module, SourceDiagnostics &diags);

} // namespace attn

#endif // ATTN_FRONTEND_FRONTEND_H
