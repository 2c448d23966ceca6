//===- Frontend.h - Lexer, parser and semantic checks -----------*- C++ -*-===//
#ifndef ATTN_FRONTEND_FRONTEND_H
#define ATTN_FRONTEND_FRONTEND_H

#include "attn/Frontend/AST.h"
#include "attn/Frontend/Diagnostics.h"

#include <cstddef>
#include <optional>
#include <ostream>
#include <string>

namespace attn {

/// The most bytes attnc reads from one input file: a .attn or .mlir file, an
/// imported file or a schedule file.
constexpr size_t kMaxInputBytes = size_t(64) << 20;

/// Reads `path` ("-" is stdin) into `text`, stopping past kMaxInputBytes
/// (so /dev/zero and FIFOs end too). On failure, returns false and sets
/// `reason` ("No such file or directory", "larger than 64 MiB ...").
bool readInputFile(const std::string &path, std::string &text,
                   std::string &reason);

/// The longest model name: a library's files and symbols are named after
/// its models (`attn_<model>.o`), and a file name has at most 255 bytes.
constexpr size_t kMaxModelNameChars = 200;

/// The highest rank of a model's inputs, params and outputs: the runtime's
/// ATTN_MAX_RANK (attn/runtime.h; Symbols.cpp checks they agree).
constexpr size_t kMaxRank = 16;

/// Why `name` cannot name a model of a library (too long, or not a C
/// identifier), or "" if it can.
std::string badModelName(const std::string &name);

/// A symbol that a library would define for both models `a` and `b`
/// (`m` and `m_argv` both give `attn_m_argv`), or "". Same names give "".
std::string sharedSymbol(const std::string &a, const std::string &b);

/// A symbol of model `name` that the library's table or the runtime's C
/// API (attn/abi.h, attn/runtime.h) already defines, or "".
std::string reservedSymbol(const std::string &name);

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
