//===- ParserTest.cpp - Grammar, precedence, errors, AST printing ---------===//
#include "FrontendTestUtil.h"

using namespace attn;
using namespace attn::test;

namespace {

/// The printed (unchecked) expression of the first statement that binds y.
std::string printed(const std::string &expr) {
  Compiled c = compile(model("y = " + expr + "\nreturn y"), /*check=*/false);
  if (!c.ok)
    return "<error> " + c.diags;
  std::ostringstream os;
  ast::print(*c.module, os);
  std::string s = os.str();
  size_t b = s.find("(bind (y) ");
  if (b == std::string::npos)
    return "<no bind> " + s;
  b += 10;
  size_t e = s.find("\n    (return", b);
  return s.substr(b, e - b - 1);
}

TEST(Parser, Precedence) {
  EXPECT_EQ(printed("a + b * c"), "(+ (name a) (* (name b) (name c)))");
  EXPECT_EQ(printed("a * b + c"), "(+ (* (name a) (name b)) (name c))");
  EXPECT_EQ(printed("a - b - c"), "(- (- (name a) (name b)) (name c))");
  EXPECT_EQ(printed("a / b / c"), "(/ (/ (name a) (name b)) (name c))");
  EXPECT_EQ(printed("a & b + c & d"),
            "(& (& (name a) (+ (name b) (name c))) (name d))");
  EXPECT_EQ(printed("-a * -b"), "(* (neg (name a)) (neg (name b)))");
  EXPECT_EQ(printed("- -a"), "(neg (neg (name a)))");
  EXPECT_EQ(printed("(a + b) * c"), "(* (+ (name a) (name b)) (name c))");
  EXPECT_EQ(printed("a\n  + b"), "(+ (name a) (name b))");
}

TEST(Parser, ComparisonAndBoolPrecedence) {
  // Lowest first, as in C: |, &, comparisons, + -, * /, unary - !,
  // subscripts.
  EXPECT_EQ(printed("a < b & c | !d"),
            "(| (& (< (name a) (name b)) (name c)) (not (name d)))");
  EXPECT_EQ(printed("a | b & c"), "(| (name a) (& (name b) (name c)))");
  EXPECT_EQ(printed("a | b | c"), "(| (| (name a) (name b)) (name c))");
  EXPECT_EQ(printed("a + b <= c * d == e"),
            "(== (<= (+ (name a) (name b)) (* (name c) (name d))) (name e))");
  EXPECT_EQ(printed("a >= b != c > d"),
            "(> (!= (>= (name a) (name b)) (name c)) (name d))");
  EXPECT_EQ(printed("!a == b"), "(== (not (name a)) (name b))");
  EXPECT_EQ(printed("!!a & -b < c"),
            "(& (not (not (name a))) (< (neg (name b)) (name c)))");
  EXPECT_EQ(printed("!(a | b)"), "(not (| (name a) (name b)))");
  EXPECT_EQ(printed("-x[0]"), "(neg (index (name x) 0))");
  EXPECT_EQ(printed("x<=y"), "(<= (name x) (name y))");
}

TEST(Parser, Subscripts) {
  EXPECT_EQ(printed("x[..., -1, :]"), "(index (name x) ... (neg 1) :)");
  EXPECT_EQ(printed("x[:, 0:S]"), "(index (name x) : (range 0 (name S)))");
  EXPECT_EQ(printed("x[2:5, 1:, :3, -2:]"),
            "(index (name x) (range 2 5) (range 1 _) (range _ 3) (range (neg "
            "2) _))");
  EXPECT_EQ(printed("x[1]"), "(index (name x) 1)");
  // Subscripts chain, apply to calls and parentheses, and bind tighter than
  // any operator.
  EXPECT_EQ(printed("x[0][1:2]"), "(index (index (name x) 0) (range 1 2))");
  EXPECT_EQ(printed("f(x)[..., 0] + (a * b)[1]"),
            "(+ (index (call f (name x)) ... 0) (index (* (name a) (name b)) "
            "1))");

  Compiled c = compile(model("  y = x[..., -1, 2:S]\n  return y"), false);
  ASSERT_TRUE(c.ok) << c.diags;
  const ast::Expr &ix = *c.module->models[0].body[0].exprs[0];
  ASSERT_EQ(ix.kind, ast::Expr::Index);
  EXPECT_EQ(ix.loc.col, 8u); // the '['
  ASSERT_EQ(ix.subscripts.size(), 3u);
  EXPECT_EQ(ix.subscripts[0].kind, ast::Subscript::Ellipsis);
  EXPECT_EQ(ix.subscripts[1].kind, ast::Subscript::Index);
  EXPECT_EQ(ix.subscripts[1].loc.col, 14u);
  EXPECT_EQ(ix.subscripts[2].kind, ast::Subscript::Range);
  EXPECT_EQ(ix.subscripts[2].loc.col, 18u);
  ASSERT_TRUE(ix.subscripts[2].hi);
  EXPECT_EQ(ix.subscripts[2].hi->name, "S");
}

TEST(Parser, LoopsUnrollWithTheVariableSubstituted) {
  Compiled c = compile(model("  h = x\n"
                             "  for i in 0..3 {\n"
                             "    h = layer(h, params=\"l.{i}.{i}\") + i\n"
                             "    g = h[i]\n"
                             "  }\n"
                             "  for j in -2..0 {\n"
                             "    h = h * j\n"
                             "  }\n"
                             "  for k in 5..5 {\n"
                             "    h = h * 100\n"
                             "  }\n"
                             "  return h"),
                       false);
  ASSERT_TRUE(c.ok) << c.diags;
  const std::vector<ast::Stmt> &body = c.module->models[0].body;
  // h = x, 3 x 2 statements, 2 x 1, none for the empty range, return.
  ASSERT_EQ(body.size(), 1u + 6u + 2u + 1u);
  EXPECT_FALSE(body[0].inLoop);
  for (int i = 0; i < 3; ++i) {
    const ast::Stmt &s = body[1 + 2 * i];
    EXPECT_TRUE(s.inLoop);
    EXPECT_EQ(s.names, std::vector<std::string>{"h"});
    EXPECT_EQ(s.loc.line, 4u); // every copy keeps the body's location
    EXPECT_EQ(s.loc.col, 5u);
    std::string n = std::to_string(i);
    const ast::Expr &add = *s.exprs[0];
    ASSERT_EQ(add.kind, ast::Expr::Binary);
    const ast::Expr &call = *add.args[0];
    ASSERT_EQ(call.kwargs.size(), 1u);
    EXPECT_EQ(call.kwargs[0].value->name, "l." + n + "." + n);
    ASSERT_EQ(add.args[1]->kind, ast::Expr::Number);
    EXPECT_EQ(add.args[1]->number, i);
    EXPECT_TRUE(add.args[1]->isInteger);
    const ast::Stmt &g = body[2 + 2 * i];
    ASSERT_EQ(g.exprs[0]->subscripts.size(), 1u);
    EXPECT_EQ(g.exprs[0]->subscripts[0].lo->number, i);
  }
  // A negative value is a negation of a literal, as if written.
  for (int k = 0; k < 2; ++k) {
    const ast::Expr &mul = *body[7 + k].exprs[0];
    ASSERT_EQ(mul.args[1]->kind, ast::Expr::Neg);
    EXPECT_EQ(mul.args[1]->args[0]->number, 2 - k);
  }
  EXPECT_EQ(body[9].kind, ast::Stmt::Return);

  // The printed tree marks the unrolled statements.
  std::ostringstream os;
  ast::print(*c.module, os);
  EXPECT_NE(os.str().find("(bind-in-loop (h) (+ (call layer (name h) (kw "
                          "params \"l.2.2\")) 2))"),
            std::string::npos)
      << os.str();
}

TEST(Parser, Numbers) {
  EXPECT_EQ(printed("x * 0.125 + 10000.0 - 1e-12 + 12"),
            "(+ (- (+ (* (name x) 0.125) 10000.0) 1e-12) 12)");
}

TEST(Parser, Locations) {
  Compiled c = compile(model("  y = a + f(b, k=-c)\n  return y"), false);
  ASSERT_TRUE(c.ok) << c.diags;
  const ast::Stmt &s = c.module->models[0].body[0];
  EXPECT_EQ(s.loc.line, 2u);
  EXPECT_EQ(s.loc.col, 3u);
  const ast::Expr &add = *s.exprs[0];
  EXPECT_EQ(add.kind, ast::Expr::Binary);
  EXPECT_EQ(add.loc.col, 9u); // the operator
  EXPECT_EQ(add.args[0]->loc.col, 7u);
  const ast::Expr &call = *add.args[1];
  EXPECT_EQ(call.kind, ast::Expr::Call);
  EXPECT_EQ(call.loc.col, 11u); // the callee
  ASSERT_EQ(call.kwargs.size(), 1u);
  EXPECT_EQ(call.kwargs[0].name, "k");
  EXPECT_EQ(call.kwargs[0].loc.col, 16u);
  EXPECT_EQ(call.kwargs[0].value->kind, ast::Expr::Neg);
  EXPECT_EQ(call.kwargs[0].value->loc.col, 18u);
}

TEST(Parser, CallsAndKeywords) {
  EXPECT_EQ(printed("rope(x, pos, theta=500000.0, style=\"interleaved\")"),
            "(call rope (name x) (name pos) (kw theta 500000.0) (kw style "
            "\"interleaved\"))");
  EXPECT_EQ(printed("causal()"), "(call causal)");
  EXPECT_EQ(printed("f(g(x), h=i(j))"),
            "(call f (call g (name x)) (kw h (call i (name j))))");
  EXPECT_EQ(printed("softmax(s, mask=causal & padding(l))"),
            "(call softmax (name s) (kw mask (& (name causal) (call padding "
            "(name l)))))");
}

TEST(Parser, MultiNameBinding) {
  Compiled c = compile(model("  q, k,\n v = split(x, 3)\n  return q"), false);
  ASSERT_TRUE(c.ok) << c.diags;
  const ast::Stmt &s = c.module->models[0].body[0];
  EXPECT_EQ(s.kind, ast::Stmt::Bind);
  ASSERT_EQ(s.names, (std::vector<std::string>{"q", "k", "v"}));
  EXPECT_EQ(s.nameLocs[1].col, 6u);
  EXPECT_EQ(s.nameLocs[2].line, 3u);
  EXPECT_EQ(s.nameLocs[2].col, 2u);
}

TEST(Parser, ModelHeaderParamsAndReturn) {
  const char *src = "model first<B, S>(x: f32[B, S, 8], l: i32[B]) -> (f32[B, "
                    "S, 8], bf16[4]) {\n"
                    "  param w: f32[8, 8] = \"encoder.layer.0.weight\"\n"
                    "  param b: f16[8]\n"
                    "  return x, y\n"
                    "}\n"
                    "model second() -> bool[1] { return z }\n";
  Compiled c = compile(src, false);
  ASSERT_TRUE(c.ok) << c.diags;
  ASSERT_EQ(c.module->models.size(), 2u);
  const ast::Model &m = c.module->models[0];
  EXPECT_EQ(m.name, "first");
  EXPECT_EQ(m.syms, (std::vector<std::string>{"B", "S"}));
  EXPECT_EQ(m.symLocs[1].col, 16u);
  ASSERT_EQ(m.args.size(), 2u);
  EXPECT_EQ(m.args[1].name, "l");
  EXPECT_EQ(m.args[1].type.dtype, ast::DType::I32);
  EXPECT_EQ(m.args[0].type.dims[1].sym, "S");
  EXPECT_EQ(m.args[0].type.dims[2].size, 8);
  EXPECT_EQ(m.args[0].type.dims[2].loc.col, 32u);
  ASSERT_EQ(m.results.size(), 2u);
  EXPECT_EQ(m.results[1].dtype, ast::DType::BF16);
  ASSERT_EQ(m.body.size(), 3u);
  EXPECT_EQ(m.body[0].kind, ast::Stmt::Param);
  EXPECT_EQ(m.body[0].name, "w");
  EXPECT_EQ(m.body[0].weightName, "encoder.layer.0.weight");
  EXPECT_EQ(m.body[1].weightName, "b");
  EXPECT_EQ(m.body[1].type.dtype, ast::DType::F16);
  EXPECT_EQ(m.body[2].kind, ast::Stmt::Return);
  EXPECT_EQ(m.body[2].exprs.size(), 2u);
  EXPECT_EQ(m.end.line, 5u);
  EXPECT_EQ(m.end.col, 1u);
  const ast::Model &m2 = c.module->models[1];
  EXPECT_TRUE(m2.syms.empty());
  EXPECT_TRUE(m2.args.empty());
  EXPECT_EQ(m2.results[0].dtype, ast::DType::Bool);
}

TEST(Parser, PrintWholeModule) {
  const char *src = "model m<S>(x: f32[S, 4]) -> f32[S, 4] {\n"
                    "  param w: f32[4, 4] = \"lin.w\"\n"
                    "  a, b = split(x, 2)\n"
                    "  return linear(x, w) * 0.5\n"
                    "}\n";
  Compiled c = compile(src);
  ASSERT_TRUE(c.ok) << c.diags;
  std::ostringstream os;
  ast::print(*c.module, os);
  EXPECT_EQ(os.str(),
            "(module \"t.attn\"\n"
            "  (model m (sizes S)\n"
            "    (arg x f32[S, 4])\n"
            "    (result f32[S, 4])\n"
            "    (param w f32[4, 4] \"lin.w\")\n"
            "    (bind (a b) (call split :(f32[S, 2], f32[S, 2]) (name x "
            ":f32[S, 4]) 2))\n"
            "    (return (* :f32[S, 4] (call linear :f32[S, 4] (name x "
            ":f32[S, 4]) (name w :f32[4, 4])) 0.5))))\n");
}

struct SyntaxError {
  const char *src;
  const char *error;
};

/// How a failing case names itself in the test output.
void PrintTo(const SyntaxError &e, std::ostream *os) {
  *os << "source \"" << e.src << "\" expecting \"" << e.error << "\"";
}

class ParserErrors : public ::testing::TestWithParam<SyntaxError> {};

TEST_P(ParserErrors, FirstErrorOnly) {
  Compiled c = compile(GetParam().src, false);
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.firstError(), GetParam().error);
  EXPECT_EQ(c.numErrors(), 1u) << c.diags;
}

