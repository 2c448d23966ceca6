//===- attnc.cpp - The attnc compiler driver ------------------------------===//
//
// attnc FILE.attn|FILE.mlir [-o OUT] [--emit=KIND] [--target=T] [--model NAME]
//
//===----------------------------------------------------------------------===//
#include "attn/Dialect/AttnDialect.h"
#include "attn/Dialect/AttnOps.h"
#include "attn/Frontend/Frontend.h"
#include "attn/Frontend/MLIRGen.h"
#include "attn/Transforms/Passes.h"
#include "attn/Halide/Emit.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/Timing.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/TargetParser/Host.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <unistd.h>

using namespace mlir;
namespace cl = llvm::cl;

namespace {
enum class Emit {
  Ast, Attn, Fused, Scheduled, HalideStmt, HalideHtml, Llvm, Asm,
  Header, Object, Static, Shared
};
} // namespace

static cl::OptionCategory attncCategory("attnc options");

static cl::opt<std::string> inputFile(cl::Positional, cl::Required,
                                      cl::desc("<input .attn or .mlir file>"),
                                      cl::cat(attncCategory));
static cl::opt<std::string> outputFile("o", cl::desc("Output file ('-' for "
                                                     "stdout)"),
                                       cl::value_desc("file"), cl::init("-"),
                                       cl::cat(attncCategory));
static cl::opt<Emit> emit(
    "emit", cl::desc("What to produce"), cl::init(Emit::Shared),
    cl::values(
        clEnumValN(Emit::Ast, "ast", "the checked syntax tree"),
        clEnumValN(Emit::Attn, "attn", "attn IR as written"),
        clEnumValN(Emit::Fused, "fused", "attn IR after fusion"),
        clEnumValN(Emit::Scheduled, "scheduled",
                   "attn IR with schedule attributes"),
        clEnumValN(Emit::HalideStmt, "halide-stmt", "Halide's lowered stmt"),
        clEnumValN(Emit::HalideHtml, "halide-html", "Halide's stmt as HTML"),
        clEnumValN(Emit::Llvm, "llvm", "LLVM IR"),
        clEnumValN(Emit::Asm, "asm", "assembly"),
        clEnumValN(Emit::Header, "header", "the C header"),
        clEnumValN(Emit::Object, "object", "an object file"),
        clEnumValN(Emit::Static, "static", "a static library (.a)"),
        clEnumValN(Emit::Shared, "shared", "a shared library (.so)")),
    cl::cat(attncCategory));
static cl::opt<std::string> target("target",
                                   cl::desc("host (default), a Halide target "
                                            "string, cuda or opencl"),
                                   cl::init("host"), cl::cat(attncCategory));
static cl::opt<std::string> modelName("model",
                                      cl::desc("Compile only this model"),
                                      cl::value_desc("name"),
                                      cl::cat(attncCategory));

static const char *const emitNames[] = {
    "ast",    "attn", "fused",  "scheduled", "halide-stmt", "halide-html",
    "llvm",   "asm",  "header", "object",    "static",      "shared"};

static StringRef emitName() { return emitNames[(int)emit.getValue()]; }

/// Prints `attnc: error: message`, the message made safe to print.
static void driverError(const std::string &message) {
  llvm::errs() << "attnc: error: " << attn::displayText(message) << "\n";
}

