//===- SemaTest.cpp - Types of built-ins and every Sema error -------------===//
#include "FrontendTestUtil.h"

#include <functional>
#include <random>

using namespace attn;
using namespace attn::test;

namespace {

/// The DESIGN's BERT layer, as examples/bert_layer.attn holds it.
const std::string kBertLayer = readFile(ATTN_EXAMPLES_DIR "/bert_layer.attn");

void forEachExpr(const ast::Expr &e,
                 const std::function<void(const ast::Expr &)> &fn) {
  fn(e);
  for (const auto &a : e.args)
    forEachExpr(*a, fn);
  for (const auto &kw : e.kwargs)
    forEachExpr(*kw.value, fn);
}

TEST(Sema, BertLayer) {
  Compiled c = compile(kBertLayer);
  ASSERT_TRUE(c.ok) << c.diags;
  EXPECT_EQ(typeOf(c, "q"), "f32[B, 12, S, 64]");
  EXPECT_EQ(typeOf(c, "a"), "f32[B, 12, S, 64]");
  EXPECT_EQ(typeOf(c, "h"), "f32[B, S, 768]");
  EXPECT_EQ(typeOf(c, "f"), "f32[B, S, 768]");
  EXPECT_EQ(typeOf(c, "return"), "f32[B, S, 768]");
  // Every expression but strings has exactly one type.
  for (const ast::Stmt &s : c.module->models[0].body)
    for (const auto &e : s.exprs)
      forEachExpr(*e, [](const ast::Expr &x) {
        EXPECT_EQ(x.types.size(), 1u)
            << "expression at " << x.loc.line << ":" << x.loc.col;
      });
  // eps=1e-12 is folded.
  const ast::Expr &ret = *findStmt(c.module->models[0], "return")->exprs[0];
  ASSERT_EQ(ret.kwargs.size(), 1u);
  EXPECT_TRUE(ret.kwargs[0].value->isConstant);
  EXPECT_EQ(ret.kwargs[0].value->constant, 1e-12);
}

/// Checks `body` (which must bind `y`) and returns y's type or the error.
std::string typeOfY(const std::string &body, const std::string &args,
                    const std::string &sizes = "B, S, T, P") {
  Compiled c = compile("model m<" + sizes + ">(" + args +
                       ") -> f32[1] {\n  y = " + body + "\n  return y\n}\n");
  if (!c.module)
    return c.firstError();
  std::string t = typeOf(c, "y");
  if (t.empty() || t[0] == '<')
    return c.firstError();
  return t;
}

TEST(Sema, Linear) {
  EXPECT_EQ(typeOfY("linear(x, w)", "x: f32[B, S, 64], w: f32[32, 64]"),
            "f32[B, S, 32]");
  EXPECT_EQ(
      typeOfY("linear(x, w, b)", "x: f16[64], w: bf16[32, 64], b: f32[32]"),
      "f32[32]");
  EXPECT_EQ(typeOfY("linear(x, w)", "x: f32[B, S, T], w: f32[32, T]"),
            "f32[B, S, 32]");
  EXPECT_EQ(typeOfY("linear(x, w)", "x: f32[B, S, 64], w: f32[T, 64]"),
            "f32[B, S, T]");
}

TEST(Sema, MatmulAndTranspose) {
  EXPECT_EQ(
      typeOfY("matmul(a, b)", "a: f32[B, 12, S, 64], b: f32[B, 12, 64, T]"),
      "f32[B, 12, S, T]");
  EXPECT_EQ(typeOfY("matmul(a, b)", "a: f32[B, 1, S, 64], b: f32[12, 64, T]"),
            "f32[B, 12, S, T]");
  EXPECT_EQ(typeOfY("matmul(a, b)", "a: f32[S, 64], b: f32[64, 8]"),
            "f32[S, 8]");
  EXPECT_EQ(typeOfY("transpose(a)", "a: f32[B, 12, S, 64]"),
            "f32[B, 12, 64, S]");
  EXPECT_EQ(typeOfY("matmul(q, transpose(k)) * 0.125",
                    "q: f32[B, 12, S, 64], k: f32[B, 12, T, 64]"),
            "f32[B, 12, S, T]");
}

TEST(Sema, Heads) {
  EXPECT_EQ(typeOfY("split_heads(x, heads=12)", "x: f32[B, S, 768]"),
            "f32[B, 12, S, 64]");
  EXPECT_EQ(typeOfY("split_heads(x, heads=2*4)", "x: f32[B, S, 64]"),
            "f32[B, 8, S, 8]");
  EXPECT_EQ(typeOfY("merge_heads(x)", "x: f32[B, 12, S, 64]"),
            "f32[B, S, 768]");
}

TEST(Sema, Split) {
  EXPECT_EQ(typeOfY("concat(a, b)", "a: f32[B, S, 4], b: f32[B, S, 4]"),
            "f32[B, S, 8]");
  Compiled c = compile(model("  q, k, v = split(x, 3)\n  return q + k + v",
                             "x: f32[B, S, 192]", "f32[B, S, 64]"));
  ASSERT_TRUE(c.ok) << c.diags;
  EXPECT_EQ(typeOf(c, "q"), "f32[B, S, 64]; f32[B, S, 64]; f32[B, S, 64]");
  Compiled kw = compile(
      model("  q, k = split(x, n=2)\n  return q", "x: f32[S, 6]", "f32[S, 3]"));
  ASSERT_TRUE(kw.ok) << kw.diags;
  EXPECT_EQ(typeOf(kw, "q"), "f32[S, 3]; f32[S, 3]");
  const ast::Expr &call = *findStmt(kw.module->models[0], "q")->exprs[0];
  EXPECT_TRUE(call.kwargs[0].value->isConstant);
  EXPECT_EQ(call.kwargs[0].value->constant, 2);
}

TEST(Sema, Concat) {
  EXPECT_EQ(typeOfY("concat(a, b, axis=-2)",
                    "a: f32[B, 8, P, 64], b: f32[B, 8, S, 64]"),
            "f32[B, 8, P+S, 64]");
  EXPECT_EQ(typeOfY("concat(concat(a, b, axis=2), a, axis=2)",
                    "a: f32[B, 8, P, 64], b: f32[B, 8, 1, 64]"),
            "f32[B, 8, P+1+P, 64]");
  EXPECT_EQ(typeOfY("concat(a, b, axis=0)", "a: f32[2, S], b: f32[3, S]"),
            "f32[5, S]");
}

TEST(Sema, Softmax) {
  EXPECT_EQ(typeOfY("softmax(s)", "s: f16[B, 12, S, T]"), "f32[B, 12, S, T]");
  EXPECT_EQ(typeOfY("softmax(s, mask=causal)", "s: f32[S, T]"), "f32[S, T]");
  EXPECT_EQ(typeOfY("softmax(s, mask=causal())", "s: f32[S, T]"), "f32[S, T]");
  EXPECT_EQ(typeOfY("softmax(s, mask=sliding_window(128) & padding(l))",
                    "s: f32[B, 12, S, T], l: i32[B]"),
            "f32[B, 12, S, T]");
  EXPECT_EQ(typeOfY("softmax(s, mask=keep)",
                    "s: f32[B, 12, S, T], keep: bool[B, 1, 1, T]"),
            "f32[B, 12, S, T]");
  EXPECT_EQ(typeOfY("softmax(s, mask=keep & causal)",
                    "s: f32[B, 12, S, T], keep: bool[S, T]"),
            "f32[B, 12, S, T]");
}

TEST(Sema, Attention) {
  const char *qkv = "q: f32[B, 32, S, 128], k: f32[B, 8, T, 128], "
                    "v: f32[B, 8, T, 64], l: i32[B], bias: f32[32, S, T], "
                    "keep: bool[B, 1, S, T]";
  EXPECT_EQ(typeOfY("attention(q, k, v)", qkv), "f32[B, 32, S, 64]");
  EXPECT_EQ(typeOfY("attention(q, k, v, mask=causal & padding(l) & keep, "
                    "bias=bias, scale=1/8)",
                    qkv),
            "f32[B, 32, S, 64]");
  Compiled c = compile(model("  y = attention(q, q, q, scale=1/8)\n  return y",
                             "q: f32[B, 2, S, 4]", "f32[B, 2, S, 4]"));
  ASSERT_TRUE(c.ok) << c.diags;
  const ast::Expr &scale =
      *findStmt(c.module->models[0], "y")->exprs[0]->kwargs[0].value;
  EXPECT_TRUE(scale.isConstant);
  EXPECT_EQ(scale.constant, 0.125);
  EXPECT_EQ(scale.types.size(), 1u);
}

TEST(Sema, NormsActivationsRope) {
  EXPECT_EQ(typeOfY("layer_norm(x, g, b)",
                    "x: f32[B, S, 64], g: f32[64], b: f32[64]"),
            "f32[B, S, 64]");
  EXPECT_EQ(
      typeOfY("rms_norm(x, g, eps=1e-6)", "x: bf16[B, S, 64], g: bf16[64]"),
      "f32[B, S, 64]");
  for (const char *f : {"gelu", "gelu_tanh", "silu", "relu"})
    EXPECT_EQ(typeOfY(std::string(f) + "(x)", "x: f16[B, S]"), "f32[B, S]")
        << f;
  EXPECT_EQ(typeOfY("rope(x, pos)", "x: f32[B, 8, S, 64], pos: i32[S]"),
            "f32[B, 8, S, 64]");
  EXPECT_EQ(typeOfY("rope(x, pos, theta=500000.0, style=\"interleaved\")",
                    "x: f32[B, 8, S, 64], pos: i32[B, S]"),
            "f32[B, 8, S, 64]");
}

// i32 arithmetic follows NumPy's promotion: i32 with i32 (or an integer
// literal) stays i32 for + - * and negation, / is true division (f32), and a
// float operand or a float literal makes the result f32.
TEST(Sema, IntegerArithmetic) {
  const char *args = "pos: i32[S], start: i32[1], x: f32[B, S]";
  EXPECT_EQ(typeOfY("pos + start", args), "i32[S]");
  EXPECT_EQ(typeOfY("pos * 2 - 1", args), "i32[S]");
  EXPECT_EQ(typeOfY("-pos + -3", args), "i32[S]");
  EXPECT_EQ(typeOfY("pos / 2", args), "f32[S]");
  EXPECT_EQ(typeOfY("pos / start", args), "f32[S]");
  EXPECT_EQ(typeOfY("pos * 0.5", args), "f32[S]");
  EXPECT_EQ(typeOfY("x * pos", args), "f32[B, S]");
  EXPECT_EQ(typeOfY("2 * 3", args), "f32[]"); // literals alone: f32
  EXPECT_EQ(typeOfY("rope(q, pos + start)",
                    "q: f32[B, 8, S, 64], pos: i32[S], start: i32[1]"),
            "f32[B, 8, S, 64]");
}

TEST(Sema, ArithmeticAndMasks) {
  EXPECT_EQ(typeOfY("x * 0.5 - 1", "x: f16[B, S]"), "f32[B, S]");
  EXPECT_EQ(typeOfY("-x / y", "x: f32[B, S, 1], y: f32[S, 7]"), "f32[B, S, 7]");
  EXPECT_EQ(typeOfY("x + y", "x: f32[1, S], y: f32[B, 1]"), "f32[B, S]");
  EXPECT_EQ(typeOfY("a & b", "a: bool[S, 1], b: bool[T]"), "bool[S, T]");
  EXPECT_EQ(typeOfY("causal & a", "a: bool[S, T]"), "mask");
  EXPECT_EQ(typeOfY("2", "x: f32[1]"), "f32[]");
}

TEST(Sema, NamedMasksCarryTheirParts) {
  // The padding term travels through the binding and is checked at the use.
  Compiled c = compile(
      model("  mk = causal & padding(l)\n  return softmax(s, mask=mk)",
            "s: f32[B, 4, S, S], l: i32[T]", "f32[B, 4, S, S]", "B, S, T"));
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.firstError(),
            "t.attn:3:26: error: softmax: padding lengths are i32[T] but the "
            "scores are [B, 4, S, S]; lengths must be [B]");
}

