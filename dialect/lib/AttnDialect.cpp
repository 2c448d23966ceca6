//===- AttnDialect.cpp - The attn dialect ---------------------------------===//
#include "attn/Dialect/AttnDialect.h"
#include "attn/Dialect/AttnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringSet.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace attn;

#include "attn/Dialect/AttnDialect.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "attn/Dialect/AttnTypes.cpp.inc"

#include "attn/Dialect/AttnEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "attn/Dialect/AttnAttrs.cpp.inc"

void AttnDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "attn/Dialect/AttnOps.cpp.inc"
      >();
  addTypes<
#define GET_TYPEDEF_LIST
#include "attn/Dialect/AttnTypes.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "attn/Dialect/AttnAttrs.cpp.inc"
      >();
}

Operation *AttnDialect::materializeConstant(OpBuilder &builder,
                                            Attribute value, Type type,
                                            Location loc) {
  auto f = dyn_cast<FloatAttr>(value);
  auto t = dyn_cast<RankedTensorType>(type);
  if (!f || !t || t.getRank() != 0 ||
      !(t.getElementType().isF32() || t.getElementType().isInteger(32)))
    return nullptr;
  return ConstantOp::create(builder, loc, t,
                            builder.getF64FloatAttr(f.getValueAsDouble()));
}

/// Checks one `attn.dims` entry list against a tensor type.
static LogicalResult verifyDims(Operation *op, StringRef what, Type type,
                                DictionaryAttr attrs,
                                const llvm::StringSet<> &syms) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor)
    return op->emitError() << what << " must be a ranked tensor";
  auto name = attrs ? attrs.getAs<StringAttr>("attn.name") : StringAttr();
  auto dims = attrs ? attrs.getAs<ArrayAttr>("attn.dims") : ArrayAttr();
  if (!name || !dims)
    return op->emitError() << what << " needs 'attn.name' and 'attn.dims'";
  if ((int64_t)dims.size() != tensor.getRank())
    return op->emitError() << what << " '" << name.getValue() << "' has "
                           << dims.size() << " attn.dims for a rank-"
                           << tensor.getRank() << " tensor";
  for (auto [i, d] : llvm::enumerate(dims)) {
    int64_t size = tensor.getDimSize(i);
    if (auto n = dyn_cast<IntegerAttr>(d)) {
      if (n.getInt() != size)
        return op->emitError() << what << " '" << name.getValue() << "' dim "
                               << i << " is " << n.getInt()
                               << " in attn.dims but the type says " << type;
    } else if (auto s = dyn_cast<StringAttr>(d)) {
      if (!ShapedType::isDynamic(size))
        return op->emitError() << what << " '" << name.getValue() << "' dim "
                               << i << " is symbolic but static in " << type;
      // A size of attn.syms, or a sum of them and integers ("T+1").
      SmallVector<StringRef> terms;
      s.getValue().split(terms, '+');
      for (StringRef term : terms) {
        unsigned long long n;
        if (!term.getAsInteger(10, n))
          continue;
        if (!syms.contains(term))
          return op->emitError() << what << " '" << name.getValue()
                                 << "' uses size '" << term
                                 << "' that is not in attn.syms";
      }
    } else {
      return op->emitError() << what << " '" << name.getValue()
                             << "': attn.dims entries are integers or names";
    }
  }
  return success();
}

LogicalResult AttnDialect::verifyOperationAttribute(Operation *op,
                                                    NamedAttribute attr) {
  if (attr.getName() == "attn.schedule") {
    auto s = dyn_cast<AttnScheduleAttrInterface>(attr.getValue());
    if (!s)
      return op->emitError() << "'attn.schedule' must be a schedule "
                                "attribute (#attn.gemm_schedule, "
                                "#attn.attention_schedule, "
                                "#attn.rows_schedule, #attn.gpu_schedule or "
                                "#attn.inline)";
    if (!s.appliesTo(op))
      return op->emitError() << attr.getValue() << " does not apply to '"
                             << op->getName() << "'";
    return success();
  }
  // A model compiled only for the calls of others (imported from another
  // file, or a callee of the model chosen by --model): not in the table.
  if (attr.getName() == "attn.imported" || attr.getName() == "attn.internal") {
    if (!isa<func::FuncOp>(op) || !isa<UnitAttr>(attr.getValue()))
      return op->emitError() << "'" << attr.getName()
                             << "' is a unit attribute of a func.func";
    return success();
  }
  if (attr.getName() != "attn.syms")
    return op->emitError() << "unknown attn attribute '" << attr.getName()
                           << "' on an operation";
  auto func = dyn_cast<func::FuncOp>(op);
  auto symList = dyn_cast<ArrayAttr>(attr.getValue());
  if (!func || !symList)
    return op->emitError() << "'attn.syms' is an array of size names on a "
                              "func.func (a model)";
  llvm::StringSet<> syms;
  for (Attribute s : symList) {
    auto str = dyn_cast<StringAttr>(s);
    if (!str || !syms.insert(str.getValue()).second)
      return op->emitError() << "'attn.syms' must hold distinct names";
  }
  bool sawParam = false;
  FunctionType type = func.getFunctionType();
  for (unsigned i = 0; i < type.getNumInputs(); ++i) {
    DictionaryAttr attrs = func.getArgAttrDict(i);
    bool isParam = attrs && attrs.get("attn.weight");
    if (isParam && !attrs.getAs<StringAttr>("attn.weight"))
      return op->emitError() << "argument " << i
                             << ": 'attn.weight' must be a string";
    if (sawParam && !isParam)
      return op->emitError() << "argument " << i
                             << ": inputs must come before params";
    sawParam |= isParam;
    if (failed(verifyDims(op, isParam ? "param" : "input", type.getInput(i),
                          attrs, syms)))
      return failure();
  }
  for (unsigned i = 0; i < type.getNumResults(); ++i)
    if (failed(verifyDims(op, "result", type.getResult(i),
                          func.getResultAttrDict(i), syms)))
      return failure();
  return success();
}
