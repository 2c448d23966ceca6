//===- MLIRGen.cpp - Lowering of the checked AST to the attn dialect ------===//
#include "attn/Frontend/MLIRGen.h"
#include "attn/Dialect/AttnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"

using namespace mlir;

namespace {

class MLIRGenImpl {
public:
  MLIRGenImpl(MLIRContext &ctx, const attn::ast::Module &m)
      : ctx(ctx), b(&ctx), file(StringAttr::get(&ctx, m.file)) {}

  OwningOpRef<ModuleOp> gen(const attn::ast::Module &m) {
    OwningOpRef<ModuleOp> module = ModuleOp::create(loc({1, 1}));
    // Imported models first (a call needs its callee's symbol); they are
    // marked so that the library's table does not list them.
    for (const attn::ast::Model &model : m.imported) {
      b.setInsertionPointToEnd(module->getBody());
      genModel(model)->setAttr("attn.imported", b.getUnitAttr());
    }
    for (const attn::ast::Model &model : m.models) {
      b.setInsertionPointToEnd(module->getBody());
      genModel(model);
    }
    if (failed(verify(*module)))
      return nullptr;
    return module;
  }

private:
  using DType = attn::ast::DType;

  Location loc(attn::ast::Location l) {
    return FileLineColLoc::get(modelFile ? modelFile : file, l.line, l.col);
  }

  Type elementType(DType t) {
    switch (t) {
    case DType::F32:
      return b.getF32Type();
    case DType::F16:
      return b.getF16Type();
    case DType::BF16:
      return b.getBF16Type();
    case DType::I32:
      return b.getI32Type();
    case DType::Bool:
      return b.getI1Type();
    }
    return {};
  }

  RankedTensorType tensorType(DType dtype,
                              const std::vector<attn::ast::Dim> &dims) {
    SmallVector<int64_t> shape;
    for (const attn::ast::Dim &d : dims)
      shape.push_back(d.isStatic() ? d.size : ShapedType::kDynamic);
    return RankedTensorType::get(shape, elementType(dtype));
  }

  /// The interface attributes of one argument or result.
  DictionaryAttr interfaceAttrs(StringRef name, const attn::ast::TensorType &t,
                                StringRef weight = {}) {
    SmallVector<Attribute> dims;
    for (const attn::ast::Dim &d : t.dims)
      dims.push_back(d.isStatic() ? Attribute(b.getI64IntegerAttr(d.size))
                                  : Attribute(b.getStringAttr(d.sym)));
    SmallVector<NamedAttribute> attrs = {
        b.getNamedAttr("attn.name", b.getStringAttr(name)),
        b.getNamedAttr("attn.dims", b.getArrayAttr(dims))};
    if (!weight.empty())
      attrs.push_back(b.getNamedAttr("attn.weight", b.getStringAttr(weight)));
    return b.getDictionaryAttr(attrs);
  }

