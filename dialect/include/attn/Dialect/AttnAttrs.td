//===- AttnAttrs.td - attn dialect attributes --------------*- tablegen -*-===//
#ifndef ATTN_ATTRS_TD
#define ATTN_ATTRS_TD

include "attn/Dialect/AttnBase.td"
include "mlir/IR/EnumAttr.td"

def Attn_ActivationNone : I32EnumAttrCase<"none", 0>;
def Attn_ActivationGelu : I32EnumAttrCase<"gelu", 1>;
def Attn_ActivationGeluTanh : I32EnumAttrCase<"gelu_tanh", 2>;
def Attn_ActivationSilu : I32EnumAttrCase<"silu", 3>;
def Attn_ActivationRelu : I32EnumAttrCase<"relu", 4>;
def Attn_Activation : I32EnumAttr<"Activation",
    "an element-wise activation folded into a GEMM epilogue",
    [Attn_ActivationNone, Attn_ActivationGelu, Attn_ActivationGeluTanh,
     Attn_ActivationSilu, Attn_ActivationRelu]> {
  let cppNamespace = "::attn";
  let genSpecializedAttr = 0;
}
def Attn_ActivationAttr : EnumAttr<Attn_Dialect, Attn_Activation, "activation"> {
  let assemblyFormat = "`<` $value `>`";
}

def Attn_CmpLt : I32EnumAttrCase<"lt", 0>;
def Attn_CmpLe : I32EnumAttrCase<"le", 1>;
def Attn_CmpGt : I32EnumAttrCase<"gt", 2>;
def Attn_CmpGe : I32EnumAttrCase<"ge", 3>;
def Attn_CmpEq : I32EnumAttrCase<"eq", 4>;
def Attn_CmpNe : I32EnumAttrCase<"ne", 5>;
def Attn_CmpPredicate : I32EnumAttr<"CmpPredicate",
    "the comparison of attn.cmp: < <= > >= == !=",
    [Attn_CmpLt, Attn_CmpLe, Attn_CmpGt, Attn_CmpGe, Attn_CmpEq, Attn_CmpNe]> {
  let cppNamespace = "::attn";
  let genSpecializedAttr = 0;
}
def Attn_CmpPredicateAttr
    : EnumAttr<Attn_Dialect, Attn_CmpPredicate, "cmp_predicate"> {
  let assemblyFormat = "`<` $value `>`";
}

def Attn_ReduceSum : I32EnumAttrCase<"sum", 0>;
def Attn_ReduceMean : I32EnumAttrCase<"mean", 1>;
def Attn_ReduceMax : I32EnumAttrCase<"max", 2>;
def Attn_ReduceMin : I32EnumAttrCase<"min", 3>;
def Attn_ReduceKind : I32EnumAttr<"ReduceKind",
    "the reduction of attn.reduce", [Attn_ReduceSum, Attn_ReduceMean,
                                     Attn_ReduceMax, Attn_ReduceMin]> {
  let cppNamespace = "::attn";
  let genSpecializedAttr = 0;
}
def Attn_ReduceKindAttr
    : EnumAttr<Attn_Dialect, Attn_ReduceKind, "reduce_kind"> {
  let assemblyFormat = "`<` $value `>`";
}

//===----------------------------------------------------------------------===//
// Schedules: one typed attribute per op family
//===----------------------------------------------------------------------===//

def Attn_ComputeRoot : I32EnumAttrCase<"Root", 0, "root">;
def Attn_ComputeInline : I32EnumAttrCase<"Inline", 1, "inline">;
def Attn_ComputeKind : I32EnumAttr<"ComputeKind",
    "where an op is computed: its own loop nest and buffer (root), or "
    "folded into each consumer (inline)",
    [Attn_ComputeRoot, Attn_ComputeInline]> {
  let cppNamespace = "::attn";
  let genSpecializedAttr = 0;
}

