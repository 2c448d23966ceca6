//===- AttnOps.h - Operations of the attn dialect ---------------*- C++ -*-===//
#ifndef ATTN_DIALECT_ATTNOPS_H
#define ATTN_DIALECT_ATTNOPS_H

#include "attn/Dialect/AttnDialect.h"

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#define GET_OP_CLASSES
#include "attn/Dialect/AttnOps.h.inc"

namespace attn {

/// Broadcasts two shapes NumPy-style. A dynamic dim is compatible with any
/// other; with a static 1 it stays dynamic. Fails when two static dims differ
/// and neither is 1.
llvm::LogicalResult broadcastShapes(llvm::ArrayRef<int64_t> a,
                                    llvm::ArrayRef<int64_t> b,
                                    llvm::SmallVectorImpl<int64_t> &result);

/// Formats a shape as `[2, ?, 768]` for messages.
std::string shapeString(llvm::ArrayRef<int64_t> shape);

/// Checks that `mask` can mask scores of shape `scores` (rank >= 2; the last
/// two dims are (i, j) and dim 0 the batch): every tensor mask broadcasts to
/// it and every padding's lengths match dim 0. Reports at `loc`.
llvm::LogicalResult verifyMaskFor(mlir::Value mask,
                                  llvm::ArrayRef<int64_t> scores,
                                  mlir::Location loc);

} // namespace attn

#endif // ATTN_DIALECT_ATTNOPS_H
