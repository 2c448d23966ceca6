//===- Emit.cpp - Halide pipelines -> stmt, LLVM, headers, libraries ------===//
//
// Builds and schedules every model's pipeline, then writes what --emit asks
// for. A library (object, static, shared) holds:
//   - one object per model, compiled with Target::NoRuntime; its function is
//     attn_<model> (and attn_<model>_argv, the table's entry);
//   - one standalone Halide runtime object;
//   - the attn_library_v1 table (runtime/include/attn/abi.h), generated as C
//     and compiled with the system C compiler ($CC, default cc).
// Intermediate files live in a temporary directory that is removed after.
//
//===----------------------------------------------------------------------===//
#include "attn/Halide/Emit.h"
#include "attn/Dialect/AttnOps.h"
#include "attn/Frontend/Frontend.h"
#include "attn/Halide/HalideGen.h"

#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetVector.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/Signals.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <functional>
#include <mutex>
#include <set>
#include <cstdlib>
#include <sstream>

#ifndef ATTN_RUNTIME_INCLUDE_DIR
#error "ATTN_RUNTIME_INCLUDE_DIR must name runtime/include"
#endif
#ifndef ATTN_HALIDE_INCLUDE_DIR
#error "ATTN_HALIDE_INCLUDE_DIR must name the directory of HalideRuntime.h"
#endif

using namespace mlir;
using llvm::StringRef;

std::string attn::halideFunctionName(StringRef model) {
  return "attn_" + model.str();
}

bool attn::isTextKind(HalideEmitKind kind) {
  return kind != HalideEmitKind::Object && kind != HalideEmitKind::Static &&
         kind != HalideEmitKind::Shared;
}