def Attn_ScheduleAttrInterface : AttrInterface<"AttnScheduleAttrInterface"> {
  let cppNamespace = "::attn";
  let description = [{
    The schedule of one op, attached by `attn-schedule` as the discardable
    attribute `attn.schedule` and applied exactly by the Halide back end. One
    attribute per op family (`#attn.gemm_schedule`, `#attn.attention_schedule`,
    `#attn.rows_schedule`, `#attn.gpu_schedule`, `#attn.inline`); each has
    typed fields that the family's kernel reads, and a verifier for the rules
    that span fields. Its fields, as (key, value) pairs, are what
    `attnc --schedule=NAME:key=value` sets: an override is parsed against
    `getFields()` and rebuilt with `withFields`, so a wrong key is an error
    that lists the valid ones and a bad value is the verifier's error.
  }];
  let methods = [
    InterfaceMethod<"Root (its own loop nest) or inline (folded into each "
                    "consumer).", "::attn::ComputeKind", "getComputeKind">,
    InterfaceMethod<"The fields in declaration order: key, kind and value.",
                    "::llvm::SmallVector<::attn::ScheduleField>", "getFields">,
    InterfaceMethod<"The same family's schedule with `values` (one per "
                    "field, in getFields() order), or null after reporting "
                    "through `emitError` a value that breaks a rule.",
                    "::mlir::Attribute", "withFields",
                    (ins "::llvm::ArrayRef<int64_t>":$values,
                         "::llvm::function_ref<::mlir::InFlightDiagnostic()>":$emitError)>,
    InterfaceMethod<"Whether this family's kernel can schedule `op`.",
                    "bool", "appliesTo", (ins "::mlir::Operation *":$op)>,
    InterfaceMethod<"Checks that the register tiles of `op` fit `registers` "
                    "vector registers of `lanes` f32 each (a target's).",
                    "::mlir::LogicalResult", "verifyRegisters",
                    (ins "::mlir::Operation *":$op, "int64_t":$registers,
                         "int64_t":$lanes,
                         "::llvm::function_ref<::mlir::InFlightDiagnostic()>":$emitError),
                    [{}], [{ return ::mlir::success(); }]>,
  ];
}