INSTANTIATE_TEST_SUITE_P(
    Syntax, ParserErrors,
    ::testing::Values(
        SyntaxError{"foo", "t.attn:1:1: error: expected 'model', found 'foo'"},
        SyntaxError{"model (", "t.attn:1:7: error: expected a model name after "
                               "'model', found '('"},
        SyntaxError{"model m<B S>", "t.attn:1:11: error: expected '>' to close "
                                    "the size list, found 'S'"},
        SyntaxError{"model m(x f32[4]) -> f32[4] {}",
                    "t.attn:1:11: error: expected ':' after the argument "
                    "name, found 'f32'"},
        SyntaxError{"model m(x: f32[4]) f32[4] {}",
                    "t.attn:1:20: error: expected '->' before the result "
                    "types, found 'f32'"},
        SyntaxError{"model m(x: f64[4]) -> f32[4] {}",
                    "t.attn:1:12: error: unknown dtype 'f64'; expected f32, "
                    "f16, bf16, i32 or bool"},
        SyntaxError{"model m(x: f32) -> f32[4] {}",
                    "t.attn:1:15: error: expected '[' after the dtype, found "
                    "')'"},
        SyntaxError{"model m(x: f32[]) -> f32[4] {}",
                    "t.attn:1:16: error: expected a dimension (an integer or "
                    "a size name), found ']'"},
        SyntaxError{"model m(x: f32[0]) -> f32[4] {}",
                    "t.attn:1:16: error: a dimension must be a positive "
                    "integer, found '0'"},
        SyntaxError{"model m(x: f32[2.5]) -> f32[4] {}",
                    "t.attn:1:16: error: a dimension must be a positive "
                    "integer, found '2.5'"},
        SyntaxError{"model m(x: f32[99999999999]) -> f32[4] {}",
                    "t.attn:1:16: error: dimension 99999999999 is too large "
                    "(the limit is 2147483647)"},
        SyntaxError{"model m(x: f32[4] -> f32[4] {}",
                    "t.attn:1:19: error: expected ')' to close the argument "
                    "list, found '->'"},
        SyntaxError{"model m() -> (f32[4], f32[4] {}",
                    "t.attn:1:30: error: expected ')' to close the result "
                    "types, found '{'"},
        SyntaxError{"model m() -> f32[4] {\n  y = f(x, a=1 b)\n}",
                    "t.attn:2:16: error: expected ')' to close the argument "
                    "list, found 'b'"},
        SyntaxError{"model m() -> f32[4] {\n  y = f(x + 1 = 2)\n}",
                    "t.attn:2:15: error: expected ')' to close the argument "
                    "list, found '='"},
        SyntaxError{"model m() -> f32[4] {\n  y = f(a=1, x)\n}",
                    "t.attn:2:14: error: positional argument after keyword "
                    "arguments"},
        SyntaxError{"model m() -> f32[4] {\n  y = (x + 1\n}",
                    "t.attn:3:1: error: expected ')' to close the "
                    "parenthesis, found '}'"},
        SyntaxError{"model m() -> f32[4] {\n  y = x +\n}",
                    "t.attn:3:1: error: expected an expression, found '}'"},
        SyntaxError{"model m() -> f32[4] {\n  y = style=\"a\"\n}",
                    "t.attn:2:12: error: expected a statement ('param', "
                    "'return' or 'name = ...'), found '='"},
        SyntaxError{"model m() -> f32[4] {\n  y = \"a\"\n}",
                    "t.attn:2:7: error: expected an expression, found string "
                    "\"a\""},
        SyntaxError{"model m() -> f32[4] {\n  x + y\n}",
                    "t.attn:2:5: error: expected '=' or ',' after 'x' in a "
                    "binding, found '+'"},
        SyntaxError{"model m() -> f32[4] {\n  a, = x\n}",
                    "t.attn:2:6: error: expected a name after ',' in a "
                    "binding, found '='"},
        SyntaxError{"model m() -> f32[4] {\n  param w f32[4]\n}",
                    "t.attn:2:11: error: expected ':' after the parameter "
                    "name, found 'f32'"},
        SyntaxError{"model m() -> f32[4] {\n  param w: f32[4] = w2\n}",
                    "t.attn:2:21: error: expected a string with the weight's "
                    "name in the weights file, found 'w2'"},
        SyntaxError{"model m() -> f32[4] {\n  return x\n",
                    "t.attn:3:1: error: expected '}' to close model 'm', "
                    "found end of file"},
        SyntaxError{"model m() -> f32[4] {\n  return x $\n}",
                    "t.attn:2:12: error: unexpected character '$'"},
        SyntaxError{"model m() -> f32[4] {\n  y = f(k=\"abc)\n}",
                    "t.attn:2:11: error: unterminated string"}));

