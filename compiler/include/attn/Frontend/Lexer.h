//===- Lexer.h - Tokens of the attn language --------------------*- C++ -*-===//
//
// Splits a source buffer into tokens. Newlines are whitespace and `#` starts a
// comment that runs to the end of the line. Lexical errors (an unexpected
// character, an unterminated string) are reported through SourceDiagnostics
// and produce a Tok::Error token.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_FRONTEND_LEXER_H
#define ATTN_FRONTEND_LEXER_H

#include "attn/Frontend/AST.h"
#include "attn/Frontend/Diagnostics.h"

#include <string>

namespace attn {

enum class Tok {
  Eof,
  Error,
  Ident,
  Number,
  String,
  KwModel,
  KwParam,
  KwReturn,
  LParen,
  RParen,
  LBracket,
  RBracket,
  LBrace,
  RBrace,
  Less,
  Greater,
  Comma,
  Colon,
  Equal,
  Plus,
  Minus,
  Star,
  Slash,
  Amp,
  Pipe,      // |
  Bang,      // !
  LessEq,    // <=
  GreaterEq, // >=
  EqEq,      // ==
  NotEq,     // !=
  DotDot,    // ..  (in `for i in 0..6`)
  Ellipsis,  // ... (in a subscript)
  Arrow
};

struct Token {
  Tok kind = Tok::Eof;
  /// Identifier or keyword text, the number as written, the decoded contents
  /// of a string, or the punctuation itself.
  std::string text;
  double number = 0;     // Number
  bool isInteger = true; // Number: written without '.' or exponent
  ast::Location loc;

  bool is(Tok k) const { return kind == k; }
  /// How an error message names the token: `'='`, `'foo'`, `string "x"`,
  /// `end of file`.
  std::string describe() const;
};

/// The spelling of a token kind for messages: "')'", "'->'", "a name".
const char *tokName(Tok kind);

class Lexer {
public:
  explicit Lexer(SourceDiagnostics &diags);
  /// The next token; Tok::Eof forever at the end, Tok::Error after reporting a
  /// lexical error.
  Token next();

private:
  char peek(size_t ahead = 0) const;
  void advance();
  void skipSpaceAndComments();
  Token lexNumber(Token tok);
  Token lexString(Token tok);
  Token error(ast::Location loc, const std::string &message);

  SourceDiagnostics &diags;
  const std::string &src;
  size_t pos = 0;
  unsigned line = 1, col = 1;
};

} // namespace attn

#endif // ATTN_FRONTEND_LEXER_H
