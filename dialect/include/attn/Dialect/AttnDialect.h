//===- AttnDialect.h - The attn dialect and its mask type -------*- C++ -*-===//
#ifndef ATTN_DIALECT_ATTNDIALECT_H
#define ATTN_DIALECT_ATTNDIALECT_H

#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/Types.h"
#include "llvm/ADT/SmallVector.h"

#include "attn/Dialect/AttnDialect.h.inc"

#define GET_TYPEDEF_CLASSES
#include "attn/Dialect/AttnTypes.h.inc"

#include "attn/Dialect/AttnEnums.h.inc"

namespace attn {
/// One field of a schedule attribute as an override sees it: its key, how
/// its value is spelled (a size, true/false, root/inline), and the value.
struct ScheduleField {
  enum class Kind { Size, Flag, Compute };
  llvm::StringRef key;
  Kind kind;
  int64_t value;
};
} // namespace attn

#include "attn/Dialect/AttnAttrInterfaces.h.inc"

#define GET_ATTRDEF_CLASSES
#include "attn/Dialect/AttnAttrs.h.inc"

#endif // ATTN_DIALECT_ATTNDIALECT_H