TEST(Sema, CausalCanBeShadowed) {
  Compiled c = compile(
      model("  causal = x * 2\n  return x + causal", "x: f32[4]", "f32[4]"));
  EXPECT_TRUE(c.ok) << c.diags;
}

TEST(Sema, ReturnDTypes) {
  // A float result may be stored as any float dtype.
  EXPECT_TRUE(compile(model("  return x * 2", "x: f32[4]", "f16[4]")).ok);
  EXPECT_TRUE(compile(model("  return l", "l: i32[4]", "i32[4]")).ok);
  Compiled c = compile(model("  return l", "l: i32[4]", "f32[4]"));
  EXPECT_EQ(c.firstError(), "t.attn:2:10: error: the returned value is i32[4] "
                            "but model 'm' declares f32[4]");
  Compiled two = compile(
      model("  return x, l", "x: f32[4], l: i32[4]", "(bf16[4], bool[4])"));
  EXPECT_EQ(two.firstError(), "t.attn:2:13: error: returned value 2 is i32[4] "
                              "but model 'm' declares bool[4]");
}

TEST(Sema, ErrorsDoNotCascade) {
  Compiled c = compile(model("  a = gelu(foo)\n  b = a + 1\n  c = bar\n"
                             "  return a"));
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.numErrors(), 2u) << c.diags;
  EXPECT_NE(c.diags.find("t.attn:2:12: error: unknown name 'foo'"),
            std::string::npos);
  EXPECT_NE(c.diags.find("t.attn:4:7: error: unknown name 'bar'"),
            std::string::npos);
}

