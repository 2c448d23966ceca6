//===- NamesTest.cpp - Model symbols, input limits, safe messages ---------===//
#include "FrontendTestUtil.h"

#include <cstdio>

using namespace attn;
using namespace attn::test;

TEST(Names, ModelNames) {
  EXPECT_EQ(badModelName("bert_layer"), "");
  EXPECT_EQ(badModelName(std::string(kMaxModelNameChars, 'a')), "");
  EXPECT_EQ(badModelName(std::string(kMaxModelNameChars + 1, 'a')),
            "is 201 characters long; the limit is 200");
  EXPECT_NE(badModelName("a-b"), "");
  EXPECT_NE(badModelName("1a"), "");
  EXPECT_NE(badModelName(""), "");
}

TEST(Names, SharedSymbols) {
  EXPECT_EQ(sharedSymbol("m", "m"), "");
  EXPECT_EQ(sharedSymbol("m", "n"), "");
  EXPECT_EQ(sharedSymbol("m", "m2"), "");
  EXPECT_EQ(sharedSymbol("m", "m_argv"), "attn_m_argv");
  EXPECT_EQ(sharedSymbol("m_argv", "m"), "attn_m_argv");
  EXPECT_EQ(sharedSymbol("m", "m_metadata"), "attn_m_metadata");
  EXPECT_EQ(sharedSymbol("m", "m__impl"), "attn_m__impl");
  EXPECT_EQ(sharedSymbol("m", "m__impl_argv"), "attn_m__impl_argv");
  EXPECT_EQ(sharedSymbol("m", "m_par_for_x"), "attn_m_par_for_x");
  EXPECT_EQ(sharedSymbol("m", "_stub_m"), "attn__stub_m");
  EXPECT_EQ(sharedSymbol("m", "m_par_for_"), "attn_m_par_for_");
}

TEST(Names, ReservedSymbols) {
  EXPECT_EQ(reservedSymbol("library_v1"), "attn_library_v1");
  EXPECT_EQ(reservedSymbol("library_open"), "attn_library_open");
  EXPECT_EQ(reservedSymbol("model_run"), "attn_model_run");
  EXPECT_EQ(reservedSymbol("library"), "");
  EXPECT_EQ(reservedSymbol("bert_layer"), "");
}

TEST(Names, Clashes) {
  Compiled c = compile("model m(x: f32[4]) -> f32[4] {\n  return x\n}\n"
                       "model m_argv(x: f32[4]) -> f32[4] {\n  return x\n}\n");
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.firstError(),
            "t.attn:4:7: error: model 'm_argv' clashes with model 'm' "
            "(defined at 1:7): a library of both would define the symbol "
            "'attn_m_argv' twice");
  c = compile("model library_v1(x: f32[4]) -> f32[4] {\n  return x\n}\n");
  EXPECT_EQ(c.firstError(),
            "t.attn:1:7: error: model name 'library_v1' would define the "
            "symbol 'attn_library_v1', which the library's table or the "
            "runtime's C API defines");
}

TEST(Names, Ranks) {
  std::string dims16 = "f32[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]";
  std::string dims17 = "f32[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]";
  EXPECT_TRUE(compile(model("  return x", "x: " + dims16, dims16, "B")).ok);
  Compiled c = compile(model("  return x", "x: " + dims17, dims17, "B"));
  EXPECT_EQ(c.firstError(),
            "t.attn:1:15: error: rank 17 is above 16, the most the runtime "
            "accepts for a model's inputs, params and outputs");
}

TEST(Names, ControlCharactersInStrings) {
  std::string src = model("  param w: f32[768] = \"a", "x: f32[B, S, 768]");
  src.insert(src.find("\"a") + 2, std::string("\0b\"\n  return x + w", 18));
  Compiled c = compile(src, false);
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.firstError(),
            "t.attn:2:25: error: control character '\\x00' in a string");
}

TEST(Messages, UnsafeBytesAreEscaped) {
  EXPECT_EQ(displayText("a\x1b[31mb\tc\nd\x7f"), "a\\x1B[31mb\tc\nd\\x7F");
  EXPECT_EQ(displayText("caf\xC3\xA9"), "caf\xC3\xA9"); // UTF-8
  EXPECT_EQ(displayText(std::string("\xC2\x9B") + "1m"), "\\xC2\\x9B1m"); // C1
  EXPECT_EQ(displayText("\xff\xC3"), "\\xFF\\xC3");          // not UTF-8
  EXPECT_EQ(displayText("\xED\xA0\x80"), "\\xED\\xA0\\x80"); // surrogate
}

TEST(Messages, LongWordsAreCut) {
  std::string name(300, 'n');
  EXPECT_EQ(displayText("model '" + name + "' is bad"),
            "model '" + std::string(80, 'n') + "\xE2\x80\xA6' is bad");
  EXPECT_EQ(displayText(std::string(10000, 'a') + " b").size(), 85u);
  std::string many;
  for (int i = 0; i < 5000; ++i)
    many += "1, ";
  EXPECT_EQ(displayText(many), many.substr(0, 4000) + "\xE2\x80\xA6");
}

TEST(Messages, CaretUnderEscapedLine) {
  std::ostringstream os;
  SourceDiagnostics diags("t.attn", "x = \"\xff\x1b\" $\n", os);
  diags.error({1, 10}, "bad");
  EXPECT_EQ(os.str(), "t.attn:1:10: error: bad\n"
                      "x = \"\\xFF\\x1B\" $\n"
                      "               ^\n");
}

TEST(Messages, LongLinesAreQuotedAroundTheCaret) {
  std::ostringstream os;
  std::string line = std::string(1000, 'a') + "$" + std::string(1000, 'b');
  SourceDiagnostics diags("t.attn", line, os);
  diags.error({1, 1001}, "bad");
  std::string e = "\xE2\x80\xA6";
  EXPECT_EQ(os.str(), "t.attn:1:1001: error: bad\n" + e +
                          std::string(160, 'a') + "$" + std::string(159, 'b') +
                          e + "\n" + std::string(161, ' ') + "^\n");
}

TEST(Input, SizeIsCappedWhileReading) {
  std::string text, reason;
  EXPECT_FALSE(readInputFile("/dev/zero", text, reason));
  EXPECT_EQ(reason, "larger than 64 MiB, the limit for an input file");
  EXPECT_LE(text.size(), kMaxInputBytes);
  EXPECT_FALSE(readInputFile("/", text, reason));
  EXPECT_EQ(reason, "Is a directory");
  EXPECT_FALSE(readInputFile("/does/not/exist", text, reason));
  EXPECT_EQ(reason, "No such file or directory");
}