namespace {

/// The temporary directories that exist (removeTemporaryFiles).
std::mutex tempDirsMutex;
std::set<std::string> tempDirs;

/// A temporary directory, removed with everything in it on destruction.
struct TempDir {
  llvm::SmallString<128> path;
  std::error_code ec;
  TempDir() {
    ec = llvm::sys::fs::createUniqueDirectory("attnc", path);
    if (!ec) {
      std::lock_guard<std::mutex> lock(tempDirsMutex);
      tempDirs.insert(path.str().str());
    }
  }
  ~TempDir() {
    if (ec)
      return;
    std::lock_guard<std::mutex> lock(tempDirsMutex);
    llvm::sys::fs::remove_directories(path);
    tempDirs.erase(path.str().str());
  }
  std::string file(StringRef name) const {
    llvm::SmallString<128> p(path);
    llvm::sys::path::append(p, name);
    return p.str().str();
  }
};

/// Runs `argv` (argv[0] looked up on PATH); a failure names the command.
LogicalResult runCommand(Location loc, const std::vector<std::string> &argv) {
  std::string line;
  for (const std::string &a : argv)
    line += (line.empty() ? "" : " ") + a;
  llvm::ErrorOr<std::string> program = llvm::sys::findProgramByName(argv[0]);
  if (!program)
    return emitError(loc) << "cannot find '" << argv[0]
                          << "' to run: " << line;
  std::vector<StringRef> args(argv.begin(), argv.end());
  std::string message;
  int rc = llvm::sys::ExecuteAndWait(*program, args, std::nullopt, {}, 0, 0,
                                     &message);
  if (rc != 0)
    return emitError(loc) << "command failed (exit code " << rc
                          << (message.empty() ? "" : ", " + message)
                          << "): " << line;
  return success();
}

/// The C compiler and archiver for `target`: $CC (split on spaces) and
/// $AR, else cc and ar for this machine's arch, else Debian's cross tools
/// (aarch64-linux-gnu-gcc for arm-64-linux).
std::vector<std::string> cCompiler(const Halide::Target &target) {
  Halide::Target host = Halide::get_host_target();
  std::string dflt = "cc";
  if (target.arch == Halide::Target::ARM && target.bits == 64 &&
      host.arch != Halide::Target::ARM)
    dflt = "aarch64-linux-gnu-gcc";
  std::vector<std::string> cc;
  const char *env = std::getenv("CC");
  std::istringstream words(env && *env ? env : dflt);
  for (std::string w; words >> w;)
    cc.push_back(w);
  return cc;
}
std::string archiver(const std::vector<std::string> &cc) {
  const char *env = std::getenv("AR");
  if (env && *env)
    return env;
  StringRef c = cc.front();
  return c.consume_back("-gcc") ? (c + "-ar").str() : "ar";
}

std::string cString(StringRef s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "\"";
}

/// The C source of one call stub (attn::CallStub).
std::string stubSource(const attn::CallStub &s) {
  std::ostringstream os;
  std::string params, call, views;
  auto add = [](std::string &list, const std::string &item) {
    list += (list.empty() ? "" : ", ") + item;
  };
  for (size_t a = 0; a < s.argRanks.size(); ++a) {
    std::string b = "a" + std::to_string(a);
    add(params, "struct halide_buffer_t *" + b);
    if (s.argInout[a]) {
      // The caller's buffer, or the slice `b##slice` of its outermost dim.
      add(params, "int32_t " + b + "slice");
      add(call, b + "slice >= 0 ? &" + b + "v : " + b);
      views += "  struct halide_buffer_t " + b + "v;\n  if (" + b +
               "slice >= 0) {\n    " + b + "v = *" + b + ";\n    " + b +
               "v.host += (int64_t)" + b + "slice * " + b + "->dim[" + b +
               "->dimensions - 1].stride * ((" + b + "->type.bits + 7) / 8);\n" +
               "    " + b + "v.dimensions = " + b + "->dimensions - 1;\n    " +
               b + "v.device = 0;\n    " + b + "v.device_interface = NULL;\n" +
               "  }\n";
      continue;
    }
    add(call, b);
    for (int k = 0; k < s.argRanks[a]; ++k)
      add(params, "int32_t " + b + "e" + std::to_string(k));
  }
  add(params, "void **tbl");
  for (int p = 0; p < s.numParams; ++p) {
    add(params, "int32_t p" + std::to_string(p));
    add(call, "(struct halide_buffer_t *)tbl[p" + std::to_string(p) + "]");
  }
  for (size_t r = 0; r < s.resultRanks.size(); ++r)
    for (int k = 0; k < s.resultRanks[r]; ++k)
      add(params, "int32_t r" + std::to_string(r) + "e" + std::to_string(k));
  add(params, "struct halide_buffer_t *out");
  os << "extern int " << s.callee << "();\n"
     << "int " << s.name << "(" << params << ") {\n";
  // A bounds query (an argument or the output without memory): every
  // argument is needed whole. (When every argument is a buffer of the
  // caller's, only the output tells; the callee must not run then, as its
  // cache write-back would copy rows it never computed.)
  os << "  if ((out->host == NULL && out->device == 0)";
  for (size_t a = 0; a < s.argRanks.size(); ++a)
    if (!s.argInout[a])
      os << " || (a" << a << "->host == NULL && a" << a << "->device == 0)";
  os << ") {\n";
  for (size_t a = 0; a < s.argRanks.size(); ++a) {
    if (s.argInout[a])
      continue;
    std::string b = "a" + std::to_string(a);
    os << "    if (" << b << "->host == NULL && " << b << "->device == 0) {\n";
    for (int k = 0; k < s.argRanks[a]; ++k) {
      int hd = s.argRanks[a] - 1 - k; // Halide's dims: innermost first
      os << "      " << b << "->dim[" << hd << "].min = 0; " << b << "->dim["
         << hd << "].extent = " << b << "e" << k << ";\n";
    }
    os << "    }\n";
  }
  os << "    return 0;\n  }\n" << views;
  if (!s.packed) {
    os << "  return " << s.callee << "(" << call << ", out);\n}\n\n";
    return os.str();
  }
  // Several results: dense views one after the other in `out`.
  size_t n = s.resultRanks.size();
  os << "  struct halide_buffer_t v[" << n << "];\n"
     << "  struct halide_dimension_t d[" << n << "][16];\n"
     << "  uint8_t *at = out->host;\n  int64_t stride;\n";
  for (size_t r = 0; r < n; ++r) {
    int rank = s.resultRanks[r];
    const Halide::Type &t = s.resultTypes[r];
    std::string v = "v[" + std::to_string(r) + "]";
    std::string d = "d[" + std::to_string(r) + "]";
    os << "  memset(&" << v << ", 0, sizeof " << v << ");\n"
       << "  " << v << ".host = at;\n"
       << "  " << v << ".type.code = " << int(t.code()) << ";\n"
       << "  " << v << ".type.bits = " << t.bits() << ";\n"
       << "  " << v << ".type.lanes = 1;\n"
       << "  " << v << ".dimensions = " << rank << ";\n"
       << "  " << v << ".dim = " << d << ";\n  stride = 1;\n";
    for (int k = rank - 1; k >= 0; --k) {
      std::string dd = d + "[" + std::to_string(rank - 1 - k) + "]";
      std::string e = "r" + std::to_string(r) + "e" + std::to_string(k);
      os << "  " << dd << ".min = 0; " << dd << ".extent = " << e << "; "
         << dd << ".stride = (int32_t)stride; " << dd
         << ".flags = 0; stride *= " << e << ";\n";
    }
    os << "  at += stride * " << t.bytes() << ";\n";
  }
  os << "  return " << s.callee << "(" << call;
  for (size_t r = 0; r < n; ++r)
    os << ", &v[" << r << "]";
  os << ");\n}\n\n";
  return os.str();
}

/// Whether a model's function is listed in the library's table: imported
/// models and callees kept only for a --model's calls are not.
bool listed(const attn::ModelPipeline &m) { return !m.internal; }

std::string argvCaller(const attn::ModelPipeline &m);

/// The index of m's first output in its table.
size_t firstOutput(const attn::ModelPipeline &m) {
  size_t firstOut = m.tensors.size();
  while (firstOut > 0 &&
         m.tensors[firstOut - 1].role == attn::TensorDesc::Output)
    --firstOut;
  return firstOut;
}

/// Size k of model m in a C wrapper over `void **args`: the extent of the
/// first input dim that binds it.
std::string symbolValue(const attn::ModelPipeline &m, int64_t k) {
  for (size_t t = 0; t < firstOutput(m); ++t) {
    const std::vector<int64_t> &d = m.tensors[t].dims;
    for (size_t i = 0; i < d.size(); ++i)
      if (d[i] == -(k + 1))
        return "((struct halide_buffer_t *)args[" + std::to_string(t) +
               "])->dim[" + std::to_string(d.size() - 1 - i) + "].extent";
  }
  return "0";
}

/// A size program (attn::SizeOp) as a C expression of int64_t, the sizes
/// read from `s[k]`; division and modulo round down, as in the runtime.
std::string cExpression(const std::vector<attn::SizeOp> &code) {
  static const std::map<std::string, std::string> infix = {
      {"ATTN_X_ADD", "+"}, {"ATTN_X_SUB", "-"}, {"ATTN_X_MUL", "*"},
      {"ATTN_X_LT", "<"},  {"ATTN_X_LE", "<="}, {"ATTN_X_EQ", "=="},
      {"ATTN_X_NE", "!="}, {"ATTN_X_AND", "&&"}, {"ATTN_X_OR", "||"}};
  static const std::map<std::string, std::string> call = {
      {"ATTN_X_DIV", "attn__div"}, {"ATTN_X_MOD", "attn__mod"},
      {"ATTN_X_MIN", "attn__min"}, {"ATTN_X_MAX", "attn__max"}};
  std::vector<std::string> st;
  auto pop = [&] {
    std::string e = st.back();
    st.pop_back();
    return e;
  };
  for (const attn::SizeOp &op : code) {
    std::string name = op.op;
    if (name == "ATTN_X_CONST") {
      st.push_back("(int64_t)" + std::to_string(op.arg) + "LL");
    } else if (name == "ATTN_X_SYM") {
      st.push_back("s[" + std::to_string(op.arg) + "]");
    } else if (name == "ATTN_X_NOT") {
      st.push_back("(int64_t)!" + pop());
    } else if (name == "ATTN_X_SELECT") {
      std::string f = pop(), t = pop(), c = pop();
      st.push_back("(" + c + " ? " + t + " : " + f + ")");
    } else {
      std::string b = pop(), a = pop();
      st.push_back(infix.count(name)
                       ? "(int64_t)(" + a + " " + infix.at(name) + " " + b + ")"
                       : call.at(name) + "(" + a + ", " + b + ")");
    }
  }
  return st.empty() ? "0" : st.back();
}

/// The C wrapper attn_<model>_argv of a model split into segments
/// (ModelPipeline::segments): it allocates each boundary before the
/// segment that writes it, runs the segments in order and frees each
/// boundary after its last reader.
std::string segmentedWrapperSource(const attn::ModelPipeline &m) {
  std::ostringstream os;
  for (const attn::ModelPipeline &seg : m.segments)
    os << "extern int " << seg.halideName << "();\n";
  os << "int " << m.functionName << "_argv(void **args) {\n  int rc = 0;\n";
  if (!m.syms.empty()) {
    os << "  int64_t s[" << m.syms.size() << "];\n";
    for (size_t k = 0; k < m.syms.size(); ++k)
      os << "  s[" << k << "] = " << symbolValue(m, k) << ";\n";
  }
  auto ref = [](int r) {
    return r >= 0   ? "args[" + std::to_string(r) + "]"
           : r == -1 ? std::string("(void *)args")
                     : "&bb" + std::to_string(attn::boundaryOfRef(r));
  };
  for (size_t j = 0; j < m.boundaries.size(); ++j) {
    const attn::Boundary &b = m.boundaries[j];
    std::string i = std::to_string(j), bb = "bb" + i, bd = "bd" + i;
    size_t rank = b.shape.size();
    os << "  /* " << b.name << " */\n"
       << "  struct halide_dimension_t " << bd << "[" << rank << "];\n"
       << "  struct halide_buffer_t " << bb << ";\n"
       << "  size_t n" << i << " = " << b.type.bytes() << ";\n"
       << "  memset(&" << bb << ", 0, sizeof " << bb << ");\n"
       << "  " << bb << ".type.code = " << int(b.type.code()) << ";\n"
       << "  " << bb << ".type.bits = " << b.type.bits() << ";\n"
       << "  " << bb << ".type.lanes = 1;\n"
       << "  " << bb << ".dimensions = " << rank << ";\n"
       << "  " << bb << ".dim = " << bd << ";\n";
    for (size_t k = 0; k < rank; ++k) {
      std::string d = bd + "[" + std::to_string(k) + "]";
      os << "  " << d << ".min = 0; " << d << ".flags = 0; " << d
         << ".extent = (int32_t)"
         << cExpression(attn::sizeProgram(m, b.shape[rank - 1 - k])) << "; "
         << d << ".stride = (int32_t)n" << i << " / " << b.type.bytes()
         << "; n" << i << " *= (size_t)" << d << ".extent;\n";
    }
  }
  for (size_t k = 0; k < m.segments.size(); ++k) {
    const attn::ModelPipeline &seg = m.segments[k];
    for (size_t j = 0; j < m.boundaries.size(); ++j)
      if (m.boundaries[j].producer == (int)k)
        os << "  if (rc == 0 && !(bb" << j << ".host = (uint8_t *)malloc(n" << j
           << " + 1))) {\n    halide_error(NULL, \"attnc: out of memory for "
           << "the tensors between the pipelines of model " << m.name
           << "\\n\");\n    rc = halide_error_code_out_of_memory;\n  }\n";
    os << "  if (rc == 0)\n    rc = " << seg.halideName << "(";
    std::string sep;
    for (int r : seg.argTensors) {
      os << sep << ref(r);
      sep = ", ";
    }
    for (int r : seg.outputTensors) {
      os << sep << ref(r);
      sep = ", ";
    }
    os << ");\n";
    for (size_t j = 0; j < m.boundaries.size(); ++j)
      if (m.boundaries[j].lastReader == (int)k)
        os << "  free(bb" << j << ".host);\n  bb" << j << ".host = NULL;\n";
  }
  for (size_t j = 0; j < m.boundaries.size(); ++j)
    os << "  free(bb" << j << ".host);\n";
  os << "  return rc;\n}\n";
  return os.str();
}

/// The C wrappers attn_<model> and attn_<model>_argv of a model that calls
/// others or is split (ModelPipeline::halideName): the whole buffer table
/// in, the Halide function's arguments out.
std::string wrapperSource(const attn::ModelPipeline &m) {
  std::ostringstream os;
  size_t n = m.tensors.size(), firstOut = firstOutput(m);
  auto symbol = [&](int64_t k) { return symbolValue(m, k); };
  if (!m.segments.empty()) {
    os << segmentedWrapperSource(m);
    return os.str() + argvCaller(m);
  }
  os << "extern int " << m.halideName << "();\n"
     << "int " << m.functionName << "_argv(void **args) {\n"
     << "  int rc;\n";
  // Cache writes: the new rows and starts come out of the pipeline into
  // buffers of their own, and are copied into the caches after it.
  for (size_t c = 0; c < m.cacheWrites.size(); ++c) {
    const attn::CacheWrite &w = m.cacheWrites[c];
    std::string i = std::to_string(c), cb = "cb" + i;
    os << "  struct halide_buffer_t *" << cb
       << " = (struct halide_buffer_t *)args[" << w.cache << "];\n"
       << "  int64_t B" << i << " = " << cb << "->dim[3].extent, H" << i
       << " = " << cb << "->dim[2].extent, D" << i << " = " << cb
       << "->dim[0].extent, S" << i << " = "
       << (w.rows >= 0 ? std::to_string(w.rows) : symbol(-w.rows - 1))
       << ";\n"
       << "  struct halide_dimension_t rd" << i << "[4] = {{0, (int32_t)D" << i
       << ", 1, 0}, {0, (int32_t)S" << i << ", (int32_t)D" << i
       << ", 0}, {0, (int32_t)H" << i << ", (int32_t)(S" << i << " * D" << i
       << "), 0}, {0, (int32_t)B" << i << ", (int32_t)(H" << i << " * S" << i
       << " * D" << i << "), 0}};\n"
       << "  struct halide_dimension_t sd" << i << "[1] = {{0, (int32_t)B" << i
       << ", 1, 0}};\n"
       << "  struct halide_buffer_t rb" << i << ", sb" << i << ";\n"
       << "  memset(&rb" << i << ", 0, sizeof rb" << i << ");\n"
       << "  memset(&sb" << i << ", 0, sizeof sb" << i << ");\n"
       << "  rb" << i << ".type = " << cb << "->type;\n"
       << "  rb" << i << ".dimensions = 4;\n  rb" << i << ".dim = rd" << i
       << ";\n"
       << "  rb" << i << ".host = (uint8_t *)malloc((size_t)(B" << i << " * H"
       << i << " * S" << i << " * D" << i << ") * " << w.type.bytes()
       << " + 1);\n"
       << "  sb" << i << ".type.code = halide_type_int;\n  sb" << i
       << ".type.bits = 32;\n  sb" << i << ".type.lanes = 1;\n"
       << "  sb" << i << ".dimensions = 1;\n  sb" << i << ".dim = sd" << i
       << ";\n"
       << "  sb" << i << ".host = (uint8_t *)malloc((size_t)B" << i
       << " * 4 + 1);\n";
  }
  if (!m.cacheWrites.empty()) {
    os << "  if (0";
    for (size_t c = 0; c < m.cacheWrites.size(); ++c)
      os << " || !rb" << c << ".host || !sb" << c << ".host";
    os << ") {\n";
    for (size_t c = 0; c < m.cacheWrites.size(); ++c)
      os << "    free(rb" << c << ".host);\n    free(sb" << c << ".host);\n";
    os << "    halide_error(NULL, \"attnc: out of memory for the new cache "
          "rows\\n\");\n    return halide_error_code_out_of_memory;\n  }\n";
  }
  os << "  rc = " << m.halideName << "(";
  for (size_t i = 0; i < m.argTensors.size(); ++i)
    os << (i ? ", " : "")
       << (m.argTensors[i] < 0
               ? std::string("(void *)args")
               : "args[" + std::to_string(m.argTensors[i]) + "]");
  for (size_t t = firstOut; t < n; ++t)
    os << ", args[" << t << "]";
  for (size_t c = 0; c < m.cacheWrites.size(); ++c)
    os << ", &rb" << c << ", &sb" << c;
  os << ");\n";
  for (size_t c = 0; c < m.cacheWrites.size(); ++c) {
    const attn::CacheWrite &w = m.cacheWrites[c];
    std::string i = std::to_string(c), cb = "cb" + i;
    int bytes = w.type.bytes();
    os << "  if (rc == 0) {\n"
       << "    const int32_t *st = (const int32_t *)sb" << i << ".host;\n"
       << "    int64_t b, h, s;\n"
       << "    for (b = 0; b < B" << i << "; ++b)\n"
       << "      for (h = 0; h < H" << i << "; ++h)\n"
       << "        for (s = 0; s < S" << i << "; ++s)\n"
       << "          memcpy(" << cb << "->host + (b * " << cb
       << "->dim[3].stride + h * " << cb << "->dim[2].stride + (st[b] + s) * "
       << cb << "->dim[1].stride) * " << bytes << ",\n"
       << "                 rb" << i << ".host + ((b * H" << i << " + h) * S"
       << i << " + s) * D" << i << " * " << bytes << ", (size_t)D" << i
       << " * " << bytes << ");\n  }\n"
       << "  free(rb" << i << ".host);\n  free(sb" << i << ".host);\n";
  }
  os << "  return rc;\n}\n";
  return os.str() + argvCaller(m);
}

/// attn_<model>(t0, t1, ...): the table's buffers as arguments, passed on
/// to attn_<model>_argv.
std::string argvCaller(const attn::ModelPipeline &m) {
  std::ostringstream os;
  size_t n = m.tensors.size();
  os << "int " << m.functionName << "(";
  for (size_t t = 0; t < n; ++t)
    os << (t ? ", " : "") << "struct halide_buffer_t *t" << t;
  os << ") {\n  void *args[] = {";
  for (size_t t = 0; t < n; ++t)
    os << (t ? ", " : "") << "t" << t;
  os << "};\n  return " << m.functionName << "_argv(args);\n}\n\n";
  return os.str();
}

/// The C source of the attn_library_v1 table.
std::string tableSource(const std::vector<attn::ModelPipeline> &allModels,
                        const Halide::Target &target) {
  std::vector<attn::ModelPipeline> models;
  for (const attn::ModelPipeline &m : allModels)
    if (listed(m))
      models.push_back(m);
  static const char *roles[] = {"ATTN_INPUT", "ATTN_PARAM", "ATTN_OUTPUT",
                                "ATTN_INOUT"};
  static const char *dtypes[] = {"ATTN_F32", "ATTN_F16", "ATTN_BF16",
                                 "ATTN_I32", "ATTN_BOOL"};
  std::ostringstream os;
  os << "/* Generated by attnc: the model table of this library "
        "(attn/abi.h). */\n"
     << "#include \"attn/abi.h\"\n#include \"HalideRuntime.h\"\n"
     << "#include <stddef.h>\n#include <stdint.h>\n#include <stdlib.h>\n"
     << "#include <string.h>\n\n";
  if (llvm::any_of(allModels, [](const attn::ModelPipeline &m) {
        return !m.segments.empty();
      }))
    // The arithmetic of size programs (as attn_size_expr's in the runtime).
    os << "static inline int64_t attn__div(int64_t a, int64_t b) {\n"
       << "  int64_t q, m;\n  if (b == 0 || (a == INT64_MIN && b == -1))\n"
       << "    return 0;\n  q = a / b;\n  m = a % b;\n"
       << "  return m != 0 && ((m < 0) != (b < 0)) ? q - 1 : q;\n}\n"
       << "static inline int64_t attn__mod(int64_t a, int64_t b) {\n"
       << "  return b == 0 ? 0 : a - attn__div(a, b) * b;\n}\n"
       << "static inline int64_t attn__min(int64_t a, int64_t b) {\n"
       << "  return a < b ? a : b;\n}\n"
       << "static inline int64_t attn__max(int64_t a, int64_t b) {\n"
       << "  return a > b ? a : b;\n}\n\n";
  std::set<std::string> stubs;
  for (const attn::ModelPipeline &m : allModels) {
    for (const attn::CallStub &s : m.stubs)
      if (stubs.insert(s.name).second)
        os << stubSource(s);
    if (m.halideName != m.functionName)
      os << wrapperSource(m);
  }
  for (size_t m = 0; m < models.size(); ++m) {
    const attn::ModelPipeline &model = models[m];
    std::string p = "m" + std::to_string(m) + "_";
    os << "/* model " << model.name << " */\n"
       << "extern int " << model.functionName << "_argv(void **args);\n";
    for (size_t t = 0; t < model.tensors.size(); ++t) {
      if (model.tensors[t].dims.empty())
        continue;
      os << "static const attn_dim " << p << "dims" << t << "[] = {";
      for (size_t d = 0; d < model.tensors[t].dims.size(); ++d)
        os << (d ? ", " : "") << model.tensors[t].dims[d];
      os << "};\n";
    }
    if (!model.syms.empty()) {
      os << "static const char *const " << p << "syms[] = {";
      for (size_t s = 0; s < model.syms.size(); ++s)
        os << (s ? ", " : "") << cString(model.syms[s]);
      os << "};\n";
    }
    if (target.has_gpu_feature()) {
      // The runtime hands the pipeline host memory only. Inputs and params
      // are marked host-dirty so that the pipeline copies them to the
      // device; outputs come back to the host, and every device allocation
      // is freed before the call returns.
      // The table lists inputs, params, then outputs.
      size_t n = model.tensors.size(),
             firstOut = std::count_if(
                 model.tensors.begin(), model.tensors.end(),
                 [](const attn::TensorDesc &d) {
                   return d.role != attn::TensorDesc::Output;
                 });
      os << "static int " << p << "run(void **args) {\n"
         << "  struct halide_buffer_t **b = (struct halide_buffer_t **)args;\n"
         << "  int i, rc, frc;\n"
         << "  for (i = 0; i < " << firstOut << "; ++i)\n"
         << "    b[i]->flags |= halide_buffer_flag_host_dirty;\n"
         << "  rc = " << model.functionName << "_argv(args);\n"
         << "  for (i = " << firstOut << "; rc == 0 && i < " << n << "; ++i)\n"
         << "    rc = halide_copy_to_host(NULL, b[i]);\n"
         << "  for (i = 0; i < " << n << "; ++i)\n"
         << "    if ((frc = halide_device_free(NULL, b[i])) != 0 && rc == 0)\n"
         << "      rc = frc;\n"
         << "  return rc;\n}\n";
    }
    if (!model.scratch.empty()) {
      os << "static const int64_t " << p << "scratch[] = {";
      for (size_t i = 0; i < model.scratch.size(); ++i)
        os << (i ? ", " : "") << model.scratch[i].op << ", "
           << model.scratch[i].arg << "LL";
      os << "};\n";
    }
    os << "static const attn_tensor_desc " << p << "tensors[] = {\n";
    for (size_t t = 0; t < model.tensors.size(); ++t) {
      const attn::TensorDesc &d = model.tensors[t];
      os << "  {" << cString(d.name) << ", "
         << (d.role == attn::TensorDesc::Param ? cString(d.weightName)
                                               : std::string("NULL"))
         << ", " << roles[d.role] << ", " << dtypes[d.dtype] << ", "
         << d.dims.size() << ", "
         << (d.dims.empty() ? "NULL" : p + "dims" + std::to_string(t))
         << "},\n";
    }
    os << "};\n\n";
  }
  os << "static const attn_model_desc models[] = {\n";
  for (size_t m = 0; m < models.size(); ++m) {
    const attn::ModelPipeline &model = models[m];
    std::string p = "m" + std::to_string(m) + "_";
    os << "  {" << cString(model.name) << ", " << model.syms.size() << ", "
       << (model.syms.empty() ? "NULL" : p + "syms") << ", "
       << model.tensors.size() << ", " << p << "tensors, "
       << (target.has_gpu_feature() ? p + "run"
                                    : model.functionName + "_argv")
       << "},\n";
  }
  os << "};\n\nstatic const attn_model_memory memory[] = {\n";
  for (size_t m = 0; m < models.size(); ++m) {
    std::string p = "m" + std::to_string(m) + "_";
    size_t n = models[m].scratch.size();
    os << "  {{" << n << ", " << (n ? p + "scratch" : "NULL") << "}},\n";
  }
  os << "};\n\n"
     << "static void set_error_handler(attn_error_handler handler) {\n"
     << "  halide_set_error_handler(handler);\n}\n\n"
     // Halide 14's pool only spawns workers up to the count: workers it
     // already has keep taking tasks whatever the count is set to later. So
     // the pool is shut down first (its workers joined) and restarts with
     // the new count on the next run.
     << "static int set_num_threads(int n) {\n"
     << "  halide_shutdown_thread_pool();\n"
     << "  return halide_set_num_threads(n);\n}\n\n"
     << "static const attn_library_desc library = {\n"
     << "  ATTN_ABI_VERSION, " << cString(target.to_string()) << ", "
     << models.size() << ", models,\n"
     << "  set_num_threads, set_error_handler, memory};\n\n"
     << "const attn_library_desc *attn_library_v1(void) { return &library; "
        "}\n";
  return os.str();
}

LogicalResult writeText(Location loc, StringRef text, StringRef path) {
  std::string error = attn::writeOutputFile(path, text);
  if (!error.empty())
    return emitError(loc) << error;
  return success();
}

bool hasControlChar(StringRef s) {
  return llvm::any_of(
      s, [](char c) { return (unsigned char)c < 0x20 || c == 0x7F; });
}

/// What Sema checks of .attn input, checked again for models from .mlir:
/// names that become symbols, ranks the runtime accepts, and table strings
/// that C and the runtime read whole.
LogicalResult checkTable(const std::vector<attn::ModelPipeline> &models) {
  for (size_t i = 0; i < models.size(); ++i) {
    const attn::ModelPipeline &m = models[i];
    std::string why = attn::badModelName(m.name),
                reserved = attn::reservedSymbol(m.name);
    if (!why.empty() || !reserved.empty())
      return emitError(m.loc)
             << "model name '" << m.name << "' "
             << (why.empty() ? "would define the symbol '" + reserved +
                                   "', which the library's table or the "
                                   "runtime's C API defines"
                             : why);
    for (size_t j = 0; j < i; ++j) {
      std::string symbol = attn::sharedSymbol(models[j].name, m.name);
      if (!symbol.empty())
        return emitError(m.loc)
               << "model '" << m.name << "' clashes with model '"
               << models[j].name << "': a library of both would define the "
               << "symbol '" << symbol << "' twice";
    }
    for (const attn::TensorDesc &t : m.tensors) {
      if (t.dims.size() > attn::kMaxRank)
        return emitError(m.loc)
               << "'" << t.name << "' of model '" << m.name << "' has rank "
               << t.dims.size() << ", above " << attn::kMaxRank
               << ", the most the runtime accepts";
      if (hasControlChar(t.name) || hasControlChar(t.weightName))
        return emitError(m.loc)
               << "tensor name '" << t.name << "' (weight '" << t.weightName
               << "') of model '" << m.name << "' holds a control character";
    }
    for (const std::string &sym : m.syms)
      if (hasControlChar(sym))
        return emitError(m.loc) << "size name '" << sym << "' of model '"
                                << m.name << "' holds a control character";
  }
  return success();
}

std::optional<std::string> readFile(StringRef path) {
  auto buf = llvm::MemoryBuffer::getFile(path);
  if (!buf)
    return std::nullopt;
  return (*buf)->getBuffer().str();
}

/// Whether a tensor of `m` has static dims of 2^31 bytes or more.
bool needsLargeBuffers(const attn::ModelPipeline &m) {
  static const int64_t bytes[] = {4, 2, 2, 4, 1}; // by TensorDesc::DType
  return llvm::any_of(m.tensors, [](const attn::TensorDesc &t) {
    int64_t n = bytes[t.dtype];
    for (int64_t d : t.dims)
      if (d < 0 || __builtin_mul_overflow(n, d, &n))
        return d >= 0; // symbolic: unknown here; overflow: large
    return n > INT32_MAX;
  });
}

/// Everything that needs Halide, behind one try/catch in emitHalide.
class Emitter {
public:
  Emitter(ModuleOp module, attn::HalideEmitKind kind, Halide::Target target,
          StringRef outputPath, int segmentOps)
      : module(module), kind(kind), target(target), outputPath(outputPath),
        segmentOps(segmentOps) {}

