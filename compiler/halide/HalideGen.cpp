//===- HalideGen.cpp - The Halide algorithm of an attn model --------------===//
//
// Each model (func.func) becomes one Halide pipeline: every argument an
// ImageParam, every attn op one Func (plus a few helper Funcs for its
// reductions). This file walks the model and dispatches each op to its
// family's kernel (kernels/*.cpp); Schedule.cpp schedules the result.
//
// Conventions:
//  - A tensor value is a Func plus its extents as Exprs, in MLIR order
//    (outermost first). Halide's argument order is the reverse (dim 0 is the
//    innermost), so Funcs are always defined and called through `def`/`at`,
//    which take MLIR-order indices and reverse them.
//  - i1 tensors are uint8 (0 or 1) in Halide.
//  - A computed index that Halide cannot bound by itself (select, subtraction
//    of a runtime value) is clamped into the producer's extent, so bounds
//    inference never reads outside an input buffer.
//
//===----------------------------------------------------------------------===//
#include "Lowering.h"
#include "attn/Halide/Emit.h"
#include "attn/Transforms/Passes.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/TypeSwitch.h"

#include <climits>
#include <stdexcept>

using namespace mlir;

namespace attn::detail {

//===----------------------------------------------------------------------===//
// Names
//===----------------------------------------------------------------------===//

std::string PipelineBuilder::uniqueName(std::string base) {
  unsigned &n = names[base];
  if (n++ == 0)
    return base;
  return uniqueName(base + "_" + std::to_string(n));
}

/// `q_split_heads_L17` for NameLoc("q", file:17:c), `linear_L17` for a plain
/// file:line:col location (see attn::opDisplayName), made unique.
std::string PipelineBuilder::opName(Operation *op) {
  return uniqueName(attn::opDisplayName(op));
}

Func PipelineBuilder::newFunc(Operation *op, const std::string &name,
                              bool inlined, attn::OpFunc::Role role) {
  Func f(name);
  out.funcs.push_back({f, op, inlined, role});
  return f;
}

//===----------------------------------------------------------------------===//
// Arguments and results
//===----------------------------------------------------------------------===//

LogicalResult PipelineBuilder::lowerArguments() {
  if (auto syms = model->getAttrOfType<ArrayAttr>("attn.syms"))
    for (Attribute s : syms)
      out.syms.push_back(cast<StringAttr>(s).getValue().str());

  for (unsigned a = 0; a < model.getNumArguments(); ++a)
    if (failed(attn::catchHalideErrors(model.getArgument(a).getLoc(),
                                       [&] { return lowerArgument(a); })))
      return failure();
  return success();
}

LogicalResult PipelineBuilder::lowerArgument(unsigned a) {
  auto symIndex = [&](StringRef s) -> int64_t {
    auto it = std::find(out.syms.begin(), out.syms.end(), s.str());
    if (it == out.syms.end()) { // a derived size ("T+1"): listed too
      out.syms.push_back(s.str());
      return out.syms.size() - 1;
    }
    return it - out.syms.begin();
  };
  {
    auto type = cast<RankedTensorType>(model.getArgument(a).getType());
    auto name = model.getArgAttrOfType<StringAttr>(a, "attn.name");
    auto dims = model.getArgAttrOfType<ArrayAttr>(a, "attn.dims");
    auto weight = model.getArgAttrOfType<StringAttr>(a, "attn.weight");
    if (!name || !dims || dims.size() != (size_t)type.getRank())
      return emitError(model.getLoc(), "argument ")
             << a << " lacks attn.name/attn.dims matching its type";

    attn::TensorDesc desc;
    desc.name = name.getValue().str();
    desc.role = weight ? attn::TensorDesc::Param
                : model.getArgAttr(a, "attn.inout") ? attn::TensorDesc::Inout
                                                    : attn::TensorDesc::Input;
    desc.weightName = weight ? weight.getValue().str() : "";
    desc.dtype = tableType(type.getElementType());

    int rank = type.getRank();
    // Weight names ("encoder.layer.0.query.weight") may hold characters
    // that Halide names cannot.
    std::string pname = desc.name;
    for (char &c : pname)
      if (!isalnum((unsigned char)c) && c != '_')
        c = '_';
    // A weight that only calls use reaches them through the buffer table
    // (CallStub): no ImageParam.
    bool callOnly = desc.role == attn::TensorDesc::Param;
    for (OpOperand &use : model.getArgument(a).getUses()) {
      auto call = dyn_cast<attn::CallOp>(use.getOwner());
      callOnly &= call && use.getOperandNumber() >= call.getArgs().size();
    }
    if (callOnly && !model.getArgument(a).use_empty()) {
      for (Attribute d : dims)
        desc.dims.push_back(isa<IntegerAttr>(d)
                                ? cast<IntegerAttr>(d).getInt()
                                : -(symIndex(cast<StringAttr>(d).getValue()) +
                                    1));
      params.push_back(Halide::ImageParam());
      out.tensors.push_back(desc);
      return success();
    }
    Halide::ImageParam p(halideType(type.getElementType()), rank,
                         uniqueName(pname));
    Tensor t;
    t.func = p;
    for (int k = 0; k < rank; ++k) {
      Halide::Internal::Dimension dim = p.dim(rank - 1 - k);
      dim.set_min(0);
      Attribute d = dims[k];
      if (auto i = dyn_cast<IntegerAttr>(d)) {
        dim.set_extent((int)i.getInt());
        t.shape.push_back((int)i.getInt());
        desc.dims.push_back(i.getInt());
        continue;
      }
      StringRef sym = cast<StringAttr>(d).getValue();
      desc.dims.push_back(-(symIndex(sym) + 1));
      auto it = symbols.find(sym);
      if (it == symbols.end()) {
        symbols[sym] = dim.extent();
        t.shape.push_back(dim.extent());
      } else {
        dim.set_extent(it->second); // Halide checks the sizes agree
        t.shape.push_back(it->second);
      }
    }
    // The runtime passes dense row-major tensors: say so, so that rows are
    // a constant stride apart in the generated loops (Halide checks it).
    Expr stride = 1;
    for (int k = 0; k < rank; ++k) {
      p.dim(k).set_stride(stride);
      stride = stride * extentByName(p.name(), k);
    }
    tensors[model.getArgument(a)] = t;
    params.push_back(p);
    out.args.push_back(p);
    out.argTensors.push_back(out.tensors.size());
    out.tensors.push_back(desc);
  }
  return success();
}

LogicalResult PipelineBuilder::lowerResults(func::ReturnOp ret) {
  for (unsigned r = 0; r < ret.getNumOperands(); ++r) {
    auto type = cast<RankedTensorType>(ret.getOperand(r).getType());
    auto name = model.getResultAttrOfType<StringAttr>(r, "attn.name");
    auto dims = model.getResultAttrOfType<ArrayAttr>(r, "attn.dims");
    if (!name || !dims || dims.size() != (size_t)type.getRank())
      return emitError(model.getLoc(), "result ")
             << r << " lacks attn.name/attn.dims matching its type";

    attn::TensorDesc desc;
    desc.name = name.getValue().str();
    desc.role = attn::TensorDesc::Output;
    desc.dtype = tableType(type.getElementType());

    // A copy into a Func of its own: outputs must be distinct Funcs, and the
    // value may also be an input or feed other ops.
    const Tensor &value = get(ret.getOperand(r));
    Func f(uniqueName(desc.name));
    std::vector<Var> vs = makeVars(type.getRank());
    def(f, vs, value.at(asExprs(vs)));
    int rank = type.getRank();
    for (int k = 0; k < rank; ++k) {
      Halide::Internal::Dimension dim = f.output_buffer().dim(rank - 1 - k);
      dim.set_min(0);
      Attribute d = dims[k];
      if (auto i = dyn_cast<IntegerAttr>(d)) {
        dim.set_extent((int)i.getInt());
        desc.dims.push_back(i.getInt());
        continue;
      }
      StringRef sym = cast<StringAttr>(d).getValue();
      auto it = std::find(out.syms.begin(), out.syms.end(), sym.str());
      if (it == out.syms.end()) { // a derived size ("T+1"): listed too
        out.syms.push_back(sym.str());
        it = out.syms.end() - 1;
      }
      desc.dims.push_back(-(int64_t)(it - out.syms.begin()) - 1);
      if (Expr e = symbolExtent(sym); e.defined())
        dim.set_extent(e);
    }
    Expr stride = 1;
    for (int k = 0; k < rank; ++k) {
      f.output_buffer().dim(k).set_stride(stride);
      stride = stride * extentByName(f.name(), k);
    }
    out.outputs.push_back(f);
    out.tensors.push_back(desc);
    // An op result used only here may be computed in the output Func itself
    // (Schedule.cpp inlines it and gives the output its schedule) instead of
    // being copied: a plain op, a norm, a projection's epilogue or the
    // attention output.
    Value v = ret.getOperand(r);
    out.outputSources.push_back(outputSource(v, v.hasOneUse()));
  }
  return success();
}

Func PipelineBuilder::outputSource(Value v, bool onlyUse) {
  const Tensor &value = get(v);
  Func source;
  if (Operation *def = v.getDefiningOp(); def && onlyUse)
    for (const attn::OpFunc &of : out.funcs)
      if (of.op == def && of.func.name() == value.func.name() &&
          (of.role == Role::Plain || of.role == Role::Norm ||
           of.role == Role::GemmOut || of.role == Role::Attention) &&
          !of.func.has_update_definition())
        source = of.func;
  return source;
}

//===----------------------------------------------------------------------===//
// Splitting a model into segments
//===----------------------------------------------------------------------===//

int PipelineBuilder::rootCost(Operation &op) {
  using namespace attn;
  if (op.getNumResults() == 0 ||
      isa<CausalOp, SlidingWindowOp, PaddingOp, TensorMaskOp, MaskAndOp>(op))
    return 0;
  if (auto s = op.getAttrOfType<AttnScheduleAttrInterface>("attn.schedule"))
    return s.getComputeKind() == ComputeKind::Root ? 1 : 0;
  return 1;
}

bool PipelineBuilder::crossing(llvm::ArrayRef<Value> open, Crossing &c) {
  c = Crossing();
  // A mask is a function that the next segment lowers again from its op,
  // so the tensors it reads cross instead (masks read model arguments,
  // mostly), needed as long as the mask is.
  llvm::DenseMap<Operation *, unsigned> visited;
  std::function<void(Value, unsigned)> add = [&](Value v, unsigned until) {
    until = std::max(until, lastUse.lookup(v));
    if (isa<BlockArgument>(v))
      return;
    if (auto b = boundaryOf.find(v); b != boundaryOf.end()) {
      c.extend.push_back({b->second, until});
      return;
    }
    if (!masks.count(v)) {
      auto at = llvm::find(c.values, v);
      if (at == c.values.end()) {
        c.values.push_back(v);
        c.until.push_back(until);
      } else {
        unsigned &u = c.until[at - c.values.begin()];
        u = std::max(u, until);
      }
      return;
    }
    Operation *def = v.getDefiningOp();
    auto [it, fresh] = visited.try_emplace(def, until);
    if (!fresh && it->second >= until)
      return;
    it->second = std::max(it->second, until);
    if (fresh)
      c.maskOps.push_back(def);
    for (Value operand : def->getOperands())
      add(operand, until);
  };
  for (Value v : open)
    add(v, 0);
  if (c.values.empty() || c.values.size() > 8)
    return false;
  for (Value v : c.values) {
    auto it = tensors.find(v);
    if (it == tensors.end() || !it->second.func.defined() ||
        it->second.func.outputs() != 1 || it->second.rank() == 0)
      return false;
    // An index map (#attn.inline) crossing would be copied.
    if (Operation *def = v.getDefiningOp())
      if (rootCost(*def) == 0)
        return false;
    for (const Expr &e : it->second.shape)
      if (attn::sizeProgram(out, e).empty())
        return false;
  }
  llvm::sort(c.maskOps, [&](Operation *a, Operation *b) {
    return opIndex.lookup(a) < opIndex.lookup(b);
  });
  return true;
}

void PipelineBuilder::cut(const Crossing &c, int cutAt) {
  std::vector<Func> outputs, sources;
  std::vector<int> targets;
  for (auto [j, until] : c.extend)
    boundaryLastOp[j] = std::max(boundaryLastOp[j], until);
  for (auto [v, until] : llvm::zip(c.values, c.until)) {
    Tensor t = get(v);
    size_t rank = t.rank();
    attn::Boundary b;
    b.type = t.func.output_types()[0];
    b.shape = t.shape;
    b.producer = out.segments.size();
    // The producer writes the value into a dense buffer of its own ...
    Func f(uniqueName(t.func.name() + "_cut"));
    std::vector<Var> vs = makeVars(rank);
    def(f, vs, t.at(asExprs(vs)));
    // ... that the next segments read.
    Halide::ImageParam p(b.type, rank, uniqueName(t.func.name() + "_in"));
    b.name = p.name();
    Expr stride = 1, pstride = 1;
    for (size_t k = 0; k < rank; ++k) {
      Expr extent = t.shape[rank - 1 - k];
      for (Halide::Internal::Dimension dim :
           {f.output_buffer().dim(k), p.dim(k)})
        dim.set_min(0).set_extent(extent);
      f.output_buffer().dim(k).set_stride(stride);
      p.dim(k).set_stride(pstride);
      stride = stride * extentByName(f.name(), k);
      pstride = pstride * extentByName(p.name(), k);
    }
    bool onlyLater = llvm::all_of(v.getUsers(), [&](Operation *u) {
      Operation *a = model.getBody().front().findAncestorOpInBlock(*u);
      return !a || (int)opIndex.lookup(a) > cutAt;
    });
    outputs.push_back(f);
    sources.push_back(outputSource(v, onlyLater));
    targets.push_back(attn::boundaryRef(out.boundaries.size()));
    boundaryOf[v] = out.boundaries.size();
    boundaryLastOp.push_back(until);
    out.boundaries.push_back(b);
    tensors[v] = {p, t.shape};
  }
  cuts.push_back(cutAt);
  closeSegment(outputs, sources, targets);
  for (Operation *op : c.maskOps)
    masks[op->getResult(0)] = lowerMask(op);
}

void PipelineBuilder::closeSegment(std::vector<Func> outputs,
                                   std::vector<Func> sources,
                                   std::vector<int> targets) {
  attn::ModelPipeline seg{out.name, out.functionName, out.loc};
  seg.internal = true;
  seg.halideName = out.functionName + "__impl_seg" +
                   std::to_string(out.segments.size());
  seg.funcs = std::move(out.funcs);
  seg.attentions = std::move(out.attentions);
  seg.gemms = std::move(out.gemms);
  seg.norms = std::move(out.norms);
  seg.externs = std::move(out.externs);
  out.funcs.clear();
  out.attentions.clear();
  out.gemms.clear();
  out.norms.clear();
  out.externs.clear();
  seg.outputs = std::move(outputs);
  seg.outputSources = std::move(sources);
  seg.outputTensors = std::move(targets);
  seg.pipeline = Halide::Pipeline(seg.outputs);
  for (const Halide::Argument &a : seg.pipeline.infer_arguments()) {
    int ref = a.name == table.name() ? -1 : INT_MIN;
    for (size_t i = 0; i < out.args.size() && ref == INT_MIN; ++i)
      if (out.args[i].name == a.name)
        ref = out.argTensors[i];
    for (size_t j = 0; j < out.boundaries.size() && ref == INT_MIN; ++j)
      if (out.boundaries[j].name == a.name)
        ref = attn::boundaryRef(j);
    if (ref == INT_MIN)
      throw std::runtime_error("segment " + seg.halideName +
                               " reads '" + a.name +
                               "', which is no argument of the model");
    seg.args.push_back(a);
    seg.argTensors.push_back(ref);
  }
  out.segments.push_back(std::move(seg));
}

//===----------------------------------------------------------------------===//
// Calls and KV cache writes
//===----------------------------------------------------------------------===//

/// attn.call as an extern stage that runs the callee's own pipeline (see
/// CallStub). The callee's sizes are the caller's argument extents, so its
/// results' extents follow from the callee's attn.dims.
LogicalResult PipelineBuilder::lowerCall(attn::CallOp op) {
  auto callee = SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(
      op, op.getCalleeAttr());
  if (!callee)
    return op.emitError("calls unknown model @") << op.getCallee();
  attn::CallStub stub;
  stub.callee = attn::halideFunctionName(callee.getSymName());
  stub.name = "attn__stub_" + callee.getSymName().str();
  stub.numParams = op.getParams().size();

  // The callee's sizes in terms of the caller's extents.
  llvm::StringMap<Expr> sizes;
  std::vector<Halide::ExternFuncArgument> xargs;
  auto entryArg = [](Value v) {
    auto arg = dyn_cast<BlockArgument>(v);
    return arg && arg.getOwner()->isEntryBlock() ? arg : BlockArgument();
  };
  for (auto [i, a] : llvm::enumerate(op.getArgs())) {
    const Tensor &t = get(a);
    auto dims = callee.getArgAttrOfType<ArrayAttr>(i, "attn.dims");
    bool inout = (bool)callee.getArgAttr(i, "attn.inout");
    stub.argInout.push_back(inout);
    if (inout) {
      // The caller's own buffer, whole or one slice of its dim 0: the
      // callee writes into it in place.
      BlockArgument whole = entryArg(a);
      int slice = -1;
      if (auto sl = a.getDefiningOp<attn::SliceOp>();
          sl && sl.getDrop() && sl.getDim() == 0 && sl.getStart() >= 0) {
        whole = entryArg(sl.getX());
        slice = (int)sl.getStart();
      }
      if (!whole)
        return op.emitError("inout argument ")
               << i << " of @" << op.getCallee()
               << " must be an inout argument of the caller or a slice of one";
      xargs.push_back(params[whole.getArgNumber()]);
      xargs.push_back(Expr(slice));
      for (size_t k = 0; k < t.rank(); ++k)
        if (auto sym = dims ? dyn_cast<StringAttr>(dims[k]) : StringAttr())
          sizes.try_emplace(sym.getValue(), t.shape[k]);
      stub.argRanks.push_back(t.rank());
      continue;
    }
    auto arg = dyn_cast<BlockArgument>(a);
    if (arg && arg.getOwner()->isEntryBlock())
      xargs.push_back(params[arg.getArgNumber()]);
    else
      xargs.push_back(t.func);
    for (size_t k = 0; k < t.rank(); ++k) {
      xargs.push_back(Halide::cast<int32_t>(t.shape[k]));
      if (auto sym = dims ? dyn_cast<StringAttr>(dims[k]) : StringAttr())
        sizes.try_emplace(sym.getValue(), t.shape[k]);
    }
    stub.argRanks.push_back(t.rank());
  }
  if (!hasTable) {
    hasTable = true;
    out.args.push_back(table);
    out.argTensors.push_back(-1);
  }
  xargs.push_back(table);
  for (Value p : op.getParams()) {
    auto arg = dyn_cast<BlockArgument>(p);
    if (!arg || !arg.getOwner()->isEntryBlock())
      return op.emitError("a call's params must be the model's own params");
    xargs.push_back((int)arg.getArgNumber()); // inputs, params: table order
  }
  std::vector<std::vector<Expr>> shapes;
  Expr total = 0;
  for (auto [r, v] : llvm::enumerate(op.getResults())) {
    auto type = cast<RankedTensorType>(v.getType());
    auto dims = callee.getResultAttrOfType<ArrayAttr>(r, "attn.dims");
    std::vector<Expr> shape;
    Expr size = 1;
    for (int64_t k = 0; k < type.getRank(); ++k) {
      Expr e;
      if (auto n = dims ? dyn_cast<IntegerAttr>(dims[k]) : IntegerAttr())
        e = (int)n.getInt();
      else if (auto sym = dims ? dyn_cast<StringAttr>(dims[k]) : StringAttr())
        e = sizes.lookup(sym.getValue());
      if (!e.defined())
        return op.emitError("result ") << r << " of @" << op.getCallee()
                                       << " has a size its arguments do not bind";
      shape.push_back(e);
      size = size * e;
      xargs.push_back(Halide::cast<int32_t>(e));
    }
    total = total + size;
    shapes.push_back(shape);
    stub.resultRanks.push_back(type.getRank());
    stub.resultTypes.push_back(halideType(type.getElementType()));
  }

  std::string name = opName(op);
  size_t n = shapes.size();
  stub.packed = n > 1;
  if (stub.packed)
    for (Value v : op.getResults())
      if (halideType(cast<RankedTensorType>(v.getType()).getElementType())
              .bytes() != 4)
        return op.emitError("a call of a model with several results needs "
                            "f32 or i32 results for now, got ")
               << v.getType();
  Func ext(uniqueName(name));
  if (!stub.packed) {
    std::vector<Expr> shape = shapes[0];
    if (shape.empty())
      shape.push_back(1); // a scalar as one element
    std::vector<Var> vs = makeVars(shape.size());
    ext.define_extern(stub.name, xargs, stub.resultTypes[0],
                      std::vector<Var>(vs.rbegin(), vs.rend()));
    for (size_t k = 0; k < shape.size(); ++k)
      ext.bound(vs[k], 0, shape[k]);
    Func f = ext;
    if (shapes[0].empty()) {
      f = newFunc(op, name + "_0", /*inlined=*/true);
      f() = ext(0);
    }
    tensors[op.getResult(0)] = {f, shapes[0]};
  } else {
    Var x("d0");
    ext.define_extern(stub.name, xargs, Halide::Float(32),
                      std::vector<Var>{x});
    ext.bound(x, 0, simplified(total));
    Expr offset = 0;
    for (size_t r = 0; r < n; ++r) {
      std::vector<Var> vs = makeVars(shapes[r].size());
      Expr flat = 0;
      for (size_t k = 0; k < shapes[r].size(); ++k)
        flat = flat * shapes[r][k] + vs[k];
      Expr v = ext(simplified(offset) + flat);
      if (stub.resultTypes[r] != Halide::Float(32))
        v = Halide::reinterpret(stub.resultTypes[r], v);
      Func f = newFunc(op, name + "_" + std::to_string(r), /*inlined=*/true);
      def(f, vs, v);
      tensors[op.getResult(r)] = {f, shapes[r]};
      Expr size = 1;
      for (const Expr &e : shapes[r])
        size = size * e;
      offset = offset + size;
    }
  }
  out.externs.push_back(ext);
  bool known = false;
  for (const attn::CallStub &s : out.stubs)
    known |= s.name == stub.name;
  if (!known)
    out.stubs.push_back(stub);
  return success();
}

/// The cache after the write, read in place (never copied):
///   result[b, h, t, d] = t - start[b] in [0, S) ? new[b, h, t - start[b], d]
///                                               : cache[b, h, t, d]
/// The new rows and the starts are extra outputs that the C wrapper writes
/// back (CacheWrite); a start outside [0, T - S] fails the call.
Tensor PipelineBuilder::lowerCacheWrite(attn::CacheWriteOp op) {
  const Tensor &cache = get(op.getCache());
  const Tensor &rows = get(op.getNewRows());
  const Tensor &start = get(op.getStart());
  std::string name = opName(op);
  Expr S = rows.shape[2], T = cache.shape[2];
  auto arg = cast<BlockArgument>(op.getCache());
  std::string cacheName =
      model.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "attn.name")
          .getValue()
          .str();