INSTANTIATE_TEST_SUITE_P(
    LoopsAndSubscripts, ParserErrors,
    ::testing::Values(
        SyntaxError{"model m() -> f32[4] {\n  for i 0..3 { }\n}",
                    "t.attn:2:9: error: expected 'in' after the loop "
                    "variable, found '0'"},
        SyntaxError{"model m() -> f32[4] {\n  for i in 0 { }\n}",
                    "t.attn:2:14: error: expected '..' in the loop range "
                    "(A..B), found '{'"},
        SyntaxError{"model m() -> f32[4] {\n  for i in 0..n { }\n}",
                    "t.attn:2:15: error: expected an integer to end the loop "
                    "range, found 'n'"},
        SyntaxError{"model m() -> f32[4] {\n  for i in 0..5000 { }\n}",
                    "t.attn:2:3: error: a loop runs at most 4096 times, this "
                    "one 5000"},
        SyntaxError{"model m() -> f32[4] {\n  for i in 0..2 {\n    return "
                    "x\n  }\n}",
                    "t.attn:3:5: error: 'return' is not allowed in a loop "
                    "body"},
        SyntaxError{"model m() -> f32[4] {\n  for i in 0..2 {\n    y = x\n}",
                    "t.attn:4:2: error: expected '}' to close model 'm', "
                    "found end of file"},
        SyntaxError{"model m() -> f32[4] {\n  y = x[1, ]\n}",
                    "t.attn:2:12: error: expected an integer or a size name "
                    "in the subscript, found ']'"},
        SyntaxError{"model m() -> f32[4] {\n  y = x[1.5]\n}",
                    "t.attn:2:9: error: expected an integer or a size name "
                    "in the subscript, found '1.5'"},
        SyntaxError{"model m() -> f32[4] {\n  y = x[-S]\n}",
                    "t.attn:2:10: error: expected an integer or a size name "
                    "in the subscript, found 'S'"},
        SyntaxError{"model m() -> f32[4] {\n  y = x[0:1:2]\n}",
                    "t.attn:2:12: error: expected ']' to close the subscript, "
                    "found ':'"},
        SyntaxError{"model m() -> f32[4] {\n  y = x[0, 1\n}",
                    "t.attn:3:1: error: expected ']' to close the subscript, "
                    "found '}'"}));

