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

def Attn_ScheduleAttr : AttrDef<Attn_Dialect, "Schedule"> {
  let mnemonic = "schedule";
  let summary = "How one op's loops are tiled, vectorised and parallelised";
  let description = [{
    Attached by `attn-schedule` to every op that computes (as the discardable
    attribute `attn.schedule`) and applied exactly by the Halide backend. Loops
    are named per op family (see the `attn-schedule` pass description):

    - `compute`: `root` (its own loop nest and buffer) or `inline` (an
      index map or expression folded into each consumer: layout ops,
      masks). Computing inside a consumer's tile is what the fusion passes
      and the per-family kernels do (epilogues, attention's blocks).
    - `tile`: loop name -> tile size; names starting with `r` are register
      tiles inside the cache tiles.
    - `vector`: the vector width in elements of the innermost loop.
    - `parallel`: loop names run across threads (outermost first).
    - `unroll`: loop name -> unroll factor.
    - `gpu` (optional): `blocks`, `threads` (loop names) and `shared`
      (producers staged in shared memory) for GPU targets.

    ```mlir
    %a = attn.attention %q, %k, %v {attn.schedule = #attn.schedule<compute = "root",
           tile = {q = 64 : i64, kv = 256 : i64}, vector = 16,
           parallel = ["b", "h", "q"], unroll = {}>} : ...
    ```
  }];
  let parameters = (ins
    StringRefParameter<"root or inline">:$compute,
    "::mlir::DictionaryAttr":$tile,
    "int64_t":$vector,
    "::mlir::ArrayAttr":$parallel,
    "::mlir::DictionaryAttr":$unroll,
    OptionalParameter<"::mlir::DictionaryAttr">:$gpu);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// The tile size of `loop`, or `dflt` when the schedule names none.
    int64_t getTileSize(::llvm::StringRef loop, int64_t dflt) const;
    /// The unroll factor of `loop` (1 when none).
    int64_t getUnrollFactor(::llvm::StringRef loop) const;
    /// True if `loop` runs in parallel.
    bool isParallel(::llvm::StringRef loop) const;
  }];
}

#endif // ATTN_ATTRS_TD
