//===- Diagnostics.cpp - Located error messages for the front end ---------===//
//
// Columns are 1-based and count UTF-8 code points. The caret line copies the
// tabs of the quoted line so the caret stays under the column.
//
//===----------------------------------------------------------------------===//
#include "attn/Frontend/Diagnostics.h"

namespace attn {

SourceDiagnostics::SourceDiagnostics(std::string file, std::string text,
                                     std::ostream &os)
    : fileName(std::move(file)), source(std::move(text)), os(os) {
  lineStarts.push_back(0);
  for (size_t i = 0; i < source.size(); ++i)
    if (source[i] == '\n')
      lineStarts.push_back(i + 1);
}

std::string SourceDiagnostics::line(unsigned n) const {
  if (n == 0 || n > lineStarts.size())
    return "";
  size_t start = lineStarts[n - 1];
  size_t end = source.find('\n', start);
  if (end == std::string::npos)
    end = source.size();
  if (end > start && source[end - 1] == '\r')
    --end;
  return source.substr(start, end - start);
}

void SourceDiagnostics::error(ast::Location loc, const std::string &message) {
  ++errors;
  emit(loc, "error", message);
}

void SourceDiagnostics::note(ast::Location loc, const std::string &message) {
  emit(loc, "note", message);
}

void SourceDiagnostics::emit(ast::Location loc, const char *kind,
                             const std::string &message) {
  if (loc.line == 0) {
    os << fileName << ": " << kind << ": " << message << "\n";
    return;
  }
  os << fileName << ":" << loc.line << ":" << loc.col << ": " << kind << ": "
     << message << "\n";
  std::string text = line(loc.line);
  os << text << "\n";
  std::string caret;
  unsigned col = 1;
  for (char c : text) {
    if ((c & 0xC0) == 0x80)
      continue; // a UTF-8 continuation byte: same column
    if (col >= loc.col)
      break;
    caret += c == '\t' ? '\t' : ' ';
    ++col;
  }
  for (; col < loc.col; ++col) // a column past the end of the line (EOF)
    caret += ' ';
  os << caret << "^\n";
}

} // namespace attn
