//===- DslFuzzer.cpp - Fuzz the .attn front end (lexer, parser, Sema) -----===//
//
// Any text must give a module or located errors: never a crash. Imports are
// not followed (they would read files named by the input).
//
//===----------------------------------------------------------------------===//
#include "attn/Frontend/Frontend.h"

#include <cstdint>
#include <sstream>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::ostringstream os;
  attn::SourceDiagnostics diags(
      "fuzz.attn", std::string(reinterpret_cast<const char *>(data), size), os);
  std::optional<attn::ast::Module> module = attn::parseModule(diags);
  if (!module)
    return 0;
  if (attn::checkModule(*module, diags)) {
    std::ostringstream ast;
    attn::ast::print(*module, ast);
  }
  return 0;
}