  Var c("c");
  Func range = newFunc(op, name + "_startrange", false, Role::Host);
  range(c) = Halide::select(c == 0, Halide::Int(32).max(),
                            Halide::Int(32).min());
  RDom rb(0, start.shape[0], "b");
  range(0) = Halide::min(range(0), start.at({rb}));
  range(1) = Halide::max(range(1), start.at({rb}));
  Func check = newFunc(op, name + "_startcheck", false, Role::Host);
  check(c) = Halide::require(range(0) >= 0 && range(1) + S <= T, 0,
                             "cache_write:", cacheName, "holds", T,
                             "positions but start + S reaches", range(1) + S,
                             "(smallest start", range(0), ")");

  std::vector<Var> vs = makeVars(4);
  Expr b = vs[0], t = vs[2];
  // (Reads stay in bounds whatever start is: the check fails the call
  // through the starts output, which the write-back needs.)
  Expr local = t - start.at({b});
  // The new rows as the cache stores them (an f16/bf16 cache rounds them),
  // so that this call reads what later calls will read from the cache.
  Halide::Type cacheType = halideType(
      cast<RankedTensorType>(op.getCache().getType()).getElementType());
  Expr fresh = Halide::cast<float>(Halide::cast(
      cacheType,
      rows.at({vs[0], vs[1], Halide::clamp(local, 0, S - 1), vs[3]})));
  Expr old = Halide::cast<float>(cache.at(asExprs(vs)));
  Func merged = newFunc(op, name, /*inlined=*/true);
  def(merged, vs, Halide::select(local >= 0 && local < S, fresh, old));