TEST(Sema, MultipleModels) {
  Compiled c = compile("model a(x: f32[4]) -> f32[4] { return gelu(x) }\n"
                       "model b<S>(x: f32[S]) -> f32[S] { return relu(x) }\n");
  ASSERT_TRUE(c.ok) << c.diags;
  EXPECT_EQ(c.module->models.size(), 2u);
}

struct SemaError {
  std::string body;
  std::string args;
  std::string error; // "L:C: error: message"
  std::string results = "f32[B, S, 768]";
};

/// How a failing case names itself in the test output.
void PrintTo(const SemaError &e, std::ostream *os) {
  *os << "expecting \"" << e.error << "\"";
}

class SemaErrors : public ::testing::TestWithParam<SemaError> {};

TEST_P(SemaErrors, ExactMessage) {
  const SemaError &p = GetParam();
  Compiled c = compile(model(p.body, p.args, p.results, "B, S, T"));
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.firstError(), "t.attn:" + p.error) << c.diags;
}

const char *X = "x: f32[B, S, 768]";
const char *LIN = "x: f32[B, S, 768], w: f32[768, 768], b: f32[768]";
const char *QKV = "q: f32[B, 12, S, 64], k: f32[B, 12, T, 64], "
                  "v: f32[B, 12, T, 64]";

