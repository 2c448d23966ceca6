//===- MLIRGen.h - Lowering of the checked AST to the attn dialect -*- C++ -*-===//
#ifndef ATTN_FRONTEND_MLIRGEN_H
#define ATTN_FRONTEND_MLIRGEN_H

#include "attn/Frontend/AST.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace attn {

/// Lowers a module that `checkModule` accepted to one `func.func` per model
/// (see the dialect description for the signature attributes). Every op
/// carries the FileLineColLoc of its DSL expression; an op that a binding
/// names carries `NameLoc(name, FileLineColLoc)`. f16/bf16 values enter
/// compute through `attn.cast` to f32, and results declared f16/bf16 leave it
/// through a cast back. Returns null (after emitting diagnostics) if the
/// result does not verify.
mlir::OwningOpRef<mlir::ModuleOp> mlirGen(mlir::MLIRContext &context,
                                          const ast::Module &module);

} // namespace attn

#endif // ATTN_FRONTEND_MLIRGEN_H
