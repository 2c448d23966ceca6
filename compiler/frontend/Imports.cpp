//===- Imports.cpp - Loading the files a module imports ------------------===//
//
// `import "layers.attn"` makes the models of that file (path relative to the
// importing file) callable. Each imported file is parsed and checked with
// diagnostics of its own, so its errors name it; its models (and those of
// the files it imports, once each) join Module::imported, which calls can
// name and the backend compiles only when called.
//
//===----------------------------------------------------------------------===//
#include "attn/Frontend/Frontend.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>

namespace attn {
namespace {

namespace fs = std::filesystem;

class Importer {
public:
  explicit Importer(std::ostream &os) : os(os) {}

  bool load(ast::Module &into, const ast::Module &from, SourceDiagnostics &at,
            unsigned depth);

private:
  std::ostream &os;
  std::set<std::string> seen; // canonical paths loaded (or loading)
};

bool Importer::load(ast::Module &into, const ast::Module &from,
                    SourceDiagnostics &at, unsigned depth) {
  fs::path dir = fs::path(from.file).parent_path();
  for (const ast::Import &imp : from.imports) {
    fs::path path = dir / imp.path;
    std::error_code ec;
    fs::path canon = fs::weakly_canonical(path, ec);
    std::string key = ec ? path.string() : canon.string();
    if (!seen.insert(key).second)
      continue; // already imported (or an import cycle): its models are in
    if (depth > 32) {
      at.error(imp.loc, "imports are nested more than 32 deep");
      return false;
    }
    std::string text, reason;
    if (!readInputFile(path.string(), text, reason)) {
      at.error(imp.loc,
               "cannot read imported file '" + path.string() + "': " + reason);
      return false;
    }
    SourceDiagnostics diags(path.string(), std::move(text), os);
    std::optional<ast::Module> m = parseModule(diags);
    if (!m || !load(into, *m, diags, depth + 1) || !checkModule(*m, diags)) {
      at.note(imp.loc, "in the file imported here");
      return false;
    }
    for (ast::Model &model : m->models) {
      model.file = path.string();
      into.imported.push_back(std::move(model));
    }
  }
  return true;
}

} // namespace

bool readInputFile(const std::string &path, std::string &text,
                   std::string &reason) {
  std::unique_ptr<FILE, int (*)(FILE *)> file(
      path == "-" ? stdin : std::fopen(path.c_str(), "rb"),
      path == "-" ? [](FILE *) { return 0; } : std::fclose);
  if (!file) {
    reason = std::strerror(errno);
    return false;
  }
  text.clear();
  char buf[1 << 16];
  while (size_t n = std::fread(buf, 1, sizeof buf, file.get())) {
    if (text.size() + n > kMaxInputBytes) {
      reason = "larger than " + std::to_string(kMaxInputBytes >> 20) +
               " MiB, the limit for an input file";
      return false;
    }
    text.append(buf, n);
  }
  if (std::ferror(file.get())) {
    reason = std::strerror(errno);
    return false;
  }
  return true;
}

bool loadImports(ast::Module &module, SourceDiagnostics &diags,
                 std::ostream &os) {
  if (module.imports.empty())
    return true;
  Importer importer(os);
  return importer.load(module, module, diags, 0);
}

} // namespace attn