INSTANTIATE_TEST_SUITE_P(
    Names, SemaErrors,
    ::testing::Values(
        SemaError{"  return foo", X, "2:10: error: unknown name 'foo'"},
        SemaError{"  y = gelu(x)\n  y = relu(x)\n  return y", X,
                  "3:3: error: 'y' is already defined at 2:3"},
        SemaError{"  x = gelu(x)\n  return x", X,
                  "2:3: error: 'x' is already defined at 1:18"},
        SemaError{"  param x: f32[4]\n  return x", X,
                  "2:9: error: 'x' is already defined at 1:18"},
        SemaError{"  return x", "x: f32[B, S, 768], x: f32[4]",
                  "1:37: error: 'x' is already defined at 1:18"},
        SemaError{"  q, q = split(x, 2)\n  return x", X,
                  "2:6: error: 'q' is already defined at 2:3"},
        SemaError{"  y = x + z\n  z = x\n  return y", X,
                  "2:11: error: 'z' is used before its definition at 3:3"},
        SemaError{"  return x", "x: f32[B, U, 768]",
                  "1:28: error: unknown size 'U'; declare it in the model's "
                  "<...> list"},
        SemaError{"  param w: f32[U]\n  return x", X,
                  "2:16: error: unknown size 'U'; declare it in the model's "
                  "<...> list"},
        SemaError{"  return x", X,
                  "1:47: error: unknown size 'Q'; declare it in the model's "
                  "<...> list",
                  "f32[B, Q, 768]"},
        SemaError{"  return x * S", X,
                  "2:14: error: 'S' is a size, not a value; sizes can only "
                  "appear in types"},
        SemaError{"  return gelu", X,
                  "2:10: error: 'gelu' is a function; call it as gelu(...)"},
        SemaError{"  return x(x)", X,
                  "2:10: error: 'x' is a value, not a function"},
        SemaError{"  return softmx(x)", X,
                  "2:10: error: unknown function 'softmx'; did you mean "
                  "'softmax'?"},
        SemaError{"  return frobnicate(x)", X,
                  "2:10: error: unknown function 'frobnicate'"}));

INSTANTIATE_TEST_SUITE_P(
    Statements, SemaErrors,
    ::testing::Values(
        SemaError{"  y = gelu(x)", X,
                  "3:1: error: model 'm' must end with a 'return' statement"},
        SemaError{"  return x\n  return x", X,
                  "2:3: error: 'return' must be the last statement of model "
                  "'m'"},
        SemaError{"  return x, x", X,
                  "2:3: error: 'return' gives 2 values but model 'm' declares "
                  "1 result"},
        SemaError{"  return x", X,
                  "2:3: error: 'return' gives 1 value but model 'm' declares "
                  "2 results",
                  "(f32[B, S, 768], f32[B, S, 768])"},
        SemaError{"  return causal", X,
                  "2:10: error: the returned value is mask but model 'm' "
                  "declares f32[B, S, 768]"},
        SemaError{"  return gelu(x)", X,
                  "2:10: error: the returned value is f32[B, S, 768] but "
                  "model 'm' declares f32[B, T, 768]",
                  "f32[B, T, 768]"},
        SemaError{"  q, k = split(x, 3)\n  return x", X,
                  "2:10: error: split returns 3 values but 2 names are bound"},
        SemaError{"  q, k = gelu(x)\n  return x", X,
                  "2:10: error: gelu returns 1 value but 2 names are bound"},
        SemaError{"  q, k = x\n  return x", X,
                  "2:10: error: the expression returns 1 value but 2 names "
                  "are bound"},
        SemaError{"  return gelu(split(x, 2))", X,
                  "2:15: error: split returns 2 values; bind them to names "
                  "first (a, b = split(...))"},
        SemaError{"  return split(x, 4)", X,
                  "2:10: error: split returns 4 values; bind them to names "
                  "first (a, b, c, ... = split(...))"},
        SemaError{"  y = \"abc\" \n  return x", X,
                  "2:7: error: expected an expression, found string \"abc\""}));