namespace {
/// Prints MLIR's diagnostics as the front end prints its own
/// (attn::SourceDiagnostics): file:line:col, the quoted line and a caret,
/// with unsafe bytes escaped. Each file is read once (as input is).
class DiagnosticPrinter {
public:
  DiagnosticPrinter(MLIRContext &context, const std::string &file,
                    std::string text)
      : context(context) {
    files[file] =
        std::make_unique<attn::SourceDiagnostics>(file, std::move(text), os);
    id = context.getDiagEngine().registerHandler([this](Diagnostic &d) {
      emit(d.getLocation(), severity(d.getSeverity()), d.str());
      for (Diagnostic &note : d.getNotes())
        emit(note.getLocation(), "note", note.str());
      llvm::errs() << os.str();
      os.str("");
    });
  }
  ~DiagnosticPrinter() { context.getDiagEngine().eraseHandler(id); }

private:
  static const char *severity(DiagnosticSeverity s) {
    switch (s) {
    case DiagnosticSeverity::Note:
      return "note";
    case DiagnosticSeverity::Warning:
      return "warning";
    case DiagnosticSeverity::Remark:
      return "remark";
    default:
      return "error";
    }
  }
  /// The file location a diagnostic at `loc` points to (as MLIR's own
  /// handler finds it), if any.
  static std::optional<FileLineColLoc> fileLoc(Location loc) {
    if (auto f = dyn_cast<FileLineColLoc>(loc))
      return f;
    if (auto n = dyn_cast<NameLoc>(loc))
      return fileLoc(n.getChildLoc());
    if (auto c = dyn_cast<CallSiteLoc>(loc))
      return fileLoc(c.getCallee());
    if (auto o = dyn_cast<OpaqueLoc>(loc))
      return fileLoc(o.getFallbackLocation());
    if (auto f = dyn_cast<FusedLoc>(loc))
      for (Location l : f.getLocations())
        if (auto at = fileLoc(l))
          return at;
    return std::nullopt;
  }
  void emit(Location loc, const char *kind, const std::string &message) {
    std::optional<FileLineColLoc> at = fileLoc(loc);
    std::string file = at ? at->getFilename().str() : inputFile.getValue();
    std::unique_ptr<attn::SourceDiagnostics> &src = files[file];
    std::string text, reason;
    if (!src && attn::readInputFile(file, text, reason))
      src = std::make_unique<attn::SourceDiagnostics>(file, text, os);
    attn::ast::Location l;
    if (at)
      l = {at->getLine(), at->getColumn()};
    if (src)
      src->emit(l, kind, message);
    else // a file that cannot be read: no quote
      os << attn::displayText(file) << ":" << l.line << ":" << l.col << ": "
         << kind << ": " << attn::displayText(message) << "\n";
  }

  MLIRContext &context;
  DiagnosticEngine::HandlerID id;
  std::ostringstream os;
  std::map<std::string, std::unique_ptr<attn::SourceDiagnostics>> files;
};
} // namespace

static bool endsWith(StringRef s, StringRef suffix) {
  return s.size() >= suffix.size() && s.ends_with(suffix);
}

/// Keeps only the model named by --model, and the models it calls (marked
/// attn.internal: compiled, not listed in the library's table); errors if
/// it does not exist.
static LogicalResult selectModel(ModuleOp module) {
  if (modelName.empty())
    return success();
  func::FuncOp chosen;
  std::string names;
  for (auto f : module.getOps<func::FuncOp>()) {
    if (f.getSymName() == modelName)
      chosen = f;
    if (!f->hasAttr("attn.imported"))
      names += (names.empty() ? "" : ", ") + f.getSymName().str();
  }
  if (!chosen || chosen->hasAttr("attn.imported")) {
    driverError("no model named '" + modelName + "' in " + inputFile +
                " (it has: " + names + ")");
    return failure();
  }
  llvm::SetVector<Operation *> keep;
  SmallVector<func::FuncOp> work = {chosen};
  while (!work.empty()) {
    func::FuncOp f = work.pop_back_val();
    if (!keep.insert(f))
      continue;
    f.walk([&](attn::CallOp c) {
      if (auto g = SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(
              c, c.getCalleeAttr()))
        work.push_back(g);
    });
  }
  SmallVector<func::FuncOp> drop;
  for (auto f : module.getOps<func::FuncOp>()) {
    if (!keep.contains(f))
      drop.push_back(f);
    else if (f != chosen && !f->hasAttr("attn.imported"))
      f->setAttr("attn.internal", UnitAttr::get(module.getContext()));
  }
  for (func::FuncOp f : drop)
    f.erase();
  return success();
}

/// The file a binary kind goes to when -o is not given: lib<stem>.so,
/// lib<stem>.a or <stem>.o in the current directory.
static std::string defaultBinaryOutput(attn::HalideEmitKind kind) {
  std::string stem = llvm::sys::path::stem(inputFile).str();
  switch (kind) {
  case attn::HalideEmitKind::Shared:
    return "lib" + stem + ".so";
  case attn::HalideEmitKind::Static:
    return "lib" + stem + ".a";
  default:
    return stem + ".o";
  }
}

static cl::opt<bool> noFusion(
    "no-fusion",
    cl::desc("Compile the IR as written: no fusion passes, no schedule "
             "attributes, every op computed at root (for comparisons)"),
    cl::init(false), cl::cat(attncCategory));