  attn::CacheWrite w;
  w.cache = arg.getArgNumber();
  if (auto n = dyn_cast<IntegerAttr>(op.getRows()))
    w.rows = n.getInt();
  else {
    StringRef sym = cast<StringAttr>(op.getRows()).getValue();
    auto it = std::find(out.syms.begin(), out.syms.end(), sym.str());
    w.rows = -(int64_t)(it - out.syms.begin()) - 1;
  }
  w.type = cacheType;
  w.newRows = Func(uniqueName(cacheName + "_rows"));
  def(w.newRows, vs, Halide::cast(w.type, rows.at(asExprs(vs))));
  w.starts = Func(uniqueName(cacheName + "_starts"));
  Var bv("d0");
  w.starts(bv) = start.at({bv}) + check(0);
  std::vector<Expr> rowShape = {cache.shape[0], cache.shape[1], S,
                                cache.shape[3]};
  for (int k = 0; k < 4; ++k) {
    Halide::Internal::Dimension dim = w.newRows.output_buffer().dim(3 - k);
    dim.set_min(0);
    dim.set_extent(rowShape[k]);
  }
  w.starts.output_buffer().dim(0).set_min(0);
  w.starts.output_buffer().dim(0).set_extent(cache.shape[0]);
  out.cacheWrites.push_back(w);
  return {merged, cache.shape};
}