INSTANTIATE_TEST_SUITE_P(
    Calls, SemaErrors,
    ::testing::Values(
        SemaError{"  return linear(x, w, b, b)", LIN,
                  "2:26: error: linear expects 2 or 3 positional arguments, "
                  "got 4"},
        SemaError{"  return linear(x)", LIN,
                  "2:10: error: linear expects 2 or 3 positional arguments, "
                  "got 1"},
        SemaError{"  return gelu(x, x)", X,
                  "2:18: error: gelu expects 1 positional argument, got 2"},
        SemaError{"  return attention(x, x)", X,
                  "2:10: error: attention expects 3 positional arguments, "
                  "got 2"},
        SemaError{"  return softmax(x, mask=causal(1, 2))", X,
                  "2:36: error: causal expects 0 or 1 positional arguments, "
                  "got 2"},
        SemaError{"  return layer_norm(x, b, b, epsilon=1e-5)", LIN,
                  "2:30: error: layer_norm has no keyword 'epsilon'; valid "
                  "keywords: eps"},
        SemaError{"  return attention(q, k, v, sclae=0.1)", QKV,
                  "2:29: error: attention has no keyword 'sclae'; valid "
                  "keywords: mask, bias, scale"},
        SemaError{"  return gelu(x, approximate=\"tanh\")", X,
                  "2:18: error: gelu has no keyword 'approximate'; it takes "
                  "no keywords"},
        SemaError{"  return rms_norm(x, b, eps=1e-6, eps=1e-5)", LIN,
                  "2:35: error: duplicate keyword 'eps' (first given at 2:25)"},
        SemaError{"  return split_heads(x)", X,
                  "2:10: error: split_heads needs heads="},
        SemaError{"  return split(x)", X,
                  "2:10: error: split needs n= (or n as the second positional "
                  "argument)"},
        SemaError{"  return split(x, 2, n=2)", X,
                  "2:22: error: split: n is given twice, as the second "
                  "positional argument and as n="},
        SemaError{"  return split_heads(x, heads=x)", X,
                  "2:31: error: heads must be a constant number"},
        SemaError{"  return split_heads(x, heads=\"12\")", X,
                  "2:31: error: heads must be a constant number, got a "
                  "string"},
        SemaError{"  return split_heads(x, heads=12.5)", X,
                  "2:31: error: heads must be an integer, got 12.5"},
        SemaError{"  return split_heads(x, heads=-4)", X,
                  "2:31: error: heads must be >= 1, got -4"},
        SemaError{"  return split_heads(x, heads=1/0)", X,
                  "2:32: error: division by zero in a constant"},
        SemaError{"  return softmax(x, mask=sliding_window(0))", X,
                  "2:41: error: sliding_window's W must be >= 1, got 0"},
        SemaError{"  return softmax(x, mask=sliding_window(x))", X,
                  "2:41: error: sliding_window's W must be a constant number"},
        SemaError{"  return attention(q, k, v, scale=q)", QKV,
                  "2:35: error: scale must be a constant number"},
        SemaError{"  return layer_norm(x, b, b, eps=-1)", LIN,
                  "2:34: error: eps must be >= 0, got -1"},
        SemaError{"  return rope(q, p, style=\"half\")",
                  "q: f32[B, 12, S, 64], p: i32[S]",
                  "2:27: error: style must be \"rotate_half\" or "
                  "\"interleaved\", got \"half\""},
        SemaError{"  return rope(q, p, style=1)",
                  "q: f32[B, 12, S, 64], p: i32[S]",
                  "2:27: error: style must be \"rotate_half\" or "
                  "\"interleaved\""},
        SemaError{"  return rope(q, p, theta=0)",
                  "q: f32[B, 12, S, 64], p: i32[S]",
                  "2:27: error: theta must be > 0, got 0"},
        SemaError{"  return split(x, 3000)", X,
                  "2:19: error: n must be <= 1024, got 3000"},
        SemaError{"  return concat(x, x, axis=3)", X,
                  "2:28: error: axis=3 is out of range for rank 3"}));