static cl::list<std::string> scheduleOptions(
    "schedule",
    cl::desc("Override an op's schedule: NAME:key=value,... (NAME as printed "
             "by --emit=scheduled, or an op mnemonic); repeatable"),
    cl::value_desc("override"), cl::cat(attncCategory));
static cl::opt<std::string> scheduleFile(
    "schedule-file",
    cl::desc("Read schedule overrides from a file, one per line ('#' "
             "comments)"),
    cl::value_desc("file"), cl::cat(attncCategory));

static cl::opt<std::string> l1Cache(
    "l1-cache",
    cl::desc("L1 data cache per core that schedules assume (default: this "
             "machine's for host targets, the family's table otherwise)"),
    cl::value_desc("bytes|NK|NM"), cl::cat(attncCategory));
static cl::opt<std::string>
    l2Cache("l2-cache", cl::desc("L2 per core that schedules assume"),
            cl::value_desc("bytes|NK|NM"), cl::cat(attncCategory));
static cl::opt<std::string>
    l3Cache("l3-cache", cl::desc("Last-level cache that schedules assume"),
            cl::value_desc("bytes|NK|NM"), cl::cat(attncCategory));

/// A byte count flag (--lN-cache, --max-memory): bytes, or a number with K,
/// M or G (powers of 1024; a trailing B or iB is allowed), from 1 to 1T;
/// unset is 0 (the default). `what` names the value in the error.
static FailureOr<int64_t> byteSize(const cl::opt<std::string> &flag,
                                   const char *what) {
  StringRef digits = StringRef(flag).trim();
  if (flag.getNumOccurrences() == 0)
    return 0;
  if (!digits.consume_back_insensitive("ib"))
    digits.consume_back_insensitive("b");
  int shift = digits.consume_back_insensitive("k")   ? 10
              : digits.consume_back_insensitive("m") ? 20
              : digits.consume_back_insensitive("g") ? 30
                                                     : 0;
  uint64_t n = 0;
  if (digits.getAsInteger(10, n) || n == 0 ||
      n > ((uint64_t(1) << 40) >> shift)) {
    driverError("--" + flag.ArgStr.str() + "='" + flag + "' is not " + what +
                " (bytes, or a number with K, M or G; from 1 to 1T)");
    return failure();
  }
  return (int64_t)(n << shift);
}
static FailureOr<int64_t> cacheSize(const cl::opt<std::string> &flag) {
  return byteSize(flag, "a cache size");
}

static cl::opt<std::string> maxMemory(
    "max-memory",
    cl::desc("Stop with an error when attnc's resident memory exceeds this "
             "(checked every 10 ms; attnc itself starts at about 100M)"),
    cl::value_desc("bytes|NK|NM|NG"), cl::cat(attncCategory));
static cl::opt<std::string> timeoutFlag(
    "timeout",
    cl::desc("Stop with an error when the compile has run this long (wall "
             "clock)"),
    cl::value_desc("seconds"), cl::cat(attncCategory));

/// A --timeout value: a positive number of seconds; unset is 0 (none).
static FailureOr<double> timeoutSeconds() {
  if (timeoutFlag.getNumOccurrences() == 0)
    return 0.0;
  StringRef text = StringRef(timeoutFlag).trim();
  text.consume_back_insensitive("s");
  double seconds = 0;
  if (text.getAsDouble(seconds) || !(seconds > 0) || seconds > 1e9) {
    driverError("--timeout='" + timeoutFlag +
                "' is not a time limit (a positive number of seconds)");
    return failure();
  }
  return seconds;
}

/// "512 MiB", "1.5 GiB": a byte count for messages.
static std::string formatBytes(uint64_t bytes) {
  const char *units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)bytes;
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[64];
  snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.4g %s", v, units[u]);
  return buf;
}

