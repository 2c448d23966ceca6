//===- Diagnostics.h - Located error messages for the front end -*- C++ -*-===//
//
// Every front-end error is printed as
//
//   file:line:col: error: message
//     <the source line>
//     <spaces>^
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_FRONTEND_DIAGNOSTICS_H
#define ATTN_FRONTEND_DIAGNOSTICS_H

#include "attn/Frontend/AST.h"

#include <ostream>
#include <string>
#include <vector>

namespace attn {

/// Holds one source buffer and formats errors located in it.
class SourceDiagnostics {
public:
  SourceDiagnostics(std::string file, std::string text, std::ostream &os);

  void error(ast::Location loc, const std::string &message);
  void note(ast::Location loc, const std::string &message);

  unsigned numErrors() const { return errors; }
  const std::string &file() const { return fileName; }
  const std::string &text() const { return source; }
  /// The text of 1-based line `n`, without its newline ("" if out of range).
  std::string line(unsigned n) const;

private:
  void emit(ast::Location loc, const char *kind, const std::string &message);
  std::string fileName;
  std::string source;
  std::vector<size_t> lineStarts;
  std::ostream &os;
  unsigned errors = 0;
};

} // namespace attn

#endif // ATTN_FRONTEND_DIAGNOSTICS_H