INSTANTIATE_TEST_SUITE_P(
    DTypes, SemaErrors,
    ::testing::Values(
        SemaError{"  return linear(l, w)", "l: i32[B], w: f32[768, 768]",
                  "2:17: error: linear expects a float x, got i32[B]"},
        SemaError{"  return gelu(m)", "m: bool[B, S, 768]",
                  "2:15: error: gelu expects a float x, got bool[B, S, 768]"},
        SemaError{"  return x + m", "x: f32[B, S, 768], m: bool[B]",
                  "2:14: error: '+' expects a float or i32 operand, got "
                  "bool[B]"},
        SemaError{"  return -m", "m: bool[B]",
                  "2:11: error: '-' expects a float or i32 operand, got "
                  "bool[B]"},
        SemaError{"  return linear(x, w) + l",
                  "x: f32[B, S, 768], w: f32[768, 768], l: i32[B]",
                  "2:23: error: cannot broadcast f32[B, S, 768] with i32[B]"},
        SemaError{"  return x & x", X,
                  "2:10: error: '&' expects masks or bool tensors, got f32[B, "
                  "S, 768]"},
        SemaError{"  return x + causal", X,
                  "2:14: error: '+' expects a float or i32 operand, got a mask "
                  "(masks are only allowed as mask= and in '&')"},
        SemaError{"  return linear(padding(l), x)",
                  "x: f32[B, S, 768], l: i32[B]",
                  "2:17: error: linear expects a float x, got a mask (masks "
                  "are only allowed as mask= and in '&')"},
        SemaError{"  return softmax(x, mask=x)", X,
                  "2:26: error: softmax expects mask= to be a mask or a bool "
                  "tensor, got f32[B, S, 768]"},
        SemaError{"  return softmax(x, mask=padding(x))", X,
                  "2:34: error: padding expects i32 lengths of rank 1 ([B]), "
                  "got f32[B, S, 768]"},
        SemaError{"  return softmax(x, mask=padding(l))",
                  "x: f32[B, S, 768], l: i32[B, S]",
                  "2:34: error: padding expects i32 lengths of rank 1 ([B]), "
                  "got i32[B, S]"},
        SemaError{"  return rope(q, p)", "q: f32[B, 12, S, 64], p: f32[S]",
                  "2:18: error: rope expects an i32 pos, got f32[S]"},
        SemaError{
            "  return attention(q, k, v, bias=m)",
            "q: f32[B, 12, S, 64], k: f32[B, 12, S, 64], "
            "v: f32[B, 12, S, 64], m: bool[S, S]",
            "2:34: error: attention expects a float bias, got bool[S, S]"}));

