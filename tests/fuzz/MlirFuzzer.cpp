//===- MlirFuzzer.cpp - Fuzz the attn dialect's parser and verifiers ------===//
//
// Parses the input as MLIR (split at `// -----` lines, as -split-input-file
// does) into a context with the attn and func dialects, which verifies it.
// Diagnostics are dropped; a parse or verify failure is a normal outcome.
//
//===----------------------------------------------------------------------===//
#include "attn/Dialect/AttnDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>

// LLVM's allocators, inlined here with ASan on, poison the memory they hand
// out; libMLIR, which is not instrumented, then uses it without unpoisoning.
// Ignore user poisoning (ASan's own checks stay).
extern "C" const char *__asan_default_options() {
  return "allow_user_poisoning=0";
}

static mlir::MLIRContext &context() {
  static mlir::MLIRContext *ctx = [] {
    auto *c = new mlir::MLIRContext(mlir::MLIRContext::Threading::DISABLED);
    c->getOrLoadDialect<attn::AttnDialect>();
    c->getOrLoadDialect<mlir::func::FuncDialect>();
    c->printOpOnDiagnostic(false);
    return c;
  }();
  return *ctx;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mlir::MLIRContext &ctx = context();
  mlir::ScopedDiagnosticHandler quiet(
      &ctx, [](mlir::Diagnostic &) { return mlir::success(); });
  llvm::StringRef rest(reinterpret_cast<const char *>(data), size);
  while (!rest.empty()) {
    auto [chunk, after] = rest.split("// -----");
    // A copy: MLIR's lexer reads a buffer up to its NUL (attnc and
    // attn-opt parse NUL-terminated files too).
    std::string text = chunk.str();
    mlir::ParserConfig config(&ctx);
    (void)mlir::parseSourceString<mlir::ModuleOp>(text, config);
    rest = after;
  }
  return 0;
}