  func::FuncOp genModel(const attn::ast::Model &model) {
    modelFile = model.file.empty() ? StringAttr()
                                   : StringAttr::get(&ctx, model.file);
    SmallVector<Type> argTypes, resultTypes;
    SmallVector<Attribute> argAttrs, resultAttrs;
    std::vector<std::string> names;
    SmallVector<Location> argLocs;
    for (const attn::ast::Arg &a : model.args) {
      argTypes.push_back(tensorType(a.type.dtype, a.type.dims));
      DictionaryAttr attrs = interfaceAttrs(a.name, a.type);
      if (a.inout) {
        NamedAttrList list(attrs);
        list.append("attn.inout", b.getUnitAttr());
        attrs = list.getDictionary(&ctx);
      }
      argAttrs.push_back(attrs);
      names.push_back(a.name);
      argLocs.push_back(NameLoc::get(b.getStringAttr(a.name), loc(a.loc)));
    }
    for (const attn::ast::Stmt &s : model.body) {
      if (s.kind != attn::ast::Stmt::Param)
        continue;
      argTypes.push_back(tensorType(s.type.dtype, s.type.dims));
      argAttrs.push_back(interfaceAttrs(s.name, s.type, s.weightName));
      names.push_back(s.name);
      argLocs.push_back(NameLoc::get(b.getStringAttr(s.name), loc(s.loc)));
    }
    // The params that calls bind, named by their weight names.
    for (const attn::ast::BoundParam &p : model.calleeParams) {
      attn::ast::TensorType t{p.dtype, p.dims, p.loc};
      argTypes.push_back(tensorType(p.dtype, p.dims));
      argAttrs.push_back(interfaceAttrs(p.weightName, t, p.weightName));
      names.push_back("");
      argLocs.push_back(
          NameLoc::get(b.getStringAttr(p.weightName), loc(p.loc)));
    }
    for (auto [i, t] : llvm::enumerate(model.results)) {
      resultTypes.push_back(tensorType(t.dtype, t.dims));
      resultAttrs.push_back(interfaceAttrs("out" + std::to_string(i), t));
    }
    auto func = func::FuncOp::create(b, loc(model.loc), model.name,
                                     b.getFunctionType(argTypes, resultTypes));
    func.setAllArgAttrs(argAttrs);
    func.setAllResultAttrs(resultAttrs);
    SmallVector<Attribute> syms;
    for (const std::string &s : model.syms)
      syms.push_back(b.getStringAttr(s));
    func->setAttr("attn.syms", b.getArrayAttr(syms));

    Block *entry = func.addEntryBlock();
    for (auto [arg, l] : llvm::zip(entry->getArguments(), argLocs))
      arg.setLoc(l);
    b.setInsertionPointToStart(entry);
    env.clear();
    weights.clear();
    castCache.clear();
    for (auto [name, arg] : llvm::zip(names, entry->getArguments()))
      if (!name.empty())
        env[name] = arg;
    for (auto [i, arg] : llvm::enumerate(entry->getArguments()))
      if (auto w = func.getArgAttrOfType<StringAttr>(i, "attn.weight"))
        weights[w.getValue()] = arg;

    for (const attn::ast::Stmt &s : model.body) {
      if (s.kind == attn::ast::Stmt::Bind)
        genBind(s);
      else if (s.kind == attn::ast::Stmt::Return)
        genReturn(s, model, resultTypes);
    }
    return func;
  }

  void genBind(const attn::ast::Stmt &s) {
    SmallVector<Value> values = genMulti(*s.exprs.front());
    std::string joined;
    for (auto [name, v] : llvm::zip(s.names, values)) {
      env[name] = v;
      joined += (joined.empty() ? "" : ",") + name;
    }
    // Name the op that the binding introduces, so that generated code can
    // carry the DSL name.
    if (Operation *def = values.front().getDefiningOp())
      if (isa<FileLineColLoc>(def->getLoc()))
        def->setLoc(NameLoc::get(b.getStringAttr(joined), def->getLoc()));
  }

  void genReturn(const attn::ast::Stmt &s, const attn::ast::Model &model,
                 ArrayRef<Type> resultTypes) {
    SmallVector<Value> results;
    for (auto [e, type] : llvm::zip(s.exprs, resultTypes)) {
      Value v = gen(*e);
      if (v.getType() != type)
        v = attn::CastOp::create(b, loc(e->loc), type, v);
      results.push_back(v);
    }
    func::ReturnOp::create(b, loc(s.loc), results);
  }

  /// f16/bf16 values enter compute as f32, converted once per value; with
  /// `ints`, i32 values too (arithmetic mixing them with floats).
  Value f32(Value v, bool ints = false) {
    auto t = dyn_cast<RankedTensorType>(v.getType());
    if (!t || t.getElementType().isF32() ||
        !(isa<FloatType>(t.getElementType()) ||
          (ints && t.getElementType().isInteger(32))))
      return v;
    Value &cached = castCache[v];
    if (!cached) {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointAfterValue(v);
      cached = attn::CastOp::create(b, v.getLoc(),
                                    t.clone(b.getF32Type()), v);
    }
    return cached;
  }