INSTANTIATE_TEST_SUITE_P(
    Shapes, SemaErrors,
    ::testing::Values(
        SemaError{"  return linear(x, w)",
                  "x: f32[B, S, 770], w: f32[768, 768]",
                  "2:10: error: linear: x is f32[B, S, 770] but w is f32[768, "
                  "768]; the last dim of x must equal w's dim 1 (768)"},
        SemaError{"  return linear(x, w, b)",
                  "x: f32[B, S, 768], w: f32[768, 768], b: f32[700]",
                  "2:10: error: linear: b is f32[700] but w is f32[768, 768]; "
                  "b must be [768] (w's dim 0)"},
        SemaError{"  return linear(x, b)", LIN,
                  "2:20: error: linear expects w of rank 2 ([out, in]), got "
                  "f32[768]"},
        SemaError{"  return split_heads(linear(x, w), heads=12)",
                  "x: f32[B, S, 770], w: f32[770, 770]",
                  "2:10: error: heads=12 does not divide 770"},
        SemaError{"  return split_heads(x, heads=12)", "x: f32[B, S, T]",
                  "2:10: error: split_heads needs a static last dim, got "
                  "f32[B, S, T]"},
        SemaError{"  return split_heads(x, heads=12)", "x: f32[S, 768]",
                  "2:22: error: split_heads expects x of rank 3 ([B, S, E]), "
                  "got f32[S, 768]"},
        SemaError{"  return merge_heads(x)", "x: f32[B, T, S, 64]",
                  "2:10: error: merge_heads needs static heads and head dims "
                  "(dims 1 and 3), got f32[B, T, S, 64]"},
        SemaError{"  return split(x, 5)", X,
                  "2:10: error: n=5 does not divide 768"},
        SemaError{"  return matmul(x, x)", X,
                  "2:10: error: matmul: a is f32[B, S, 768] but b is f32[B, S, "
                  "768]; the last dim of a must equal the second-to-last dim "
                  "of b"},
        SemaError{"  return matmul(a, b)",
                  "a: f32[B, 4, S, 8], b: f32[3, 8, S]",
                  "2:10: error: matmul: cannot broadcast the batch dims of a "
                  "f32[B, 4, S, 8] and b f32[3, 8, S]"},
        SemaError{
            "  return transpose(b)", "b: f32[768]",
            "2:20: error: transpose expects x of rank >= 2, got f32[768]"},
        SemaError{"  return concat(x, b)", LIN,
                  "2:10: error: concat: a is f32[B, S, 768] and b is f32[768]; "
                  "they must have the same rank"},
        SemaError{"  return concat(x, y)",
                  "x: f32[B, S, 768], y: f32[B, T, 768]",
                  "2:10: error: concat: a is f32[B, S, 768] but b is f32[B, T, "
                  "768]; all dims except axis -1 must be equal"},
        SemaError{"  return x + y", "x: f32[B, S], y: f32[B, T]",
                  "2:12: error: cannot broadcast f32[B, S] with f32[B, T]"},
        SemaError{"  return a & b", "a: bool[S, 2], b: bool[S, 3]",
                  "2:12: error: cannot broadcast bool[S, 2] with bool[S, 3]"},
        SemaError{"  return layer_norm(x, b, g)",
                  "x: f32[B, S, 768], b: f32[768], g: f32[512]",
                  "2:10: error: layer_norm: x is f32[B, S, 768] but b is "
                  "f32[512]; b must be [768] (x's last dim)"},
        SemaError{"  return rms_norm(x, g)", "x: f32[B, S, 768], g: f32[S]",
                  "2:10: error: rms_norm: x is f32[B, S, 768] but g is f32[S]; "
                  "g must be [768] (x's last dim)"},
        SemaError{"  return rope(q, p)", "q: f32[B, 8, S, 63], p: i32[S]",
                  "2:10: error: rope needs a static, even head dim (dim 3), "
                  "got f32[B, 8, S, 63]"},
        SemaError{"  return rope(q, p)", "q: f32[B, 8, S, 64], p: i32[T]",
                  "2:10: error: rope: x is f32[B, 8, S, 64] but pos is i32[T]; "
                  "pos must be [S] or [B, S]"},
        SemaError{"  return rope(q, p)", "q: f32[B, 8, S, 64], p: i32[S, B]",
                  "2:10: error: rope: x is f32[B, 8, S, 64] but pos is i32[S, "
                  "B]; pos must be [S] or [B, S]"}));