class Attn_ScheduleAttrDef<string name, string attrMnemonic,
                           list<string> overridden = []>
    : AttrDef<Attn_Dialect, name, [DeclareAttrInterfaceMethods<
          Attn_ScheduleAttrInterface, overridden>]> {
  let mnemonic = attrMnemonic;
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Attn_GemmScheduleAttr : Attn_ScheduleAttrDef<"GemmSchedule", "gemm_schedule",
                                                 ["verifyRegisters"]> {
  let summary = "The tiles of a projection or matmul (GEMM) kernel";
  let description = [{
    `y[.., n] = sum_k x[.., k] w[n, k]` (plus the fused epilogue), after the
    well-known Halide GEMM (compiler/halide/kernels/Gemm.cpp):
    - `m`, `n`: the cache tile, `m` rows x `n` outputs; the weight block of
      `n` outputs is packed once per tile column, and `n` blocks run in
      parallel when `parallel`;
    - `k`: the k block (Goto's kc) over which a register tile accumulates
      while the panel slice (k x rn) stays in L1;
    - `rm`, `rn`: the register tile, `rm` rows x `rn` outputs (`rn / vector`
      vectors), unrolled over its rows when `unroll`;
    - `dot`: fewer rows in all than `dot` (a decode step) take dot products
      that read each weight row once, instead of packing; 0 never does.
    Rules: `rm` divides `m`, `rn` divides `n`, `vector` divides `rn`, and
    the `rm x rn` accumulators fit the target's vector registers.

    ```mlir
    #attn.gemm_schedule<m = 6, n = 64, k = 128, rm = 6, rn = 64, dot = 6,
                        vector = 16, parallel = true, unroll = true>
    ```
  }];
  let parameters = (ins "int64_t":$m, "int64_t":$n, "int64_t":$k,
                        "int64_t":$rm, "int64_t":$rn, "int64_t":$dot,
                        "int64_t":$vector, "bool":$parallel, "bool":$unroll);
}

def Attn_AttentionScheduleAttr
    : Attn_ScheduleAttrDef<"AttentionSchedule", "attention_schedule",
                           ["verifyRegisters"]> {
  let summary = "The tiles of fused (flash-style) attention";
  let description = [{
    Flash attention with an online softmax (compiler/halide/kernels/
    Attention.cpp). One task per (batch, head, query tile), in parallel when
    `parallel`; the variant is chosen at run time:
    - fewer queries than `few` (decode): tiles of one query row;
    - up to `rows` keys: the whole-row variant, query tiles of `q` rows and
      one softmax pass over all keys;
    - beyond: the blocked variant, query tiles of `qb` rows and key blocks
      of `kv` keys, with an online-softmax update per block.
    Inside a tile: the q.k register tile of `rqk` query rows x `rkv` keys
    (unrolled over keys when `unroll_qk`); probabilities, row sums and P.V
    in sub-blocks of `pv` keys; the P.V register tile of `rq` rows x `rv`
    columns of the value head dim (unrolled over rows when `unroll_pv`; a
    head dim wider than `rv` takes several column blocks, which re-read the
    sub-block's probabilities from L1).
    Rules: `rqk` divides `q` and `qb`, `vector` divides `rqk` and `rv`, and
    both register tiles fit the target's vector registers.

    ```mlir
    #attn.attention_schedule<q = 64, qb = 128, few = 8, kv = 1024, pv = 48,
        rq = 4, rv = 64, rkv = 6, rqk = 64, rows = 2048, vector = 16, parallel = true,
        unroll_qk = true, unroll_pv = true>
    ```
  }];
  let parameters = (ins "int64_t":$q, "int64_t":$qb, "int64_t":$few,
                        "int64_t":$kv, "int64_t":$pv, "int64_t":$rq,
                        "int64_t":$rv, "int64_t":$rkv, "int64_t":$rqk, "int64_t":$rows,
                        "int64_t":$vector, "bool":$parallel,
                        "bool":$unroll_qk, "bool":$unroll_pv);
}

def Attn_RowsScheduleAttr : Attn_ScheduleAttrDef<"RowsSchedule", "rows_schedule"> {
  let summary = "Row-wise ops: softmax, norms, RoPE, element-wise";
  let description = [{
    The op's innermost dim is vectorised by `vector` lanes; its rows run in
    blocks of `rows` (norms compute each block's statistics right before
    normalising it, while the rows are in L1), the outer dims in parallel
    when `parallel`. `compute = inline` folds an element-wise op into its
    consumers instead (no buffer).

    ```mlir
    #attn.rows_schedule<compute = root, rows = 8, vector = 16, parallel = true>
    ```
  }];
  let parameters = (ins EnumParameter<Attn_ComputeKind>:$compute,
                        "int64_t":$rows, "int64_t":$vector, "bool":$parallel);
}

def Attn_GpuScheduleAttr : Attn_ScheduleAttrDef<"GpuSchedule", "gpu_schedule"> {
  let summary = "The GPU mapping of an op's Funcs (CUDA, OpenCL)";
  let description = [{
    Every Func of the op is its own kernel: its two innermost dims are tiled
    `x x y` into GPU blocks and threads (one dim: `x * y` threads), the
    outer dims fused into a third block dim; reductions run serially inside
    a thread. Rule: `x * y` <= 1024, the threads of one block.

    ```mlir
    #attn.gpu_schedule<x = 16, y = 16>
    ```
  }];
  let parameters = (ins "int64_t":$x, "int64_t":$y);
}

def Attn_InlineAttr : AttrDef<Attn_Dialect, "Inline",
    [DeclareAttrInterfaceMethods<Attn_ScheduleAttrInterface>]> {
  let mnemonic = "inline";
  let summary = "Computed inside each consumer: an index map or a mask";
  let description = [{
    Layout ops (split_heads, merge_heads, transpose, split, slice, unsqueeze),
    casts, constants and masks have no loop nest of their own: each consumer
    evaluates them at the indices it reads. No fields.

    ```mlir
    %s = attn.split_heads %x {attn.schedule = #attn.inline, heads = 12 : i64} : ...
    ```
  }];
}

#endif // ATTN_ATTRS_TD
