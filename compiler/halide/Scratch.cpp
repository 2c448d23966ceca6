//===- Scratch.cpp - A model's scratch bytes as a function of its sizes ---===//
//
// The buffers that a lowered pipeline allocates outside every loop (its
// Funcs computed at root) live for the whole call. Their extents are Exprs
// over the lets of the lowered stmt, which end in the fields of the argument
// buffers. Substituted, with each buffer's extents replaced by the model's
// sizes, their sum becomes the size program of the library table
// (attn_model_memory in runtime/include/attn/abi.h).
//
//===----------------------------------------------------------------------===//
#include "attn/Halide/HalideGen.h"

#include <map>
#include <optional>

using namespace Halide;
using namespace Halide::Internal;

namespace {

/// Collects the byte sizes of the allocations outside every loop, and the
/// lets in scope at each (values that read a buffer's fields are not kept:
/// those variables stay free and name the buffer's dims).
class RootAllocations : public IRVisitor {
public:
  std::vector<Expr> sizes;

private:
  using IRVisitor::visit;
  std::map<std::string, Expr> lets;
  int loops = 0;

  void visit(const LetStmt *op) override {
    const Call *c = op->value.as<Call>();
    bool field = c && c->name.rfind("_halide_buffer_get_", 0) == 0;
    auto saved = lets.find(op->name) == lets.end()
                     ? std::nullopt
                     : std::optional<Expr>(lets[op->name]);
    if (!field)
      lets[op->name] = op->value;
    op->body.accept(this);
    if (saved)
      lets[op->name] = *saved;
    else
      lets.erase(op->name);
  }
  void visit(const For *op) override {
    ++loops;
    op->body.accept(this);
    --loops;
  }
  void visit(const Allocate *op) override {
    if (loops == 0) {
      Expr size = make_const(Int(64), op->type.bytes());
      for (const Expr &e : op->extents)
        size = size * cast(Int(64), e);
      // Substitute until no let in scope is left (each pass resolves one
      // level of lets that refer to others).
      for (int pass = 0; pass < 64; ++pass) {
        Expr next = substitute(lets, size);
        if (next.same_as(size))
          break;
        size = simplify(next);
      }
      sizes.push_back(simplify(substitute_in_all_lets(size)));
    }
    op->body.accept(this);
  }
};

/// Writes an Expr as a size program. A buffer field ("x.extent.0",
/// "x.min.0") becomes symbol k (`syms`) or a constant (`consts`); any other
/// variable or node makes encode() fail.
class Encoder {
public:
  explicit Encoder(const std::map<std::string, int64_t> &syms,
                   const std::map<std::string, int64_t> &consts)
      : syms(syms), consts(consts) {}

  std::vector<attn::SizeOp> code;

  bool encode(const Expr &e) {
    if (const IntImm *i = e.as<IntImm>())
      return push("ATTN_X_CONST", i->value);
    if (const UIntImm *u = e.as<UIntImm>())
      return u->value <= INT64_MAX && push("ATTN_X_CONST", (int64_t)u->value);
    if (const Variable *v = e.as<Variable>()) {
      if (auto it = syms.find(v->name); it != syms.end())
        return push("ATTN_X_SYM", it->second);
      if (auto it = consts.find(v->name); it != consts.end())
        return push("ATTN_X_CONST", it->second);
      return false;
    }
    if (const Cast *c = e.as<Cast>())
      return (c->type.is_int() || c->type.is_uint()) && c->type.bits() >= 32 &&
             encode(c->value);
    if (const Call *c = e.as<Call>()) {
      if (c->is_intrinsic({Call::likely, Call::likely_if_innermost,
                           Call::promise_clamped,
                           Call::unsafe_promise_clamped}))
        return encode(c->args[0]);
      return false;
    }
    if (const Not *n = e.as<Not>())
      return encode(n->a) && push("ATTN_X_NOT");
    if (const Select *s = e.as<Select>())
      return encode(s->condition) && encode(s->true_value) &&
             encode(s->false_value) && push("ATTN_X_SELECT");
    if (const GT *g = e.as<GT>())
      return binary(g->b, g->a, "ATTN_X_LT");
    if (const GE *g = e.as<GE>())
      return binary(g->b, g->a, "ATTN_X_LE");
#define ATTN_BINARY(NODE, OP)                                                  \
  if (const NODE *b = e.as<NODE>())                                            \
    return binary(b->a, b->b, OP);
    ATTN_BINARY(Add, "ATTN_X_ADD")
    ATTN_BINARY(Sub, "ATTN_X_SUB")
    ATTN_BINARY(Mul, "ATTN_X_MUL")
    ATTN_BINARY(Div, "ATTN_X_DIV")
    ATTN_BINARY(Mod, "ATTN_X_MOD")
    ATTN_BINARY(Min, "ATTN_X_MIN")
    ATTN_BINARY(Max, "ATTN_X_MAX")
    ATTN_BINARY(LT, "ATTN_X_LT")
    ATTN_BINARY(LE, "ATTN_X_LE")
    ATTN_BINARY(EQ, "ATTN_X_EQ")
    ATTN_BINARY(NE, "ATTN_X_NE")
    ATTN_BINARY(And, "ATTN_X_AND")
    ATTN_BINARY(Or, "ATTN_X_OR")
#undef ATTN_BINARY
    return false;
  }

private:
  const std::map<std::string, int64_t> &syms, &consts;