//===----------------------------------------------------------------------===//
// Driver
//===----------------------------------------------------------------------===//

LogicalResult PipelineBuilder::lower(Operation *op) {
  using namespace attn;
  if (isa<CausalOp, SlidingWindowOp, PaddingOp, TensorMaskOp, MaskAndOp>(op)) {
    masks[op->getResult(0)] = lowerMask(op);
    return success();
  }
  if (auto split = dyn_cast<SplitOp>(op))
    return lowerSplit(split);
  if (isa<LinearOp, FusedLinearOp, MultiLinearOp>(op))
    return lowerProjection(op);
  if (auto call = dyn_cast<CallOp>(op))
    return lowerCall(call);

  std::optional<Tensor> t =
      llvm::TypeSwitch<Operation *, std::optional<Tensor>>(op)
          .Case([&](ConstantOp c) { return lowerConstant(c); })
          .Case([&](CastOp c) { return lowerCast(c); })
          .Case([&](AddOp) {
            return lowerBinary(op, [](Expr a, Expr b) { return a + b; });
          })
          .Case([&](SubOp) {
            return lowerBinary(op, [](Expr a, Expr b) { return a - b; });
          })
          .Case([&](MulOp) {
            return lowerBinary(op, [](Expr a, Expr b) { return a * b; });
          })
          .Case([&](DivOp) {
            return lowerBinary(op, [](Expr a, Expr b) { return a / b; });
          })
          .Case([&](AndOp) {
            return lowerBinary(op, [](Expr a, Expr b) { return a & b; });
          })
          .Case([&](NegOp) {
            return lowerUnary(op, [](Expr x) { return -x; });
          })
          .Case([&](OrOp) {
            return lowerBinary(op, [](Expr a, Expr b) { return a | b; });
          })
          .Case([&](MinOp) {
            return lowerBinary(op, [](Expr a, Expr b) { return Halide::min(a, b); });
          })
          .Case([&](MaxOp) {
            return lowerBinary(op, [](Expr a, Expr b) { return Halide::max(a, b); });
          })
          .Case([&](CmpOp c) {
            CmpPredicate p = c.getPredicate();
            return lowerBinary(op, [p](Expr a, Expr b) {
              Expr r = p == CmpPredicate::lt   ? a < b
                       : p == CmpPredicate::le ? a <= b
                       : p == CmpPredicate::gt ? a > b
                       : p == CmpPredicate::ge ? a >= b
                       : p == CmpPredicate::eq ? a == b
                                               : a != b;
              return Halide::cast<uint8_t>(r);
            });
          })
          .Case([&](NotOp) {
            return lowerUnary(
                op, [](Expr x) { return Halide::cast<uint8_t>(x == 0); });
          })
          .Case([&](ExpOp) { return lowerUnary(op, [](Expr x) { return Halide::exp(x); }); })
          .Case([&](LogOp) { return lowerUnary(op, [](Expr x) { return Halide::log(x); }); })
          .Case([&](SqrtOp) { return lowerUnary(op, [](Expr x) { return Halide::sqrt(x); }); })
          .Case([&](RsqrtOp) {
            return lowerUnary(op, [](Expr x) { return 1.0f / Halide::sqrt(x); });
          })
          .Case([&](TanhOp) { return lowerUnary(op, [](Expr x) { return Halide::tanh(x); }); })
          .Case([&](SigmoidOp) {
            return lowerUnary(op, [](Expr x) { return 1.0f / (1.0f + Halide::exp(-x)); });
          })
          .Case([&](AbsOp) {
            return lowerUnary(op, [](Expr x) {
              return Halide::cast(x.type(), Halide::abs(x));
            });
          })
          .Case([&](SelectOp s) { return lowerSelect(s); })
          .Case([&](CacheWriteOp w) { return lowerCacheWrite(w); })
          .Case([&](ReduceOp r) { return lowerReduce(r); })
          .Case([&](MeanPoolOp m) { return lowerMeanPool(m); })
          .Case([&](L2NormalizeOp n) { return lowerL2Normalize(n); })
          .Case([&](EmbeddingOp e) { return lowerEmbedding(e); })
          .Case([&](ArangeOp a) { return lowerArange(a); })
          .Case([&](SliceOp s) { return lowerSlice(s); })
          .Case([&](UnsqueezeOp u) {
            const Tensor &x = get(u.getX());
            int64_t d = (int64_t)u.getDim();
            std::vector<Expr> shape = x.shape;
            shape.insert(shape.begin() + d, 1);
            std::vector<Var> vs = makeVars(shape.size());
            std::vector<Expr> xi = asExprs(vs);
            xi.erase(xi.begin() + d);
            Func f = newFunc(op, opName(op));
            def(f, vs, x.at(xi));
            return Tensor{f, shape};
          })
          .Case<GeluOp, GeluTanhOp, SiluOp, ReluOp>([&](Operation *) {
            Activation act = isa<GeluOp>(op)       ? Activation::gelu
                             : isa<GeluTanhOp>(op) ? Activation::gelu_tanh
                             : isa<SiluOp>(op)     ? Activation::silu
                                                   : Activation::relu;
            return lowerUnary(
                op, [act](Expr x) { return applyActivation(act, x); });
          })
          .Case([&](MatmulOp m) { return lowerMatmul(m); })
          .Case<TransposeOp, SplitHeadsOp, MergeHeadsOp>(
              [&](Operation *) { return lowerLayout(op); })
          .Case([&](ConcatOp c) { return lowerConcat(c); })
          .Case([&](SoftmaxOp s) { return lowerSoftmax(s); })
          .Case([&](AttentionOp a) { return lowerAttention(a); })
          .Case<LayerNormOp, RmsNormOp>(
              [&](Operation *) { return lowerNorm(op); })
          .Case([&](RopeOp r) { return lowerRope(r); })
          .Default([](Operation *) { return std::nullopt; });
  if (!t)
    return emitError(op->getLoc(), "the Halide back end does not support '")
           << op->getName() << "'";
  tensors[op->getResult(0)] = *t;
  return success();
}

