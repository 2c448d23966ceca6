//===- Lexer.cpp - Tokens of the attn language ----------------------------===//
//
// Columns count characters (UTF-8 code points), not bytes, so the caret that
// SourceDiagnostics draws lines up with what the user sees.
//
//===----------------------------------------------------------------------===//
#include "attn/Frontend/Lexer.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace attn {

static bool isIdentStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool isDigit(char c) { return c >= '0' && c <= '9'; }
static bool isIdentChar(char c) { return isIdentStart(c) || isDigit(c); }
static bool isContinuationByte(char c) { return (c & 0xC0) == 0x80; }

const char *tokName(Tok kind) {
  switch (kind) {
  case Tok::Eof:
    return "end of file";
  case Tok::Error:
    return "an invalid token";
  case Tok::Ident:
    return "a name";
  case Tok::Number:
    return "a number";
  case Tok::String:
    return "a string";
  case Tok::KwModel:
    return "'model'";
  case Tok::KwParam:
    return "'param'";
  case Tok::KwReturn:
    return "'return'";
  case Tok::LParen:
    return "'('";
  case Tok::RParen:
    return "')'";
  case Tok::LBracket:
    return "'['";
  case Tok::RBracket:
    return "']'";
  case Tok::LBrace:
    return "'{'";
  case Tok::RBrace:
    return "'}'";
  case Tok::Less:
    return "'<'";
  case Tok::Greater:
    return "'>'";
  case Tok::Comma:
    return "','";
  case Tok::Colon:
    return "':'";
  case Tok::Equal:
    return "'='";
  case Tok::Plus:
    return "'+'";
  case Tok::Minus:
    return "'-'";
  case Tok::Star:
    return "'*'";
  case Tok::Slash:
    return "'/'";
  case Tok::Amp:
    return "'&'";
  case Tok::Pipe:
    return "'|'";
  case Tok::Bang:
    return "'!'";
  case Tok::LessEq:
    return "'<='";
  case Tok::GreaterEq:
    return "'>='";
  case Tok::EqEq:
    return "'=='";
  case Tok::NotEq:
    return "'!='";
  case Tok::DotDot:
    return "'..'";
  case Tok::Ellipsis:
    return "'...'";
  case Tok::Arrow:
    return "'->'";
  }
  return "a token";
}

std::string Token::describe() const {
  switch (kind) {
  case Tok::Eof:
  case Tok::Error:
    return tokName(kind);
  case Tok::String: {
    std::string s = "string \"";
    for (char c : text)
      s += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
    return s + "\"";
  }
  default:
    return "'" + text + "'";
  }
}

Lexer::Lexer(SourceDiagnostics &diags) : diags(diags), src(diags.text()) {}

char Lexer::peek(size_t ahead) const {
  return pos + ahead < src.size() ? src[pos + ahead] : '\0';
}

void Lexer::advance() {
  if (pos >= src.size())
    return;
  char c = src[pos++];
  if (c == '\n') {
    ++line;
    col = 1;
  } else if (!isContinuationByte(c)) {
    ++col;
  }
}

void Lexer::skipSpaceAndComments() {
  while (pos < src.size()) {
    char c = peek();
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
        c == '\v') {
      advance();
    } else if (c == '#') {
      while (pos < src.size() && peek() != '\n')
        advance();
    } else {
      return;
    }
  }
}

Token Lexer::error(ast::Location loc, const std::string &message) {
  diags.error(loc, message);
  Token tok;
  tok.kind = Tok::Error;
  tok.loc = loc;
  pos = src.size(); // stop: the parser reports only the first error
  return tok;
}

