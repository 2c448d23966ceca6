//===- Symbols.cpp - The symbols a library defines for its models ---------===//
//
// A library defines, for each model `m` (compiler/halide/Emit.cpp):
//   attn_m, attn_m_argv, attn_m_metadata   the pipeline, or its C wrapper
//   attn_m__impl*                          the pipeline of a model that calls
//   attn_m_par_for_*                       Halide's parallel loop bodies
//   attn__stub_m                           the extern stage of a call of m
// and once the table, attn_library_v1. The runtime's C API shares the
// attn_ prefix. Two names clash if one model's symbols meet the other's.
//
//===----------------------------------------------------------------------===//
#include "attn/Frontend/Frontend.h"

#include "attn/runtime.h"

#include <array>

namespace attn {
namespace {

static_assert(kMaxRank == ATTN_MAX_RANK, "the runtime's rank limit changed");

/// The runtime's functions and the table's (RuntimeSymbols.inc is made from
/// the headers by CMake).
const char *const kReserved[] = {
#include "RuntimeSymbols.inc"
};

struct Symbols {
  std::array<std::string, 4> exact;
  std::array<std::string, 2> prefixes; // every symbol that starts so
};

Symbols symbolsOf(const std::string &model) {
  std::string f = "attn_" + model;
  return {{f, f + "_argv", f + "_metadata", "attn__stub_" + model},
          {f + "__impl", f + "_par_for_"}};
}

bool startsWith(const std::string &s, const std::string &prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

} // namespace

std::string badModelName(const std::string &name) {
  if (name.size() > kMaxModelNameChars)
    return "is " + std::to_string(name.size()) + " characters long; the " +
           "limit is " + std::to_string(kMaxModelNameChars);
  bool ok = !name.empty() && !(name[0] >= '0' && name[0] <= '9');
  for (char c : name)
    ok &= (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_';
  return ok ? "" : "is not a C identifier (letters, digits and '_')";
}

std::string sharedSymbol(const std::string &a, const std::string &b) {
  if (a == b)
    return "";
  Symbols sa = symbolsOf(a), sb = symbolsOf(b);
  for (int swap = 0; swap < 2; ++swap, std::swap(sa, sb)) {
    for (const std::string &e : sa.exact) {
      for (const std::string &f : sb.exact)
        if (e == f)
          return e;
      for (const std::string &p : sb.prefixes)
        if (startsWith(e, p))
          return e;
    }
    for (const std::string &p : sa.prefixes)
      for (const std::string &q : sb.prefixes)
        if (startsWith(p, q))
          return p + "...";
  }
  return "";
}

std::string reservedSymbol(const std::string &name) {
  Symbols s = symbolsOf(name);
  for (const char *r : kReserved) {
    for (const std::string &e : s.exact)
      if (e == r)
        return e;
    for (const std::string &p : s.prefixes)
      if (startsWith(r, p))
        return r;
  }
  return "";
}

} // namespace attn
