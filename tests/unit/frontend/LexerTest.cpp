//===- LexerTest.cpp - Tokens, numbers, strings, positions ----------------===//
#include "attn/Frontend/Lexer.h"

#include <gtest/gtest.h>

#include <sstream>
#include <vector>

using namespace attn;

namespace {

struct Lexed {
  std::vector<Token> toks;
  std::string diags;
};

Lexed lexAll(const std::string &src) {
  Lexed out;
  std::ostringstream os;
  SourceDiagnostics diags("t.attn", src, os);
  Lexer lexer(diags);
  while (true) {
    out.toks.push_back(lexer.next());
    Tok k = out.toks.back().kind;
    if (k == Tok::Eof || k == Tok::Error)
      break;
  }
  out.diags = os.str();
  return out;
}

std::vector<Tok> kinds(const std::string &src) {
  std::vector<Tok> ks;
  for (const Token &t : lexAll(src).toks)
    ks.push_back(t.kind);
  return ks;
}

TEST(Lexer, AllTokenKinds) {
  std::vector<Tok> want = {
      Tok::KwModel, Tok::KwParam,  Tok::KwReturn, Tok::Ident,  Tok::LParen,
      Tok::RParen,  Tok::LBracket, Tok::RBracket, Tok::LBrace, Tok::RBrace,
      Tok::Less,    Tok::Greater,  Tok::Comma,    Tok::Colon,  Tok::Equal,
      Tok::Plus,    Tok::Minus,    Tok::Star,     Tok::Slash,  Tok::Amp,
      Tok::Arrow,   Tok::Number,   Tok::String,   Tok::Eof};
  EXPECT_EQ(kinds("model param return foo ( ) [ ] { } < > , : = + - * / & -> "
                  "12 \"s\""),
            want);
}

TEST(Lexer, IdentifiersAndKeywords) {
  Lexed l = lexAll("_a1 modelx Model f32 bf16 return_");
  ASSERT_EQ(l.toks.size(), 7u);
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(l.toks[i].kind, Tok::Ident) << i;
  EXPECT_EQ(l.toks[0].text, "_a1");
  EXPECT_EQ(l.toks[4].text, "bf16");
}

TEST(Lexer, Numbers) {
  Lexed l = lexAll("12 0.125 1e-12 10000.0 2E+3 7e2");
  ASSERT_EQ(l.toks.size(), 7u);
  EXPECT_EQ(l.toks[0].number, 12);
  EXPECT_TRUE(l.toks[0].isInteger);
  EXPECT_EQ(l.toks[1].number, 0.125);
  EXPECT_FALSE(l.toks[1].isInteger);
  EXPECT_EQ(l.toks[2].number, 1e-12);
  EXPECT_FALSE(l.toks[2].isInteger);
  EXPECT_EQ(l.toks[2].text, "1e-12");
  EXPECT_EQ(l.toks[3].number, 10000.0);
  EXPECT_FALSE(l.toks[3].isInteger);
  EXPECT_EQ(l.toks[4].number, 2000);
  EXPECT_EQ(l.toks[5].number, 700);
}

TEST(Lexer, NumberFollowedByName) {
  // `1e` is not an exponent: the number stops and a name follows.
  EXPECT_EQ(kinds("1e"), (std::vector<Tok>{Tok::Number, Tok::Ident, Tok::Eof}));
  EXPECT_EQ(kinds("2x"), (std::vector<Tok>{Tok::Number, Tok::Ident, Tok::Eof}));
  // `-1` is a minus and a number; the parser builds the negation.
  EXPECT_EQ(kinds("-1"), (std::vector<Tok>{Tok::Minus, Tok::Number, Tok::Eof}));
}

TEST(Lexer, NumberOutOfRange) {
  Lexed l = lexAll("x = 1e999");
  EXPECT_EQ(l.toks.back().kind, Tok::Error);
  EXPECT_EQ(l.diags, "t.attn:1:5: error: number '1e999' is out of range\n"
                     "x = 1e999\n"
                     "    ^\n");
}

TEST(Lexer, Strings) {
  Lexed l = lexAll(R"("interleaved" "a\"b\\c" "")");
  ASSERT_EQ(l.toks.size(), 4u);
  EXPECT_EQ(l.toks[0].text, "interleaved");
  EXPECT_EQ(l.toks[1].text, "a\"b\\c");
  EXPECT_EQ(l.toks[2].text, "");
  EXPECT_EQ(l.toks[1].describe(), R"(string "a\"b\\c")");
}

TEST(Lexer, UnterminatedString) {
  Lexed l = lexAll("param w: f32[4] = \"abc\nx");
  EXPECT_EQ(l.toks.back().kind, Tok::Error);
  EXPECT_EQ(l.diags, "t.attn:1:19: error: unterminated string\n"
                     "param w: f32[4] = \"abc\n"
                     "                  ^\n");
  EXPECT_EQ(lexAll("\"abc").toks.back().kind, Tok::Error);
  EXPECT_EQ(lexAll("\"abc\\").toks.back().kind, Tok::Error);
}

TEST(Lexer, UnknownEscape) {
  Lexed l = lexAll(R"(x "a\nb")");
  EXPECT_EQ(l.toks.back().kind, Tok::Error);
  EXPECT_EQ(
      l.diags.substr(0, l.diags.find('\n')),
      R"(t.attn:1:5: error: unknown escape sequence '\n' in string; only \" and \\ are allowed)");
}

TEST(Lexer, CommentsAndNewlines) {
  Lexed l = lexAll("# a comment ( $ \"\nfoo # trailing\n  bar#x\n");
  ASSERT_EQ(l.toks.size(), 3u);
  EXPECT_EQ(l.toks[0].text, "foo");
  EXPECT_EQ(l.toks[0].loc.line, 2u);
  EXPECT_EQ(l.toks[0].loc.col, 1u);
  EXPECT_EQ(l.toks[1].text, "bar");
  EXPECT_EQ(l.toks[1].loc.line, 3u);
  EXPECT_EQ(l.toks[1].loc.col, 3u);
  EXPECT_EQ(l.toks[2].kind, Tok::Eof);
}

TEST(Lexer, Positions) {
  Lexed l = lexAll("model m(\n\tx: f32[B])->");
  ASSERT_GE(l.toks.size(), 11u);
  auto at = [&](size_t i, unsigned line, unsigned col) {
    EXPECT_EQ(l.toks[i].loc.line, line) << "token " << i;
    EXPECT_EQ(l.toks[i].loc.col, col) << "token " << i;
  };
  at(0, 1, 1);   // model
  at(1, 1, 7);   // m
  at(2, 1, 8);   // (
  at(3, 2, 2);   // x (a tab is one column)
  at(4, 2, 3);   // :
  at(5, 2, 5);   // f32
  at(6, 2, 8);   // [
  at(9, 2, 11);  // )
  at(10, 2, 12); // ->
}

TEST(Lexer, ColumnsCountCharactersNotBytes) {
  Lexed l = lexAll("# h\xC3\xA9\n\"\xC3\xA9\" x");
  ASSERT_EQ(l.toks.size(), 3u);
  EXPECT_EQ(l.toks[1].loc.col, 5u);
}

TEST(Lexer, UnexpectedCharacter) {
  Lexed l = lexAll("a $ b");
  EXPECT_EQ(l.toks.back().kind, Tok::Error);
  EXPECT_EQ(l.diags, "t.attn:1:3: error: unexpected character '$'\n"
                     "a $ b\n"
                     "  ^\n");
  Lexed u = lexAll("x = \xC3\xA9");
  EXPECT_EQ(u.diags.substr(0, u.diags.find('\n')),
            "t.attn:1:5: error: unexpected character '\xC3\xA9'");
  Lexed c = lexAll(std::string("x\x01", 2));
  EXPECT_EQ(c.diags.substr(0, c.diags.find('\n')),
            "t.attn:1:2: error: unexpected character '\\x01'");
  Lexed z = lexAll(std::string("x\0", 2));
  EXPECT_EQ(z.toks.back().kind, Tok::Error);
  EXPECT_EQ(lexAll(".5").toks.back().kind, Tok::Error);
}

TEST(Lexer, EofIsSticky) {
  std::ostringstream os;
  SourceDiagnostics diags("t.attn", "x", os);
  Lexer lexer(diags);
  EXPECT_EQ(lexer.next().kind, Tok::Ident);
  EXPECT_EQ(lexer.next().kind, Tok::Eof);
  EXPECT_EQ(lexer.next().kind, Tok::Eof);
}

TEST(Diagnostics, Format) {
  std::ostringstream os;
  SourceDiagnostics diags("f.attn", "first\n\tab x\r\nlast", os);
  diags.error({2, 5}, "bad x");
  diags.note({3, 1}, "here");
  diags.error({}, "no location");
  EXPECT_EQ(os.str(), "f.attn:2:5: error: bad x\n"
                      "\tab x\n"
                      "\t   ^\n"
                      "f.attn:3:1: note: here\n"
                      "last\n"
                      "^\n"
                      "f.attn: error: no location\n");
  EXPECT_EQ(diags.numErrors(), 2u);
  EXPECT_EQ(diags.line(1), "first");
  EXPECT_EQ(diags.line(2), "\tab x");
  EXPECT_EQ(diags.line(4), "");
  EXPECT_EQ(diags.line(0), "");
}

} // namespace