INSTANTIATE_TEST_SUITE_P(
    AttentionAndMasks, SemaErrors,
    ::testing::Values(
        SemaError{
            "  return attention(q, k, v)",
            "q: f32[B, 32, S, 64], k: f32[B, 6, S, 64], v: f32[B, 6, S, 64]",
            "2:10: error: Hq=32 is not a multiple of Hkv=6"},
        SemaError{
            "  return attention(q, k, v)",
            "q: f32[B, 12, S, 64], k: f32[B, 12, T, 64], v: f32[B, 12, S, 64]",
            "2:10: error: attention: k is f32[B, 12, T, 64] but v is "
            "f32[B, 12, S, 64]; they must have the same length (dim 2)"},
        SemaError{
            "  return attention(q, k, v)",
            "q: f32[B, 12, S, 64], k: f32[B, 12, T, 64], v: f32[B, 4, T, 64]",
            "2:10: error: attention: k is f32[B, 12, T, 64] but v is "
            "f32[B, 4, T, 64]; they must have the same number of heads "
            "(dim 1)"},
        SemaError{
            "  return attention(q, k, v)",
            "q: f32[B, 12, S, 64], k: f32[B, 12, T, 32], v: f32[B, 12, T, 64]",
            "2:10: error: attention: q is f32[B, 12, S, 64] but k is "
            "f32[B, 12, T, 32]; they must have the same head dim (dim 3)"},
        SemaError{
            "  return attention(q, k, v)",
            "q: f32[S, 12, S, 64], k: f32[B, 12, T, 64], v: f32[B, 12, T, 64]",
            "2:10: error: attention: q is f32[S, 12, S, 64] but k is "
            "f32[B, 12, T, 64]; they must have the same batch size (dim "
            "0)"},
        SemaError{
            "  return attention(q, k, v)",
            "q: f32[B, T, S, 64], k: f32[B, 12, T, 64], v: f32[B, 12, T, 64]",
            "2:10: error: attention needs static head counts, got q "
            "f32[B, T, S, 64] and k f32[B, 12, T, 64]"},
        SemaError{"  return attention(x, x, x)", X,
                  "2:20: error: attention expects q of rank 4 ([B, H, S, D]), "
                  "got f32[B, S, 768]"},
        SemaError{"  return attention(q, k, v, mask=causal & m)",
                  "q: f32[B, 12, S, 64], k: f32[B, 12, T, 64], "
                  "v: f32[B, 12, T, 64], m: bool[B, S]",
                  "2:41: error: attention: the mask bool[B, S] does not "
                  "broadcast to the scores [B, 12, S, T]"},
        SemaError{"  return attention(q, k, v, mask=m)",
                  "q: f32[B, 12, S, 64], k: f32[B, 12, T, 64], "
                  "v: f32[B, 12, T, 64], m: bool[2, B, 12, S, T]",
                  "2:34: error: attention: the mask bool[2, B, 12, S, T] does "
                  "not broadcast to the scores [B, 12, S, T]"},
        SemaError{"  return attention(q, k, v, bias=b)",
                  "q: f32[B, 12, S, 64], k: f32[B, 12, T, 64], "
                  "v: f32[B, 12, T, 64], b: f32[12, T, S]",
                  "2:34: error: attention: bias f32[12, T, S] does not "
                  "broadcast to the scores [B, 12, S, T]"},
        SemaError{"  return attention(q, k, v, mask=padding(l))",
                  "q: f32[B, 12, S, 64], k: f32[B, 12, T, 64], "
                  "v: f32[B, 12, T, 64], l: i32[T]",
                  "2:34: error: attention: padding lengths are i32[T] but the "
                  "scores are [B, 12, S, T]; lengths must be [B]"},
        SemaError{"  return softmax(s, mask=padding(l))",
                  "s: f32[S, T], l: i32[B]",
                  "2:26: error: softmax: a padding mask needs scores of rank "
                  ">= 3 ([B, ..., Sq, Sk]), got [S, T]"},
        SemaError{"  return softmax(s, mask=causal)", "s: f32[T]",
                  "2:18: error: softmax expects x of rank >= 2, got f32[T]"},
        SemaError{"  return softmax(s, mask=m)", "s: f32[S, T], m: bool[T, S]",
                  "2:26: error: softmax: the mask bool[T, S] does not "
                  "broadcast to the scores [S, T]"}));

TEST(Sema, DuplicateModelsAndSizes) {
  Compiled c = compile("model m(x: f32[4]) -> f32[4] { return x }\n"
                       "model m(x: f32[4]) -> f32[4] { return x }\n");
  EXPECT_EQ(c.firstError(),
            "t.attn:2:7: error: model 'm' is already defined at 1:7");
  Compiled s = compile("model m<B, B>(x: f32[B]) -> f32[B] { return x }\n");
  EXPECT_EQ(s.firstError(),
            "t.attn:1:12: error: size 'B' is already declared at 1:9");
}

/// Random edits of a valid file must give errors, never crashes (run this
/// under ASan/UBSan with -DATTN_SANITIZE=ON).
TEST(Sema, MutatedSourcesNeverCrash) {
  std::mt19937 rng(1234);
  const std::string base = kBertLayer;
  const std::string pieces[] = {"(",
                                ")",
                                ",",
                                "=",
                                "-",
                                "&",
                                "*",
                                "[",
                                "]",
                                "\"",
                                "#",
                                "x",
                                "12",
                                "0",
                                "causal",
                                "q",
                                "split(x, 3)",
                                "mask=",
                                "heads=",
                                "\n",
                                "1e9",
                                "model m() -> f32[1] {",
                                "}",
                                "return",
                                ""};
  for (int iter = 0; iter < 3000; ++iter) {
    std::string src = base;
    int edits = 1 + int(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t at = rng() % src.size();
      size_t len = rng() % 8;
      const std::string &p = pieces[rng() % (sizeof pieces / sizeof pieces[0])];
      src.replace(at, std::min(len, src.size() - at), p);
    }
    Compiled c = compile(src);
    if (!c.ok)
      EXPECT_GT(c.numErrors(), 0u) << src;
    std::ostringstream os;
    if (c.module)
      ast::print(*c.module, os);
  }
}

} // namespace