  LogicalResult run();

private:
  LogicalResult emitText(Halide::OutputFileType type);
  LogicalResult emitHeader();
  LogicalResult emitBinary();
  /// Compiles `model` to `files` (Halide's output kinds -> paths).
  LogicalResult compileModel(attn::ModelPipeline &model,
                             std::map<Halide::OutputFileType, std::string>
                                 files);

  ModuleOp module;
  attn::HalideEmitKind kind;
  Halide::Target target;
  StringRef outputPath;
  int segmentOps;
  std::vector<attn::ModelPipeline> models;
  TempDir tmp;
};

/// The pipelines of a model: its segments, or itself.
std::vector<attn::ModelPipeline *> pieces(attn::ModelPipeline &m) {
  std::vector<attn::ModelPipeline *> out;
  for (attn::ModelPipeline &seg : m.segments)
    out.push_back(&seg);
  if (out.empty())
    out.push_back(&m);
  return out;
}

LogicalResult Emitter::compileModel(
    attn::ModelPipeline &model,
    std::map<Halide::OutputFileType, std::string> files) {
  return attn::catchHalideErrors(model.loc, [&] {
    Halide::Target t = target.with_feature(Halide::Target::NoRuntime);
    Halide::Module m =
        model.pipeline.compile_to_module(model.args, model.halideName, t);
    // Device buffers are not the host's: GPU models leave scratch unknown.
    if (!target.has_gpu_feature())
      model.scratch = attn::scratchProgram(model, m);
    m.compile(files);
    return success();
  });
}

LogicalResult Emitter::emitText(Halide::OutputFileType type) {
  std::string text;
  for (attn::ModelPipeline &model : models)
    for (attn::ModelPipeline *piece : pieces(model)) {
      std::string file = tmp.file(piece->halideName + ".txt");
      if (failed(compileModel(*piece, {{type, file}})))
        return failure();
      std::optional<std::string> part = readFile(file);
      if (!part)
        return emitError(model.loc) << "Halide wrote no output to " << file;
      text += *part;
    }
  return writeText(module.getLoc(), text, outputPath);
}

/// Halide's header of one model, made the same on every run and limited to
/// the model's interface: its include guard is derived from the temporary
/// file's path, and it declares the pipeline's parallel-loop bodies
/// (`<fn>_par_for_*`), which are internal.
static std::string publicHeader(llvm::StringRef halideHeader,
                                const std::string &fn) {
  llvm::SmallVector<llvm::StringRef> lines;
  halideHeader.split(lines, '\n');
  std::string guard, out;
  for (size_t i = 0; i < lines.size(); ++i) {
    llvm::StringRef line = lines[i];
    if (guard.empty() && line.starts_with("#ifndef "))
      guard = line.drop_front(8).trim().str(); // the first is the guard
    if (line.trim() == "HALIDE_FUNCTION_ATTRS" && i + 1 < lines.size() &&
        lines[i + 1].starts_with("int " + fn + "_par_for_")) {
      ++i; // the attribute line and the declaration after it
      continue;
    }
    out += line.str();
    if (i + 1 < lines.size())
      out += '\n';
  }
  std::string stable = "ATTN_MODEL_" + fn + "_H";
  for (size_t at = 0;
       !guard.empty() && (at = out.find(guard, at)) != std::string::npos;
       at += stable.size())
    out.replace(at, guard.size(), stable);
  return out;
}

LogicalResult Emitter::emitHeader() {
  std::string text =
      "/* Generated by attnc. One function per model: attn_<model>(inputs, "
      "params, outputs),\n"
      " * each a struct halide_buffer_t * (dim 0 = the innermost dim). Link "
      "the static\n * library (.a) that attnc --emit=static gives. */\n"
      "#ifndef ATTN_GENERATED_MODELS_H\n#define ATTN_GENERATED_MODELS_H\n\n"
      "#include \"HalideRuntime.h\"\n\n"
      "#ifdef __cplusplus\nextern \"C\" {\n#endif\n"
      "/* The model table (attn/abi.h), for the attnc runtime. */\n"
      "struct attn_library_desc;\n"
      "const struct attn_library_desc *attn_library_v1(void);\n"
      "#ifdef __cplusplus\n}\n#endif\n\n";
  for (attn::ModelPipeline &model : models) {
    if (model.internal)
      continue;
    if (model.halideName != model.functionName) {
      // A model that calls others: attn_<model> is a C wrapper (Emit.cpp).
      text += "#ifdef __cplusplus\nextern \"C\" {\n#endif\n";
      text += "int " + model.functionName + "(";
      for (size_t t = 0; t < model.tensors.size(); ++t)
        text += std::string(t ? ", " : "") + "struct halide_buffer_t *t" +
                std::to_string(t);
      text += ");\nint " + model.functionName + "_argv(void **args);\n";
      text += "#ifdef __cplusplus\n}\n#endif\n\n";
      continue;
    }
    std::string file = tmp.file(model.functionName + ".h");
    if (failed(compileModel(model, {{Halide::OutputFileType::c_header, file}})))
      return failure();
    std::optional<std::string> part = readFile(file);
    if (!part)
      return emitError(model.loc) << "Halide wrote no header to " << file;
    text += publicHeader(*part, model.functionName) + "\n";
  }
  text += "#endif /* ATTN_GENERATED_MODELS_H */\n";
  return writeText(module.getLoc(), text, outputPath);
}

LogicalResult Emitter::emitBinary() {
  Location loc = module.getLoc();
  std::vector<std::string> objects;
  for (attn::ModelPipeline &model : models) {
    for (attn::ModelPipeline *piece : pieces(model)) {
      std::string obj = tmp.file(piece->halideName + ".o");
      if (failed(
              compileModel(*piece, {{Halide::OutputFileType::object, obj}})))
        return failure();
      objects.push_back(obj);
    }
    if (!model.segments.empty())
      model.scratch = attn::splitScratchProgram(model);
  }
  std::string runtime = tmp.file("halide_runtime.o");
  if (failed(attn::catchHalideErrors(loc, [&] {
        Halide::compile_standalone_runtime(runtime, target);
        return success();
      })))
    return failure();
  objects.push_back(runtime);

  std::string tableC = tmp.file("attn_table.c"), tableO = tmp.file("attn_table.o");
  if (failed(writeText(loc, tableSource(models, target), tableC)))
    return failure();
  std::vector<std::string> cc = cCompiler(target);
  std::vector<std::string> compile = cc;
  compile.insert(compile.end(),
                 {"-c", "-O2", "-fPIC", "-I", ATTN_RUNTIME_INCLUDE_DIR, "-I",
                  ATTN_HALIDE_INCLUDE_DIR, tableC, "-o", tableO});
  if (failed(runCommand(loc, compile)))
    return failure();
  objects.push_back(tableO);

  std::string result = tmp.file("result");
  std::vector<std::string> link;
  if (kind == attn::HalideEmitKind::Static) {
    link = {archiver(cc), "rcs", result};
    link.insert(link.end(), objects.begin(), objects.end());
  } else {
    link = cc;
    if (kind == attn::HalideEmitKind::Shared)
      link.push_back("-shared");
    else
      link.insert(link.end(), {"-r", "-nostdlib"});
    link.insert(link.end(), objects.begin(), objects.end());
    link.insert(link.end(), {"-o", result});
    if (kind == attn::HalideEmitKind::Shared)
      link.insert(link.end(), {"-lpthread", "-ldl", "-lm"});
  }
  if (failed(runCommand(loc, link)))
    return failure();

  std::optional<std::string> bytes = readFile(result);
  if (!bytes)
    return emitError(loc) << "cannot read " << result;
  return writeText(loc, *bytes, outputPath);
}

LogicalResult Emitter::run() {
  if (tmp.ec)
    return emitError(module.getLoc())
           << "cannot create a temporary directory: " << tmp.ec.message();
  // The listed models and every model they call, callees first (a call's
  // extern stage needs nothing of its callee but the symbol, but errors
  // read better in that order).
  llvm::SetVector<func::FuncOp> needed;
  std::function<void(func::FuncOp)> need = [&](func::FuncOp f) {
    if (needed.contains(f))
      return;
    f.walk([&](attn::CallOp c) {
      if (auto g = SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(
              c, c.getCalleeAttr()))
        need(g);
    });
    needed.insert(f);
  };
  auto isInternal = [](func::FuncOp f) {
    return f->hasAttr("attn.imported") || f->hasAttr("attn.internal");
  };
  for (auto f : module.getOps<func::FuncOp>())
    if (!isInternal(f))
      need(f);
  bool calls = false;
  for (func::FuncOp f : needed)
    f.walk([&](attn::CallOp) { calls = true; });
  for (func::FuncOp f : needed)
    f.walk([&](attn::CacheWriteOp) { calls = true; });
  if (calls && target.has_gpu_feature())
    return emitError(module.getLoc())
           << "model calls and cache_write are not supported for GPU "
              "targets yet";
  // A model that another calls is compiled for those calls and not listed
  // (compile it with --model to get it on its own).
  llvm::DenseSet<Operation *> called;
  for (func::FuncOp f : needed)
    f.walk([&](attn::CallOp c) {
      called.insert(SymbolTable::lookupNearestSymbolFrom(c, c.getCalleeAttr()));
    });
  for (func::FuncOp f : needed) {
    // GPU pipelines are never split: their wrapper would have to move
    // the boundaries between host and device.
    attn::PipelineOptions options;
    options.segmentOps = target.has_gpu_feature() ? 0 : segmentOps;
    FailureOr<attn::ModelPipeline> model = attn::buildPipeline(f, options);
    if (failed(model))
      return failure();
    model->internal = isInternal(f) || called.contains(f);
    if (failed(attn::catchHalideErrors(model->loc, [&] {
          attn::applySchedule(*model, target);
          return success();
        })))
      return failure();
    models.push_back(std::move(*model));
  }
  if (models.empty())
    return emitError(module.getLoc()) << "no model to compile";
  if (failed(checkTable(models)))
    return failure();
  // A buffer of 2 GiB or more needs Halide's large_buffers, which makes
  // every index computation 64-bit (bert_layer ran about 18% slower): it is
  // added only where a tensor's static size needs it. Symbolic sizes can
  // ask for it with the target string (--target=host-large_buffers).
  if (!target.has_gpu_feature() && llvm::any_of(models, needsLargeBuffers))
    target = target.with_feature(Halide::Target::LargeBuffers);

  using Kind = attn::HalideEmitKind;
  using Type = Halide::OutputFileType;
  switch (kind) {
  case Kind::Stmt:
    return emitText(Type::stmt);
  case Kind::Html:
    return emitText(Type::stmt_html);
  case Kind::Llvm:
    return emitText(Type::llvm_assembly);
  case Kind::Asm:
    return emitText(Type::assembly);
  case Kind::Header:
    return emitHeader();
  case Kind::Object:
  case Kind::Static:
  case Kind::Shared:
    return emitBinary();
  }
  return failure();
}

} // namespace

