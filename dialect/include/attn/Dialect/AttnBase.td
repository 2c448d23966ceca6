//===- AttnBase.td - attn dialect, types and op base class -*- tablegen -*-===//
//
// The attn dialect describes transformer attention blocks at the level of the
// attnc language: one op per built-in, on builtin ranked tensors whose dynamic
// dims are the model's symbolic sizes.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_BASE_TD
#define ATTN_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/BuiltinTypes.td"

def Attn_Dialect : Dialect {
  let name = "attn";
  let cppNamespace = "::attn";
  let summary = "Transformer attention blocks: projections, heads, masks, "
                "softmax, attention and norms";
  let description = [{
    The `attn` dialect is the IR of attnc. Values are builtin ranked tensors
    of `f32`, `f16`, `bf16`, `i32` or `i1`; a dynamic dim is one of the
    model's symbolic sizes (their names are kept in the `attn.dims`
    attributes of the model's `func.func` arguments and results). Compute is
    f32: `f16`/`bf16` values are storage and enter compute through
    `attn.cast`. Masks have their own type, `!attn.mask`: a mask has no shape
    of its own and takes the shape of the scores it is applied to.
  }];
  let useDefaultTypePrinterParser = 1;
  let useDefaultAttributePrinterParser = 1;
  let hasConstantMaterializer = 1;
  let hasOperationAttrVerify = 1;
}

class Attn_Type<string name, string typeMnemonic, list<Trait> traits = []>
    : TypeDef<Attn_Dialect, name, traits> {
  let mnemonic = typeMnemonic;
}

def Attn_MaskType : Attn_Type<"Mask", "mask"> {
  let summary = "A mask over attention scores (true = keep)";
  let description = [{
    A predicate over the indices `(b, h, i, j)` of a `[B, H, Sq, Sk]` score
    tensor, built by `attn.causal`, `attn.sliding_window`, `attn.padding`,
    `attn.tensor_mask` and combined by `attn.mask_and`. Its shape is that of
    the scores of the `attn.softmax` or `attn.attention` that uses it.

    ```mlir
    %m = attn.causal
    ```
  }];
}

// Tensor constraints.
def Attn_FloatTensor : RankedTensorOf<[F32, F16, BF16]>;
def Attn_F32Tensor : RankedTensorOf<[F32]>;
// Arithmetic: f32, or i32 (sizes, positions, lengths) for + - * and negation.
def Attn_NumericTensor : RankedTensorOf<[F32, I32]>;
def Attn_IndexTensor : RankedTensorOf<[I32]>;
def Attn_BoolTensor : RankedTensorOf<[I1]>;
def Attn_AnyTensor : RankedTensorOf<[F32, F16, BF16, I32, I1]>;

// Base class of every attn op.
class Attn_Op<string mnemonic, list<Trait> traits = []>
    : Op<Attn_Dialect, mnemonic, traits>;

#endif // ATTN_BASE_TD