  /// `v` in f32 for arithmetic: as f32(), and i32 operands too.
  Value toF32(Value v) { return f32(v, /*ints=*/true); }

  Value toMask(Value v, Location l) {
    if (isa<attn::MaskType>(v.getType()))
      return v;
    return attn::TensorMaskOp::create(b, l, v);
  }

  const attn::ast::Expr *keyword(const attn::ast::Expr &call, StringRef name) {
    for (const attn::ast::KeywordArg &k : call.kwargs)
      if (k.name == name)
        return k.value.get();
    return nullptr;
  }

  double constant(const attn::ast::Expr &call, StringRef name, double dflt) {
    const attn::ast::Expr *e = keyword(call, name);
    return e ? e->constant : dflt;
  }

  Value gen(const attn::ast::Expr &e) { return genMulti(e).front(); }

  SmallVector<Value> genMulti(const attn::ast::Expr &e) {
    using Expr = attn::ast::Expr;
    Location l = loc(e.loc);
    switch (e.kind) {
    case Expr::Number: {
      // f32, or i32 where Sema typed an integer literal next to an i32.
      bool i32 = !e.types.empty() && e.types[0].dtype == attn::ast::DType::I32;
      Type elt = i32 ? Type(b.getI32Type()) : Type(b.getF32Type());
      return {attn::ConstantOp::create(b, l, RankedTensorType::get({}, elt),
                                       b.getF64FloatAttr(e.number))};
    }
    case Expr::String:
      break; // Only keyword values; Sema rejects them elsewhere.
    case Expr::Name: {
      auto it = env.find(e.name);
      if (it != env.end())
        return {it->second};
      return {attn::CausalOp::create(b, l, Value())}; // the built-in `causal`
    }
    case Expr::Neg:
      return {attn::NegOp::create(b, l, f32(gen(*e.args[0])))};
    case Expr::Not:
      return {attn::NotOp::create(b, l, gen(*e.args[0]))};
    case Expr::Index:
      return {genIndex(e, l)};
    case Expr::Binary:
      return {genBinary(e, l)};
    case Expr::Call:
      return genCall(e, l);
    }
    llvm_unreachable("Sema lets no other expression through");
  }

  static bool isI32(Value v) {
    return cast<RankedTensorType>(v.getType()).getElementType().isInteger(32);
  }

  /// Two operands of arithmetic, a comparison, min/max or where: i32 when
  /// both are (Sema typed integer literals next to i32 as i32), else f32.
  void promote(Value &lhs, Value &rhs) {
    if (isI32(lhs) && isI32(rhs))
      return;
    lhs = toF32(lhs);
    rhs = toF32(rhs);
  }

  Value genBinary(const attn::ast::Expr &e, Location l) {
    Value lhs = gen(*e.args[0]), rhs = gen(*e.args[1]);
    // Sema's result type: i32 arithmetic keeps its operands; otherwise both
    // sides are computed in f32 (f16/bf16 and i32 operands cast).
    if (attn::ast::isComparison(e.op)) {
      promote(lhs, rhs);
      static const std::pair<char, attn::CmpPredicate> preds[] = {
          {'<', attn::CmpPredicate::lt}, {'L', attn::CmpPredicate::le},
          {'>', attn::CmpPredicate::gt}, {'G', attn::CmpPredicate::ge},
          {'E', attn::CmpPredicate::eq}, {'N', attn::CmpPredicate::ne}};
      attn::CmpPredicate pred = attn::CmpPredicate::eq;
      for (auto [c, p] : preds)
        if (c == e.op)
          pred = p;
      return attn::CmpOp::create(
          b, l, attn::CmpPredicateAttr::get(&ctx, pred), lhs, rhs);
    }
    if (e.op != '&' && e.op != '|' &&
        e.types[0].dtype != attn::ast::DType::I32) {
      lhs = toF32(lhs);
      rhs = toF32(rhs);
    }
    switch (e.op) {
    case '|':
      return attn::OrOp::create(b, l, lhs, rhs);
    case '+':
      return attn::AddOp::create(b, l, lhs, rhs);
    case '-':
      return attn::SubOp::create(b, l, lhs, rhs);
    case '*':
      return attn::MulOp::create(b, l, lhs, rhs);
    case '/':
      return attn::DivOp::create(b, l, lhs, rhs);
    case '&':
      if (isa<attn::MaskType>(lhs.getType()) ||
          isa<attn::MaskType>(rhs.getType()))
        return attn::MaskAndOp::create(b, l, toMask(lhs, l), toMask(rhs, l));
      return attn::AndOp::create(b, l, lhs, rhs);
    }
    llvm_unreachable("Sema lets no other operator through");
  }