LogicalResult PipelineBuilder::build() {
  out.name = model.getSymName().str();
  out.functionName = attn::halideFunctionName(out.name);
  if (failed(lowerArguments()))
    return failure();
  out.halideName = out.functionName;
  model.walk([&](attn::CallOp) { out.halideName = out.functionName + "__impl"; });

  // Splitting: about `per` root ops a segment, cut after an op where the
  // values still to be read (`open`) can cross.
  Block &body = model.getBody().front();
  int total = 0;
  for (Operation &op : body) {
    opIndex[&op] = opIndex.size();
    total += rootCost(op);
  }
  int per = 0;
  bool cacheWrite = false;
  model.walk([&](attn::CacheWriteOp) { cacheWrite = true; });
  if (options.segmentOps > 0 && total > options.segmentOps && !cacheWrite) {
    int n = (total + options.segmentOps - 1) / options.segmentOps;
    per = (total + n - 1) / n;
    for (Operation &op : body)
      for (Value v : op.getResults()) {
        unsigned last = 0;
        for (Operation *u : v.getUsers())
          if (Operation *a = body.findAncestorOpInBlock(*u))
            last = std::max(last, opIndex.lookup(a));
        lastUse[v] = last;
      }
  }
  int cost = 0, remaining = total;
  std::vector<Value> open;
  for (Operation &op : body) {
    auto ret = dyn_cast<func::ReturnOp>(op);
    if (failed(attn::catchHalideErrors(op.getLoc(), [&] {
          return ret ? lowerResults(ret) : lower(&op);
        })))
      return failure();
    if (!per || ret)
      continue;
    int c = rootCost(op);
    cost += c;
    remaining -= c;
    unsigned at = opIndex.lookup(&op);
    for (Value v : op.getResults())
      open.push_back(v);
    llvm::erase_if(open, [&](Value v) { return lastUse.lookup(v) <= at; });
    Crossing crossed;
    if (cost >= per && remaining > 0 && !open.empty() &&
        crossing(open, crossed)) {
      if (failed(attn::catchHalideErrors(op.getLoc(), [&] {
            cut(crossed, at);
            return success();
          })))
        return failure();
      open.clear();
      cost = 0;
    }
  }
  if (!out.segments.empty())
    return attn::catchHalideErrors(model.getLoc(), [&] {
      finishSegments();
      return success();
    });
  if (!out.cacheWrites.empty())
    out.halideName = out.functionName + "__impl";
  return attn::catchHalideErrors(model.getLoc(), [&] {
    std::vector<Func> outputs = out.outputs;
    for (const attn::CacheWrite &w : out.cacheWrites) {
      outputs.push_back(w.newRows);
      outputs.push_back(w.starts);
    }
    out.pipeline = Halide::Pipeline(outputs);
    return success();
  });
}

