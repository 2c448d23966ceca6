//===- Diagnostics.cpp - Located error messages for the front end ---------===//
//
// Columns are 1-based and count UTF-8 code points. The caret line copies the
// tabs of the quoted line, and leaves room for each \xNN, so the caret stays
// under the column.
//
//===----------------------------------------------------------------------===//
#include "attn/Frontend/Diagnostics.h"

#include <algorithm>
#include <cstdio>

namespace attn {
namespace {

constexpr size_t kMaxWordChars = 80; // a name in a message
constexpr size_t kMaxMessageChars = 4000;
constexpr size_t kMaxQuotedChars = 320; // of a source line, around the caret
const char *const kEllipsis = "\xE2\x80\xA6"; // …

/// One character of a string as it is printed.
struct Char {
  size_t bytes;      // consumed from the string
  std::string shown; // itself, or \xNN per byte
  unsigned width;    // columns on the screen
  bool column;       // counts as a column of the source (not a continuation)
};

/// The length of the valid UTF-8 sequence at `s[i]`, or 0.
unsigned utf8Length(const std::string &s, size_t i) {
  unsigned char c = s[i], lo = 0x80, hi = 0xBF;
  unsigned n;
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    lo = c == 0xE0 ? 0xA0 : lo; // no overlong forms
    hi = c == 0xED ? 0x9F : hi; // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    lo = c == 0xF0 ? 0x90 : lo;
    hi = c == 0xF4 ? 0x8F : hi;
  } else {
    return 0;
  }
  if (i + n > s.size())
    return 0;
  for (unsigned k = 1; k < n; ++k) {
    unsigned char b = s[i + k];
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF))
      return 0;
  }
  return n;
}

/// The character at `s[i]`: C0 controls but tab and newline, DEL, C1
/// controls (U+0080-U+009F) and bytes that are not UTF-8 are escaped.
Char nextChar(const std::string &s, size_t i) {
  unsigned char c = s[i];
  unsigned n = utf8Length(s, i);
  bool column = (c & 0xC0) != 0x80;
  bool unsafe = n == 0 || (c < 0x20 && c != '\t' && c != '\n') || c == 0x7F ||
                (c == 0xC2 && (unsigned char)s[i + 1] < 0xA0);
  if (!unsafe)
    return {n, s.substr(i, n), 1, column};
  n = std::max(n, 1u);
  std::string shown;
  for (unsigned k = 0; k < n; ++k) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02X", (unsigned char)s[i + k]);
    shown += buf;
  }
  return {n, shown, 4 * n, column};
}

std::string escaped(const std::string &s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    Char c = nextChar(s, i);
    out += c.shown;
    i += c.bytes;
  }
  return out;
}

} // namespace

std::string displayText(const std::string &message) {
  std::string out;
  size_t word = 0, total = 0;
  for (size_t i = 0; i < message.size();) {
    Char c = nextChar(message, i);
    i += c.bytes;
    bool separator =
        c.shown.size() == 1 &&
        std::string(" \t\n'\"/,:;=()[]").find(c.shown[0]) != std::string::npos;
    word = separator ? 0 : word + 1;
    if (word > kMaxWordChars) {
      if (word == kMaxWordChars + 1)
        out += kEllipsis;
      continue;
    }
    if (++total > kMaxMessageChars) {
      out += kEllipsis;
      break;
    }
    out += c.shown;
  }
  return out;
}

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
  std::string file = escaped(fileName), text = displayText(message);
  if (loc.line == 0) {
    os << file << ": " << kind << ": " << text << "\n";
    return;
  }
  os << file << ":" << loc.line << ":" << loc.col << ": " << kind << ": "
     << text << "\n";
  // The line's characters, and the one the caret marks (past the end for a
  // column there, at EOF).
  std::string src = line(loc.line);
  std::vector<Char> chars;
  size_t at = std::string::npos;
  unsigned col = 1;
  for (size_t i = 0; i < src.size();) {
    Char c = nextChar(src, i);
    if (at == std::string::npos && c.column && col >= loc.col)
      at = chars.size();
    col += c.column;
    i += c.bytes;
    chars.push_back(std::move(c));
  }
  unsigned past = 0;
  if (at == std::string::npos) {
    at = chars.size();
    past = loc.col > col ? loc.col - col : 0;
  }
  // A long line is quoted around the caret.
  size_t lo = 0, hi = chars.size();
  if (chars.size() > kMaxQuotedChars) {
    lo = at > kMaxQuotedChars / 2 ? at - kMaxQuotedChars / 2 : 0;
    hi = std::min(chars.size(), lo + kMaxQuotedChars);
  }
  std::string quoted = lo ? kEllipsis : "", caret = lo ? " " : "";
  for (size_t k = lo; k < hi; ++k) {
    quoted += chars[k].shown;
    if (k < at)
      caret += chars[k].shown == "\t" ? "\t" : std::string(chars[k].width, ' ');
  }
  if (hi < chars.size())
    quoted += kEllipsis;
  os << quoted << "\n" << caret << std::string(past, ' ') << "^\n";
}

} // namespace attn