  bool push(const char *op, int64_t arg = 0) {
    code.push_back({op, arg});
    return true;
  }
  bool binary(const Expr &a, const Expr &b, const char *op) {
    return encode(a) && encode(b) && push(op);
  }
};

} // namespace

namespace {

/// The fields of the buffers of m's table tensors, as the Encoder maps
/// them: extents are the tensor's dims (Halide dim k is row-major dim
/// rank-1-k), mins 0. Outputs too when `outputs`. A segment's boundary
/// buffers are replaced (`bounds`) by their sizes, expressions of the
/// model's.
struct BufferFields {
  std::map<std::string, int64_t> syms, consts;
  std::map<std::string, Expr> bounds;

  BufferFields(const attn::ModelPipeline &m, bool outputs) {
    for (size_t i = 0; i < m.args.size(); ++i)
      add(m, m.args[i].name, m.argTensors.empty() ? (int)i : m.argTensors[i]);
    if (!outputs)
      return;
    size_t firstOut = m.tensors.size() - m.outputs.size();
    for (size_t j = 0; j < m.outputs.size(); ++j)
      add(m,
          m.outputs[j].outputs() > 1 ? m.outputs[j].name() + ".0"
                                     : m.outputs[j].name(),
          m.outputTensors.empty() ? (int)(firstOut + j) : m.outputTensors[j]);
  }

  void add(const attn::ModelPipeline &m, const std::string &b, int ref) {
    if (ref >= 0 && ref < (int)m.tensors.size()) {
      const std::vector<int64_t> &dims = m.tensors[ref].dims;
      size_t rank = dims.size();
      for (size_t k = 0; k < rank; ++k) {
        int64_t d = dims[rank - 1 - k];
        std::string ext = b + ".extent." + std::to_string(k);
        if (d < 0)
          syms[ext] = -(d + 1);
        else
          consts[ext] = d;
        consts[b + ".min." + std::to_string(k)] = 0;
      }
    } else if (ref <= -2 &&
               attn::boundaryOfRef(ref) < (int)m.boundaries.size()) {
      const std::vector<Expr> &shape =
          m.boundaries[attn::boundaryOfRef(ref)].shape;
      size_t rank = shape.size();
      for (size_t k = 0; k < rank; ++k) {
        bounds[b + ".extent." + std::to_string(k)] = shape[rank - 1 - k];
        bounds[b + ".min." + std::to_string(k)] = 0;
      }
    }
  }

  std::vector<attn::SizeOp> encode(Expr e) const {
    e = simplify(substitute(bounds, e));
    Encoder enc(syms, consts);
    if (!enc.encode(e))
      return {};
    return enc.code;
  }
};

} // namespace

std::vector<attn::SizeOp> attn::sizeProgram(const ModelPipeline &m,
                                            const Halide::Expr &e) {
  return BufferFields(m, /*outputs=*/false).encode(cast(Int(64), e));
}

std::vector<attn::SizeOp> attn::scratchProgram(const ModelPipeline &m,
                                               const Halide::Module &module) {
  BufferFields fields(m, /*outputs=*/true);
  for (const Internal::LoweredFunc &f : module.functions()) {
    if (f.name != m.halideName)
      continue;
    RootAllocations roots;
    f.body.accept(&roots);
    // The sum of max(size, 0): an unmappable size makes the whole unknown.
    Expr total = make_const(Int(64), 0);
    for (const Expr &size : roots.sizes)
      total = total + max(size, make_const(Int(64), 0));
    return fields.encode(total);
  }
  return {};
}

std::vector<attn::SizeOp> attn::splitScratchProgram(const ModelPipeline &m) {
  std::vector<SizeOp> code;
  for (size_t k = 0; k < m.segments.size(); ++k) {
    const std::vector<SizeOp> &own = m.segments[k].scratch;
    if (own.empty())
      return {};
    code.insert(code.end(), own.begin(), own.end());
    for (const Boundary &b : m.boundaries) {
      if (b.producer > (int)k || b.lastReader < (int)k)
        continue;
      Expr bytes = make_const(Int(64), b.type.bytes());
      for (const Expr &e : b.shape)
        bytes = bytes * cast(Int(64), e);
      std::vector<SizeOp> size = sizeProgram(m, bytes);
      if (size.empty())
        return {};
      code.insert(code.end(), size.begin(), size.end());
      code.push_back({"ATTN_X_ADD", 0});
    }
    if (k > 0)
      code.push_back({"ATTN_X_MAX", 0});
  }
  return code;
}