void attn::removeTemporaryFiles() {
  std::lock_guard<std::mutex> lock(tempDirsMutex);
  for (const std::string &dir : tempDirs)
    llvm::sys::fs::remove_directories(dir);
  tempDirs.clear();
  // The temporary output files (writeOutputFile's fs::TempFile) are
  // registered for removal on a signal.
  llvm::sys::RunInterruptHandlers();
}

std::string attn::writeOutputFile(StringRef path, StringRef bytes) {
  namespace fs = llvm::sys::fs;
  if (path == "-") {
    llvm::outs() << bytes;
    llvm::outs().flush();
    return "";
  }
  std::string failed = "cannot write '" + path.str() + "': ";
  fs::file_status st;
  bool exists = !fs::status(path, st), link = false;
  fs::is_symlink_file(path, link);
  if (exists && fs::is_directory(st))
    return failed + "it is a directory";
  if (exists ? !fs::is_regular_file(st) : link) {
    // A device or FIFO (/dev/null, /dev/stdout), or a dangling symlink:
    // written in place.
    std::error_code ec;
    llvm::raw_fd_ostream out(path, ec);
    if (!ec) {
      out << bytes;
      out.close();
      ec = out.error();
    }
    return ec ? failed + ec.message() : "";
  }
  // A regular file (through a symlink) or a new one: a temporary file next
  // to it, renamed over it.
  llvm::SmallString<256> target(path);
  if (exists && link && fs::real_path(path, target))
    target = path;
  llvm::Expected<fs::TempFile> tmp = fs::TempFile::create(
      target + ".tmp-%%%%%%", fs::all_read | fs::all_write);
  if (!tmp)
    return failed + llvm::toString(tmp.takeError());
  if (exists)
    fs::setPermissions(tmp->FD, st.permissions());
  llvm::raw_fd_ostream out(tmp->FD, /*shouldClose=*/false);
  out << bytes;
  out.flush();
  if (std::error_code ec = out.error()) {
    out.clear_error();
    llvm::consumeError(tmp->discard());
    return failed + ec.message();
  }
  if (llvm::Error e = tmp->keep(target))
    return failed + llvm::toString(std::move(e));
  return "";
}

LogicalResult attn::emitHalide(ModuleOp module, HalideEmitKind kind,
                               StringRef targetName, StringRef outputPath,
                               int segmentOps) {
  return attn::catchHalideErrors(module.getLoc(), [&]() -> LogicalResult {
    FailureOr<Halide::Target> target = parseTarget(module.getLoc(), targetName);
    if (failed(target))
      return failure();
    return Emitter(module, kind, *target, outputPath, segmentOps).run();
  });
}