namespace {
/// --timeout and --max-memory: a thread that checks the time since the
/// start and the resident memory every 10 ms, and once either is over its
/// limit, says so, removes the compile's temporary files and ends the
/// process with exit code 1 (a Halide lowering or LLVM pass cannot be
/// interrupted otherwise).
class Watchdog {
public:
  Watchdog(double seconds, uint64_t bytes) : seconds(seconds), bytes(bytes) {
    if (seconds > 0 || bytes > 0)
      thread = std::thread([this] { run(); });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      done = true;
    }
    wake.notify_all();
    if (thread.joinable())
      thread.join();
  }

private:
  static uint64_t residentBytes() {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    if (f) {
      if (fscanf(f, "%llu %llu", &size, &resident) != 2)
        resident = 0;
      fclose(f);
    }
    return resident * (uint64_t)sysconf(_SC_PAGESIZE);
  }
  [[noreturn]] static void stop(const std::string &message) {
    std::string line = "attnc: error: " + message + "\n";
    fwrite(line.data(), 1, line.size(), stderr);
    fflush(stderr);
    attn::removeTemporaryFiles();
    std::_Exit(1);
  }
  void run() {
    auto start = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(mutex);
    while (!wake.wait_for(lock, std::chrono::milliseconds(10),
                          [this] { return done; })) {
      std::chrono::duration<double> elapsed =
          std::chrono::steady_clock::now() - start;
      if (seconds > 0 && elapsed.count() >= seconds) {
        char buf[64];
        snprintf(buf, sizeof buf, "%g", seconds);
        stop(std::string("compile exceeded the time limit of ") + buf +
             " s (--timeout)");
      }
      uint64_t rss = bytes ? residentBytes() : 0;
      if (bytes && rss > bytes)
        stop("compile exceeded the memory limit of " + formatBytes(bytes) +
             " (--max-memory): " + formatBytes(rss) + " resident");
    }
  }

  double seconds;
  uint64_t bytes;
  std::mutex mutex;
  std::condition_variable wake;
  bool done = false;
  std::thread thread;
};
} // namespace

/// --schedule entries, then the lines of --schedule-file.
static FailureOr<std::vector<std::string>> scheduleOverrides() {
  std::vector<std::string> all(scheduleOptions.begin(), scheduleOptions.end());
  if (scheduleFile.empty())
    return all;
  std::string text, reason;
  if (!attn::readInputFile(scheduleFile, text, reason)) {
    driverError("cannot read '" + scheduleFile + "': " + reason);
    return failure();
  }
  SmallVector<StringRef> lines;
  StringRef(text).split(lines, '\n');
  for (StringRef line : lines) {
    line = line.split('#').first.trim();
    if (!line.empty())
      all.push_back(line.str());
  }
  return all;
}

static cl::opt<int> segmentOps(
    "segment-ops",
    cl::desc("Split a model of more than N root ops (ops with a buffer of "
             "their own) into Halide pipelines of about N ops each, so that "
             "compile time grows linearly with the op count (default 24; 0: "
             "one pipeline per model)"),
    cl::value_desc("N"), cl::init(attn::kDefaultSegmentOps),
    cl::cat(attncCategory));