  /// `x[...]`: one attn.slice per subscripted dim, the last dim first so
  /// that dropping a dim does not move the ones still to slice.
  Value genIndex(const attn::ast::Expr &e, Location l) {
    using Kind = attn::ast::Subscript::Kind;
    Value x = gen(*e.args[0]);
    for (size_t d = e.slices.size(); d-- > 0;) {
      const attn::ast::Expr::Slice &s = e.slices[d];
      if (s.kind == Kind::All)
        continue;
      auto type = cast<RankedTensorType>(x.getType());
      SmallVector<int64_t> shape(type.getShape());
      int64_t n = shape[d];
      if (s.kind == Kind::Index) {
        shape.erase(shape.begin() + d);
      } else if (!s.stopSym.empty()) {
        shape[d] = ShapedType::kDynamic;
      } else if (s.stop >= 0) {
        shape[d] = s.stop - s.start;
      } else if (!ShapedType::isDynamic(n)) {
        shape[d] = n - s.start;
      }
      x = attn::SliceOp::create(
          b, l, type.clone(shape), x, b.getI64IntegerAttr(d),
          b.getI64IntegerAttr(s.start),
          s.kind == Kind::Range && s.stop >= 0 ? b.getI64IntegerAttr(s.stop)
                                               : IntegerAttr(),
          s.stopSym.empty() ? StringAttr() : b.getStringAttr(s.stopSym),
          s.kind == Kind::Index ? b.getUnitAttr() : UnitAttr());
    }
    return x;
  }

  SmallVector<Value> genModelCall(const attn::ast::Expr &e, Location l) {
    SmallVector<Value> args, params;
    for (const attn::ast::ExprPtr &a : e.args)
      args.push_back(gen(*a));
    for (const attn::ast::BoundParam &p : e.calleeParams)
      params.push_back(weights.lookup(p.weightName));
    SmallVector<Type> types;
    for (const attn::ast::ValueType &t : e.types)
      types.push_back(tensorType(t.dtype, t.dims));
    std::string prefix;
    if (const attn::ast::Expr *p = keyword(e, "params"))
      prefix = p->name;
    auto call = attn::CallOp::create(
        b, l, types, FlatSymbolRefAttr::get(&ctx, e.callee->name), args,
        params, b.getStringAttr(prefix));
    return SmallVector<Value>(call.getResults());
  }