/// The last segment holds the model's outputs; each boundary's readers are
/// known once every segment is.
void PipelineBuilder::finishSegments() {
  size_t firstOut = out.tensors.size() - out.outputs.size();
  std::vector<int> targets;
  for (size_t r = 0; r < out.outputs.size(); ++r)
    targets.push_back(firstOut + r);
  closeSegment(out.outputs, out.outputSources, targets);
  for (size_t j = 0; j < out.boundaries.size(); ++j)
    out.boundaries[j].lastReader =
        std::upper_bound(cuts.begin(), cuts.end(), (int)boundaryLastOp[j] - 1) -
        cuts.begin();
  for (attn::ModelPipeline &seg : out.segments) {
    seg.tensors = out.tensors;
    seg.syms = out.syms;
    seg.boundaries = out.boundaries;
  }
  out.halideName = out.functionName + "__impl";
}

} // namespace attn::detail

LogicalResult attn::catchHalideErrors(Location loc,
                                      llvm::function_ref<LogicalResult()> fn) {
  try {
    return fn();
  } catch (const Halide::Error &e) {
    // Halide's messages read "Error: ...\n".
    StringRef msg = StringRef(e.what()).trim();
    msg.consume_front("Error:");
    return emitError(loc) << "Halide: " << msg.trim();
  } catch (const std::exception &e) {
    return emitError(loc) << "Halide back end: " << e.what();
  }
}

FailureOr<attn::ModelPipeline>
attn::buildPipeline(func::FuncOp model, const PipelineOptions &options) {
  ModelPipeline out{/*name=*/"", /*functionName=*/"", model.getLoc()};
  if (failed(detail::PipelineBuilder(model, out, options).build()))
    return failure();
  return out;
}