TEST(Parser, DeepNestingIsAnErrorNotACrash) {
  std::string deep(100000, '(');
  Compiled c = compile(model("y = " + deep + "x"), false);
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.firstError(), "t.attn:2:261: error: expression is nested too "
                            "deeply (more than 256 levels)");
  EXPECT_EQ(c.numErrors(), 1u);

  std::string minus(100000, '-');
  EXPECT_FALSE(compile(model("y = " + minus + "x"), false).ok);

  std::string calls;
  for (int i = 0; i < 50000; ++i)
    calls += "gelu(";
  EXPECT_FALSE(compile(model("y = " + calls + "x"), false).ok);

  // A long left-associative chain parses in a loop but is still bounded.
  std::string chain = "x";
  for (int i = 0; i < 100000; ++i)
    chain += " + x";
  Compiled c2 = compile(model("y = " + chain), false);
  EXPECT_FALSE(c2.ok);
  EXPECT_NE(c2.firstError().find("nested too deeply"), std::string::npos);

  // 200 levels is fine.
  std::string ok = "x";
  for (int i = 0; i < 200; ++i)
    ok = "gelu(" + ok + ")";
  EXPECT_TRUE(compile(model("y = " + ok + "\nreturn y")).ok);
}

// "One file holds one or more models" (the design's grammar): a file with
// none is an error at its end, not an empty module.
TEST(Parser, FileWithoutAModelIsAnError) {
  for (const char *text : {"", "# nothing here\n"}) {
    Compiled c = compile(text, false);
    EXPECT_FALSE(c.ok) << "'" << text << "'";
    EXPECT_NE(c.firstError().find("expected 'model' (a file holds one or "
                                  "more models), found end of file"),
              std::string::npos)
        << c.firstError();
  }
}

} // namespace
