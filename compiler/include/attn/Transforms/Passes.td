//===- Passes.td - Fusion and scheduling passes over attn IR -*- tablegen -*-===//
#ifndef ATTN_TRANSFORMS_PASSES_TD
#define ATTN_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def AttnFuseAttention : Pass<"attn-fuse-attention"> {
  let summary = "Fuses q k^T, scale, bias, masked softmax and @ v into "
                "attn.attention";
  let description = [{
    Rewrites a hand-written attention into the flash-style op, so that the
    scores are never materialised beyond one query tile:

      matmul(softmax(matmul(q, transpose(k)) * c (+ bias), mask), v)
        = attention(q, k, v, mask, bias, scale = c)

    `* c` may also be `c *`, `/ c` (scale = 1/c) or absent (scale = 1); `c`
    is an `attn.constant`. q, k and v are rank 4; every intermediate must
    have no other use (otherwise the scores are needed anyway). The result is
    the same op that `attention(q, k, v, mask=..., bias=..., scale=c)` gives.
  }];
  let dependentDialects = ["::attn::AttnDialect"];
}

def AttnFuseEpilogues : Pass<"attn-fuse-epilogues"> {
  let summary = "Folds bias, activation and residual add into the GEMM that "
                "produces them";
  let description = [{
    Element-wise consumers of a projection become its epilogue, applied to
    each output tile while it is in registers:

      linear(x, w) + b          = linear(x, w, b)            (b: [out])
      act(linear(x, w, b))      = fused_linear(x, w, b, activation = act)
      linear(x, w, b) + r       = fused_linear(x, w, b, residual = r)
      act(...) + r              = fused_linear(..., activation = act, residual = r)

    for act in gelu, gelu_tanh, silu, relu, and r of the result's exact
    type. The projection must have no other use.
  }];
  let dependentDialects = ["::attn::AttnDialect"];
}

def AttnFuseProjections : Pass<"attn-fuse-projections"> {
  let summary = "Merges projections of one input into attn.multi_linear";
  let description = [{
    Several projections of the same input become one pass over it:

      linear(x, w_1, b_1), ..., linear(x, w_n, b_n)
        = multi_linear(x, [w_1 .. w_n], [b_1 .. b_n])

    for n >= 2 plain `attn.linear`s in one block with static output widths
    which all have a bias or all have none (q, k and v of multi-head
    attention, also GQA's narrower k and v). The fused op is placed at the
    first projection; every weight and bias must already be available there.
  }];
  let dependentDialects = ["::attn::AttnDialect"];
}

def AttnFoldLayout : Pass<"attn-fold-layout"> {
  let summary = "Turns head split/merge and transposes into index maps";
  let description = [{
    Layout ops move no data: they are index maps that their consumers read
    through. This pass removes inverse pairs

      merge_heads(split_heads(x)) = x,   transpose(transpose(x)) = x

    and marks every remaining `split_heads`, `merge_heads`, `transpose`,
    `split`, `slice`, `unsqueeze` and `cast`, and every mask, constant and
    `arange`, with `attn.schedule = #attn.inline`: the backend then folds
    them into the index expressions of each consumer instead of copying.
    `attn-schedule` keeps these marks.
  }];
  let dependentDialects = ["::attn::AttnDialect"];
}

def AttnSchedule : Pass<"attn-schedule"> {
  let summary = "Attaches a schedule attribute to every op for a target";
  let description = [{
    Gives every op without one an `attn.schedule` chosen from the target's
    vector width, register file and cache sizes (the attributes and their
    fields are documented in the dialect, AttnAttrs.td), then applies user
    overrides:

    - GEMMs (`linear`, `fused_linear`, `multi_linear`, `matmul`):
      `#attn.gemm_schedule<m, n, k, rm, rn, dot, vector, parallel, unroll>`;
    - `attention`: `#attn.attention_schedule<q, qb, few, kv, pv, rq, rkv,
      rqk, rows, vector, parallel, unroll_qk, unroll_pv>`;
    - index maps (layout ops, masks, casts, constants): `#attn.inline`;
    - the rest (`softmax`, norms, `rope`, element-wise):
      `#attn.rows_schedule<compute, rows, vector, parallel>`;
    - on GPU targets (`cuda`, `opencl`) every op:
      `#attn.gpu_schedule<x, y>`, the threads of a block.

    Targets are families (attn/Transforms/TargetDesc.h): `avx512` (vector
    16, 32 registers), `avx2` (8, 16), `neon` (4, 32), `generic` (4, 16,
    no FMA); `l1`/`l2`/`l3` replace the family's cache sizes (attnc passes
    the host's, read from sysfs, or its --l1-cache.. flags).

    `overrides` entries are `NAME:key=value,key=value` (`;` may separate the
    pairs too, as inside attn-opt's comma-separated option list); NAME is an
    op's name as printed by `--emit=scheduled` and used for its Halide func
    (`a_attention_L9`), or an op mnemonic (`attention`) for every op of that
    kind. Keys are the fields of the op's attribute (`tile.KEY` is read as
    `KEY`); the entries of one override are applied together, then the
    attribute's verifier and the target's register file check the result:

      attention:q=32,rqk=32,vector=8    softmax:compute=inline
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"avx512\"",
           "the target family: avx512, avx2, neon, generic, cuda or opencl">,
    Option<"l1", "l1", "int64_t", /*default=*/"0",
           "L1 data cache bytes per core (0: the family's table)">,
    Option<"l2", "l2", "int64_t", /*default=*/"0",
           "L2 bytes per core (0: the family's table)">,
    Option<"l3", "l3", "int64_t", /*default=*/"0",
           "last-level cache bytes (0: the family's table)">,
    ListOption<"overrides", "overrides", "std::string",
               "NAME:key=value,... schedule overrides">,
  ];
  let dependentDialects = ["::attn::AttnDialect"];
}

#endif // ATTN_TRANSFORMS_PASSES_TD
