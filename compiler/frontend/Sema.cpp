//===- Sema.cpp - Name resolution and type checking of the attn AST -------===//
#include "attn/Frontend/Frontend.h"

namespace attn {
bool checkModule(ast::Module &, SourceDiagnostics &diags) {
  return diags.numErrors() == 0;
}
} // namespace attn