/// --emit=halide-stmt ... shared: the Halide back end.
static LogicalResult emitHalideKind(ModuleOp module) {
  using K = attn::HalideEmitKind;
  K kind;
  switch (emit) {
  case Emit::HalideStmt: kind = K::Stmt; break;
  case Emit::HalideHtml: kind = K::Html; break;
  case Emit::Llvm: kind = K::Llvm; break;
  case Emit::Asm: kind = K::Asm; break;
  case Emit::Header: kind = K::Header; break;
  case Emit::Object: kind = K::Object; break;
  case Emit::Static: kind = K::Static; break;
  default: kind = K::Shared; break;
  }
  std::string out = outputFile;
  if (!attn::isTextKind(kind) && outputFile.getNumOccurrences() == 0)
    out = defaultBinaryOutput(kind);
  return attn::emitHalide(module, kind, target, out,
                          std::max(0, segmentOps.getValue()));
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  registerAsmPrinterCLOptions();
  registerMLIRContextCLOptions();
  registerPassManagerCLOptions();
  registerDefaultTimingManagerCLOptions();
  // --help lists attnc's own options and MLIR's (printing IR between passes,
  // timing, debug info), not the hundreds of LLVM backend options linked in;
  // those are hidden from --help but still accepted.
  static cl::OptionCategory mlirCategory(
      "MLIR options (print the IR between passes, timing, locations)");
  for (auto &entry : cl::getRegisteredOptions())
    if (entry.first.starts_with("mlir-"))
      entry.second->addCategory(mlirCategory);
  cl::HideUnrelatedOptions({&attncCategory, &mlirCategory});
  cl::ParseCommandLineOptions(argc, argv, "attnc: attention compiler\n");

  // The limits cover everything after the options: parsing, passes, Halide,
  // LLVM and the C compiler.
  FailureOr<double> seconds = timeoutSeconds();
  FailureOr<int64_t> memoryLimit = byteSize(maxMemory, "a memory limit");
  if (failed(seconds) || failed(memoryLimit))
    return 1;
  Watchdog watchdog(*seconds, *memoryLimit);

  // Before the compile, which may take long: -o never replaces a directory.
  if (outputFile != "-" && llvm::sys::fs::is_directory(outputFile)) {
    driverError("cannot write '" + outputFile + "': it is a directory");
    return 1;
  }
  std::string input, reason;
  if (!attn::readInputFile(inputFile, input, reason)) {
    driverError("cannot read '" + inputFile + "': " + reason);
    return 1;
  }

  MLIRContext context;
  // Errors point at DSL source lines; the op's IR would only be noise.
  context.printOpOnDiagnostic(false);
  context.getOrLoadDialect<attn::AttnDialect>();
  context.getOrLoadDialect<func::FuncDialect>();
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(input, inputFile), llvm::SMLoc());
  DiagnosticPrinter diagPrinter(context, inputFile, input);

  OwningOpRef<ModuleOp> module;
  if (endsWith(inputFile, ".mlir")) {
    if (emit == Emit::Ast) {
      driverError("--emit=ast needs a .attn source file");
      return 1;
    }
    module = parseSourceFile<ModuleOp>(sourceMgr, &context);
    if (!module)
      return 1;
  } else {
    std::ostringstream diagText;
    attn::SourceDiagnostics diags(inputFile, input, diagText);
    std::optional<attn::ast::Module> ast = attn::parseModule(diags);
    bool ok = ast && attn::loadImports(*ast, diags, diagText) &&
              attn::checkModule(*ast, diags);
    llvm::errs() << diagText.str();
    if (!ok)
      return 1;
    if (!modelName.empty()) {
      auto &models = ast->models;
      auto it = std::find_if(models.begin(), models.end(), [](auto &m) {
        return m.name == modelName;
      });
      if (it == models.end()) {
        std::string names;
        for (auto &m : models)
          names += (names.empty() ? "" : ", ") + m.name;
        driverError("no model named '" + modelName + "' in " + inputFile +
                    " (it has: " + names + ")");
        return 1;
      }
      if (emit == Emit::Ast) { // (calls point into the other models)
        auto chosen = std::move(*it);
        models.clear();
        models.push_back(std::move(chosen));
      }
    }
    if (emit == Emit::Ast) {
      std::ostringstream os;
      attn::ast::print(*ast, os);
      std::string error = attn::writeOutputFile(outputFile, os.str());
      if (!error.empty())
        driverError(error);
      return error.empty() ? 0 : 1;
    }
    module = attn::mlirGen(context, *ast);
    if (!module)
      return 1;
  }
  if (failed(selectModel(*module)))
    return 1;

  DefaultTimingManager tm;
  applyDefaultTimingManagerCLOptions(tm);
  PassManager pm(&context);
  TimingScope timing = tm.getRootScope();
  pm.enableTiming(timing);
  if (failed(applyPassManagerCLOptions(pm)))
    return 1;
  bool backend =
      emit != Emit::Attn && emit != Emit::Fused && emit != Emit::Scheduled;
  // GPU targets compile the IR as written, without the fusion passes: each
  // op is its own kernel, mapped as its #attn.gpu_schedule says.
  FailureOr<int64_t> l1 = cacheSize(l1Cache), l2 = cacheSize(l2Cache),
                     l3 = cacheSize(l3Cache);
  if (failed(l1) || failed(l2) || failed(l3))
    return 1;
  FailureOr<attn::TargetDesc> desc =
      attn::describeTarget(module->getLoc(), target, *l1, *l2, *l3);
  if (failed(desc))
    return 1;
  bool gpu = desc->gpu();
  if (emit == Emit::Fused) {
    attn::buildFusionPipeline(pm);
  } else if (emit == Emit::Scheduled || (backend && !noFusion)) {
    FailureOr<std::vector<std::string>> overrides = scheduleOverrides();
    if (failed(overrides))
      return 1;
    attn::buildScheduledPipeline(pm, *desc, *overrides, /*fuse=*/!gpu);
  }
  if (failed(pm.run(*module)))
    return 1;
  if (backend)
    return failed(emitHalideKind(*module)) ? 1 : 0;

  std::string text;
  llvm::raw_string_ostream os(text);
  module->print(os);
  os << "\n";
  std::string error = attn::writeOutputFile(outputFile, text);
  if (!error.empty())
    driverError(error);
  return error.empty() ? 0 : 1;
}
