//===- Diagnostics.h - Located error messages for the front end -*- C++ -*-===//
//
// Every front-end error is printed as
//
//   file:line:col: error: message
//     <the source line>
//     <spaces>^
//
// The driver prints MLIR's diagnostics through the same class, so this is
// the one place where messages reach the terminal: bytes a terminal would
// act on (C0 controls but tab, DEL, C1 controls, bytes that are not UTF-8)
// are shown as \xNN, long words of a message are cut with "…", and a long
// source line is quoted around the caret.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_FRONTEND_DIAGNOSTICS_H
#define ATTN_FRONTEND_DIAGNOSTICS_H

#include "attn/Frontend/AST.h"

#include <ostream>
#include <string>
#include <vector>

namespace attn {

/// `message` as it is safe to print: unsafe bytes escaped as \xNN (newlines
/// and tabs kept), each word (a run without spaces or quotes, e.g. a name)
/// cut after 80 characters and the whole after 2000, with "…".
std::string displayText(const std::string &message);

/// Holds one source buffer and formats errors located in it.
class SourceDiagnostics {
public:
  SourceDiagnostics(std::string file, std::string text, std::ostream &os);

  void error(ast::Location loc, const std::string &message);
  void note(ast::Location loc, const std::string &message);
  /// Prints one diagnostic of kind `kind` ("error", "warning", ...) without
  /// counting it.
  void emit(ast::Location loc, const char *kind, const std::string &message);

  unsigned numErrors() const { return errors; }
  const std::string &file() const { return fileName; }
  const std::string &text() const { return source; }
  /// The text of 1-based line `n`, without its newline ("" if out of range).
  std::string line(unsigned n) const;

private:
  std::string fileName;
  std::string source;
  std::vector<size_t> lineStarts;
  std::ostream &os;
  unsigned errors = 0;
};

} // namespace attn

#endif // ATTN_FRONTEND_DIAGNOSTICS_H