Token Lexer::next() {
  skipSpaceAndComments();
  Token tok;
  tok.loc = {line, col};
  if (pos >= src.size()) {
    tok.kind = Tok::Eof;
    return tok;
  }
  char c = peek();
  if (isIdentStart(c)) {
    size_t start = pos;
    while (isIdentChar(peek()))
      advance();
    tok.text = src.substr(start, pos - start);
    tok.kind = tok.text == "model"    ? Tok::KwModel
               : tok.text == "param"  ? Tok::KwParam
               : tok.text == "return" ? Tok::KwReturn
                                      : Tok::Ident;
    return tok;
  }
  if (isDigit(c))
    return lexNumber(tok);
  if (c == '"')
    return lexString(tok);

  static const struct {
    char c;
    Tok kind;
  } punct[] = {{'(', Tok::LParen},   {')', Tok::RParen},  {'[', Tok::LBracket},
               {']', Tok::RBracket}, {'{', Tok::LBrace},  {'}', Tok::RBrace},
               {'<', Tok::Less},     {'>', Tok::Greater}, {',', Tok::Comma},
               {':', Tok::Colon},    {'=', Tok::Equal},   {'+', Tok::Plus},
               {'*', Tok::Star},     {'/', Tok::Slash},   {'&', Tok::Amp},
               {'|', Tok::Pipe},     {'!', Tok::Bang}};
  // Two- and three-character operators first.
  static const struct {
    const char *text;
    Tok kind;
  } multi[] = {{"...", Tok::Ellipsis}, {"..", Tok::DotDot},
               {"<=", Tok::LessEq},    {">=", Tok::GreaterEq},
               {"==", Tok::EqEq},      {"!=", Tok::NotEq}};
  for (const auto &m : multi) {
    size_t n = std::char_traits<char>::length(m.text);
    if (src.compare(pos, n, m.text) != 0)
      continue;
    for (size_t i = 0; i < n; ++i)
      advance();
    tok.kind = m.kind;
    tok.text = m.text;
    return tok;
  }
  if (c == '-') {
    advance();
    if (peek() == '>') {
      advance();
      tok.kind = Tok::Arrow;
      tok.text = "->";
    } else {
      tok.kind = Tok::Minus;
      tok.text = "-";
    }
    return tok;
  }
  for (const auto &p : punct) {
    if (p.c == c) {
      advance();
      tok.kind = p.kind;
      tok.text = std::string(1, c);
      return tok;
    }
  }

  // Quote the whole offending character: a printable ASCII one as is, a
  // UTF-8 sequence as its bytes, anything else as \xNN.
  std::string shown;
  unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x80 && !isContinuationByte(c)) {
    shown += c;
    for (size_t i = 1; i < 4 && isContinuationByte(peek(i)); ++i)
      shown += peek(i);
  } else if (u >= 0x20 && u < 0x7f) {
    shown = std::string(1, c);
  } else {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02X", u);
    shown = buf;
  }
  return error(tok.loc, "unexpected character '" + shown + "'");
}

Token Lexer::lexNumber(Token tok) {
  size_t start = pos;
  while (isDigit(peek()))
    advance();
  if (peek() == '.' && isDigit(peek(1))) {
    tok.isInteger = false;
    advance();
    while (isDigit(peek()))
      advance();
  }
  if ((peek() == 'e' || peek() == 'E') &&
      (isDigit(peek(1)) ||
       ((peek(1) == '+' || peek(1) == '-') && isDigit(peek(2))))) {
    tok.isInteger = false;
    advance();
    if (peek() == '+' || peek() == '-')
      advance();
    while (isDigit(peek()))
      advance();
  }
  tok.kind = Tok::Number;
  tok.text = src.substr(start, pos - start);
  errno = 0;
  tok.number = std::strtod(tok.text.c_str(), nullptr);
  if (errno == ERANGE && std::isinf(tok.number))
    return error(tok.loc, "number '" + tok.text + "' is out of range");
  if (errno == ERANGE) // underflow: a denormal or 0 is what was meant
    errno = 0;
  return tok;
}

Token Lexer::lexString(Token tok) {
  advance(); // the opening quote
  std::string value;
  while (true) {
    if (pos >= src.size() || peek() == '\n')
      return error(tok.loc, "unterminated string");
    char c = peek();
    if (c == '"') {
      advance();
      break;
    }
    if (c == '\\') {
      char e = peek(1);
      if (e != '"' && e != '\\') {
        if (pos + 1 >= src.size() || e == '\n')
          return error(tok.loc, "unterminated string");
        ast::Location at{line, col};
        unsigned char u = static_cast<unsigned char>(e);
        char shown[8] = {e, 0};
        if (u < 0x20 || u >= 0x7f)
          std::snprintf(shown, sizeof shown, "\\x%02X", u);
        return error(at, std::string("unknown escape sequence '\\") + shown +
                             "' in string; only \\\" and \\\\ are allowed");
      }
      advance();
      c = e;
    } else if ((unsigned char)c < 0x20 || c == 0x7F) {
      // Strings name weights and files: a NUL would cut the name short.
      char shown[8];
      std::snprintf(shown, sizeof shown, "\\x%02X", (unsigned char)c);
      return error({line, col}, std::string("control character '") + shown +
                                    "' in a string");
    }
    value += c;
    advance();
  }
  tok.kind = Tok::String;
  tok.text = value;
  return tok;
}

} // namespace attn