  SmallVector<Value> genCall(const attn::ast::Expr &e, Location l) {
    StringRef fn = e.name;
    if (e.callee)
      return genModelCall(e, l);
    if (fn == "cache_write") {
      const attn::ast::Dim &rows = e.args[1]->types[0].dims[2];
      return {attn::CacheWriteOp::create(
          b, l, gen(*e.args[0]), f32(gen(*e.args[1])), gen(*e.args[2]),
          rows.isStatic() ? Attribute(b.getI64IntegerAttr(rows.size))
                          : Attribute(b.getStringAttr(rows.sym)))};
    }
    if (fn == "unsqueeze") {
      Value x = gen(*e.args[0]);
      int64_t rank = cast<RankedTensorType>(x.getType()).getRank();
      int64_t d = (int64_t)constant(e, "dim", 0);
      return {attn::UnsqueezeOp::create(b, l, x, d < 0 ? d + rank + 1 : d)};
    }
    if (fn == "embedding") {
      const attn::ast::Expr &ids = *e.args[1];
      return {attn::EmbeddingOp::create(
          b, l, gen(*e.args[0]), gen(ids),
          b.getStringAttr(ids.kind == attn::ast::Expr::Name ? ids.name
                                                            : "ids"))};
    }
    if (fn == "arange") {
      const attn::ast::Expr &n = *e.args[0];
      bool sym = n.kind == attn::ast::Expr::Name;
      return {attn::ArangeOp::create(
          b, l,
          RankedTensorType::get(
              {sym ? ShapedType::kDynamic : (int64_t)n.constant},
              b.getI32Type()),
          sym ? IntegerAttr() : b.getI64IntegerAttr((int64_t)n.constant),
          sym ? b.getStringAttr(n.name) : StringAttr())};
    }
    if ((fn == "min" || fn == "max") && e.args.size() == 2) {
      Value lhs = gen(*e.args[0]), rhs = gen(*e.args[1]);
      promote(lhs, rhs);
      if (fn == "min")
        return {attn::MinOp::create(b, l, lhs, rhs)};
      return {attn::MaxOp::create(b, l, lhs, rhs)};
    }
    if (fn == "where") {
      Value lhs = gen(*e.args[1]), rhs = gen(*e.args[2]);
      promote(lhs, rhs);
      return {attn::SelectOp::create(b, l, gen(*e.args[0]), lhs, rhs)};
    }
    // Operands are lowered in source order: positional, then keywords.
    SmallVector<Value> args;
    for (const attn::ast::ExprPtr &a : e.args)
      args.push_back(a->isConstant ? Value() : f32(gen(*a))); // split's n
    auto arg = [&](unsigned i) { return args[i]; };
    auto optional = [&](unsigned i) {
      return i < args.size() ? args[i] : Value();
    };
    const attn::ast::Expr *maskExpr = keyword(e, "mask");
    Value mask = maskExpr ? toMask(gen(*maskExpr), loc(maskExpr->loc)) : Value();
    const attn::ast::Expr *biasExpr = keyword(e, "bias");
    Value bias = biasExpr ? f32(gen(*biasExpr)) : Value();

    if (fn == "linear")
      return {attn::LinearOp::create(b, l, arg(0), arg(1), optional(2))};
    if (fn == "matmul")
      return {attn::MatmulOp::create(b, l, arg(0), arg(1))};
    if (fn == "transpose")
      return {attn::TransposeOp::create(b, l, arg(0))};
    if (fn == "split_heads")
      return {attn::SplitHeadsOp::create(b, l, arg(0),
                                         (int64_t)constant(e, "heads", 0))};
    if (fn == "merge_heads")
      return {attn::MergeHeadsOp::create(b, l, arg(0))};
    if (fn == "split") {
      int64_t n = e.args.size() > 1 ? (int64_t)e.args[1]->constant
                                    : (int64_t)constant(e, "n", 0);
      auto op = attn::SplitOp::create(b, l, arg(0), n);
      return SmallVector<Value>(op.getResults());
    }
    if (fn == "concat") {
      Value lhs = arg(0);
      int64_t rank = cast<RankedTensorType>(lhs.getType()).getRank();
      int64_t axis = (int64_t)constant(e, "axis", -1);
      return {attn::ConcatOp::create(b, l, lhs, arg(1),
                                     axis < 0 ? axis + rank : axis)};
    }
    if (fn == "softmax")
      return {attn::SoftmaxOp::create(b, l, arg(0), mask)};
    if (fn == "attention") {
      const attn::ast::Expr *scale = keyword(e, "scale");
      return {attn::AttentionOp::create(
          b, l, arg(0), arg(1), arg(2), mask, bias,
          scale ? b.getF64FloatAttr(scale->constant) : FloatAttr())};
    }
    if (fn == "causal")
      return {attn::CausalOp::create(b, l, optional(0))};
    if (fn == "sliding_window")
      return {attn::SlidingWindowOp::create(
          b, l, (int64_t)(e.args.empty() ? constant(e, "W", 0)
                                         : e.args[0]->constant))};
    if (fn == "padding")
      return {attn::PaddingOp::create(b, l, arg(0))};
    if (fn == "layer_norm")
      return {attn::LayerNormOp::create(b, l, arg(0), arg(1), arg(2),
                                        b.getF64FloatAttr(constant(e, "eps", 1e-5)))};
    if (fn == "rms_norm")
      return {attn::RmsNormOp::create(b, l, arg(0), arg(1),
                                      b.getF64FloatAttr(constant(e, "eps", 1e-6)))};
    if (fn == "gelu")
      return {attn::GeluOp::create(b, l, arg(0))};
    if (fn == "gelu_tanh")
      return {attn::GeluTanhOp::create(b, l, arg(0))};
    if (fn == "silu")
      return {attn::SiluOp::create(b, l, arg(0))};
    if (fn == "relu")
      return {attn::ReluOp::create(b, l, arg(0))};
    if (fn == "exp")
      return {attn::ExpOp::create(b, l, arg(0))};
    if (fn == "log")
      return {attn::LogOp::create(b, l, arg(0))};
    if (fn == "sqrt")
      return {attn::SqrtOp::create(b, l, arg(0))};
    if (fn == "rsqrt")
      return {attn::RsqrtOp::create(b, l, arg(0))};
    if (fn == "tanh")
      return {attn::TanhOp::create(b, l, arg(0))};
    if (fn == "sigmoid")
      return {attn::SigmoidOp::create(b, l, arg(0))};
    if (fn == "abs")
      return {attn::AbsOp::create(b, l, arg(0))};
    if (fn == "sum" || fn == "mean" || fn == "max" || fn == "min") {
      attn::ReduceKind kind = fn == "sum"    ? attn::ReduceKind::sum
                              : fn == "mean" ? attn::ReduceKind::mean
                              : fn == "max"  ? attn::ReduceKind::max
                                             : attn::ReduceKind::min;
      int64_t rank = cast<RankedTensorType>(arg(0).getType()).getRank();
      int64_t dim = (int64_t)constant(e, "dim", 0);
      return {attn::ReduceOp::create(
          b, l, attn::ReduceKindAttr::get(&ctx, kind), arg(0),
          b.getI64IntegerAttr(dim < 0 ? dim + rank : dim),
          constant(e, "keepdim", 0) != 0 ? b.getUnitAttr() : UnitAttr())};
    }
    if (fn == "mean_pool")
      return {attn::MeanPoolOp::create(b, l, arg(0), arg(1))};
    if (fn == "l2_normalize")
      return {attn::L2NormalizeOp::create(
          b, l, arg(0), b.getF64FloatAttr(constant(e, "eps", 1e-12)))};
    if (fn == "rope") {
      const attn::ast::Expr *style = keyword(e, "style");
      bool interleaved = style && style->name == "interleaved";
      return {attn::RopeOp::create(b, l, arg(0), arg(1),
          b.getF64FloatAttr(constant(e, "theta", 10000.0)),
          interleaved ? b.getUnitAttr() : UnitAttr())};
    }
    llvm_unreachable("Sema lets no unknown function through");
  }

  MLIRContext &ctx;
  OpBuilder b;
  StringAttr file;
  StringAttr modelFile; ///< an imported model's own file
  llvm::StringMap<Value> env;
  llvm::StringMap<Value> weights; ///< params by weight name (model calls)
  llvm::DenseMap<Value, Value> castCache;
};

} // namespace

OwningOpRef<ModuleOp> attn::mlirGen(MLIRContext &context,
                                    const ast::Module &module) {
  context.getOrLoadDialect<attn::AttnDialect>();
  context.getOrLoadDialect<func::FuncDialect>();
  return MLIRGenImpl(context, module).gen(module);
}
