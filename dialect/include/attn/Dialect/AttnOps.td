//===- AttnOps.td - attn dialect operations ----------------*- tablegen -*-===//
//
// One op per built-in of the attnc language. Result types are inferred from
// the operands (InferTypeOpInterface); shape errors are reported by the
// inference with the op's location, so the IR never holds an op whose shapes
// disagree.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_OPS_TD
#define ATTN_OPS_TD

include "attn/Dialect/AttnAttrs.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// Constants and casts
//===----------------------------------------------------------------------===//

def Attn_ConstantOp : Attn_Op<"constant", [Pure, ConstantLike]> {
  let summary = "A scalar f32 or i32 constant";
  let description = [{
    A number literal of the language: a rank-0 tensor that broadcasts
    against anything. It is `f32`, or `i32` when an integer literal meets an
    `i32` operand (`pos + 1`, as in NumPy); the value is held as an f64 either
    way (exact for every i32).

    ```mlir
    %c = attn.constant 1.250000e-01 : tensor<f32>
    %one = attn.constant 1.000000e+00 : tensor<i32>
    ```
  }];
  let arguments = (ins F64Attr:$value);
  let results = (outs 0DTensorOf<[F32, I32]>:$result);
  let hasVerifier = 1;
  let assemblyFormat = "$value attr-dict `:` type($result)";
  let hasFolder = 1;
}

def Attn_CastOp : Attn_Op<"cast", [Pure, SameOperandsAndResultShape]> {
  let summary = "Converts between f32, the f16/bf16 storage types and i32";
  let description = [{
    Converts every element; the shape is unchanged. f16/bf16 inputs and
    params enter compute through a cast to f32, and an output declared f16 or
    bf16 leaves it through a cast from f32 (round to nearest even). An i32
    operand of arithmetic with a float (`x * pos`, `pos / 2`) is cast to f32
    (exact up to 2^24 in magnitude). Casting to the same type folds away.

    ```mlir
    %y = attn.cast %x : tensor<?x64xbf16> -> tensor<?x64xf32>
    %p = attn.cast %pos : tensor<?xi32> -> tensor<?xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32, F16, BF16, I32]>:$input);
  let results = (outs Attn_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Element-wise arithmetic
//===----------------------------------------------------------------------===//

class Attn_BinaryOp<string mnemonic, string op, Type operandType,
                    string elt, list<Trait> traits = []>
    : Attn_Op<mnemonic, !listconcat(traits, [Pure, InferTypeOpAdaptor])> {
  let summary = "Element-wise `" # op # "` with NumPy broadcasting";
  let description = [{
    `result = lhs }] # op # [{ rhs`, element by element. The shapes broadcast
    as in NumPy: dims are aligned from the right, and each pair must be equal
    or one of them must be 1. A dynamic dim is taken to be compatible with any
    other (the front end has checked the symbolic sizes). Both operands have
    the result's element type (the front end inserts the casts).

    ```mlir
    %y = attn.}] # mnemonic # [{ %a, %b : tensor<?x?x768x}] # elt #
      [{>, tensor<768x}] # elt # [{> -> tensor<?x?x768x}] # elt # [{>
    ```
  }];
  let arguments = (ins operandType:$lhs, operandType:$rhs);
  let results = (outs operandType:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)
  }];
}

// + - * on f32 or i32. / is true division, as in NumPy and PyTorch, so on f32
// only: the front end casts i32 operands of / to f32. i32 results must stay
// in range (overflow is not defined).
def Attn_AddOp : Attn_BinaryOp<"add", "+", Attn_NumericTensor, "f32", [Commutative]> {
  let hasFolder = 1;
}
def Attn_SubOp : Attn_BinaryOp<"sub", "-", Attn_NumericTensor, "f32">;
def Attn_MulOp : Attn_BinaryOp<"mul", "*", Attn_NumericTensor, "f32", [Commutative]> {
  let hasFolder = 1;
}
def Attn_DivOp : Attn_BinaryOp<"div", "/", Attn_F32Tensor, "f32"> {
  let hasFolder = 1;
}
def Attn_AndOp : Attn_BinaryOp<"and", "&", Attn_BoolTensor, "i1", [Commutative]>;
def Attn_OrOp : Attn_BinaryOp<"or", "|", Attn_BoolTensor, "i1", [Commutative]>;
// min(a, b) and max(a, b), element-wise (the reductions are attn.reduce).
def Attn_MinOp : Attn_BinaryOp<"min", "min", Attn_NumericTensor, "f32",
                               [Commutative]>;
def Attn_MaxOp : Attn_BinaryOp<"max", "max", Attn_NumericTensor, "f32",
                               [Commutative]>;

def Attn_CmpOp : Attn_Op<"cmp", [Pure, InferTypeOpAdaptor]> {
  let summary = "Element-wise comparison giving a bool tensor";
  let description = [{
    `result = lhs <predicate> rhs` (`lt le gt ge eq ne` for `< <= > >= ==
    !=`), element by element with NumPy broadcasting. Both operands have the
    same element type, f32 or i32 (the front end casts as for arithmetic);
    the result is `i1`.

    ```mlir
    %keep = attn.cmp <le> %j, %i : tensor<1x?xi32>, tensor<?x1xi32> -> tensor<?x?xi1>
    ```
  }];
  let arguments = (ins Attn_CmpPredicateAttr:$predicate,
                       Attn_NumericTensor:$lhs, Attn_NumericTensor:$rhs);
  let results = (outs Attn_BoolTensor:$result);
  let assemblyFormat = [{
    $predicate $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->`
    type($result)
  }];
}

def Attn_SelectOp : Attn_Op<"select", [Pure, InferTypeOpAdaptor]> {
  let summary = "`where(cond, a, b)`: element-wise choice";
  let description = [{
    `result = cond ? a : b`, element by element; the three shapes broadcast
    together as in NumPy. `a` and `b` have the same element type (f32 or
    i32); `cond` is bool.

    ```mlir
    %y = attn.select %c, %a, %b : tensor<?x?xi1>, tensor<?x?xf32>, tensor<f32> -> tensor<?x?xf32>
    ```
  }];
  let arguments = (ins Attn_BoolTensor:$cond, Attn_NumericTensor:$lhs,
                       Attn_NumericTensor:$rhs);
  let results = (outs Attn_NumericTensor:$result);
  let assemblyFormat = [{
    $cond `,` $lhs `,` $rhs attr-dict `:` type($cond) `,` type($lhs) `,`
    type($rhs) `->` type($result)
  }];
}

class Attn_UnaryOp<string mnemonic, string formula,
                   Type operandType = Attn_F32Tensor>
    : Attn_Op<mnemonic, [Pure, SameOperandsAndResultType]> {
  let summary = "Element-wise `" # formula # "`";
  let description = [{
    `result = }] # formula # [{`, element by element.

    ```mlir
    %y = attn.}] # mnemonic # [{ %x : tensor<?x?x3072xf32>
    ```
  }];
  let arguments = (ins operandType:$x);
  let results = (outs operandType:$result);
  let assemblyFormat = "$x attr-dict `:` type($x)";
}

def Attn_NegOp : Attn_UnaryOp<"neg", "-x", Attn_NumericTensor>;
def Attn_GeluOp : Attn_UnaryOp<"gelu", "0.5 x (1 + erf(x / sqrt(2)))">;
def Attn_GeluTanhOp
    : Attn_UnaryOp<"gelu_tanh",
                   "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))">;
def Attn_SiluOp : Attn_UnaryOp<"silu", "x sigmoid(x)">;
def Attn_ReluOp : Attn_UnaryOp<"relu", "max(x, 0)">;
def Attn_ExpOp : Attn_UnaryOp<"exp", "e^x">;
def Attn_LogOp : Attn_UnaryOp<"log", "ln(x)">;
def Attn_SqrtOp : Attn_UnaryOp<"sqrt", "sqrt(x)">;
def Attn_RsqrtOp : Attn_UnaryOp<"rsqrt", "1 / sqrt(x)">;
def Attn_TanhOp : Attn_UnaryOp<"tanh", "tanh(x)">;
def Attn_SigmoidOp : Attn_UnaryOp<"sigmoid", "1 / (1 + e^-x)">;
def Attn_AbsOp : Attn_UnaryOp<"abs", "|x|", Attn_NumericTensor>;
def Attn_NotOp : Attn_UnaryOp<"not", "!x", Attn_BoolTensor>;

//===----------------------------------------------------------------------===//
// KV caches
//===----------------------------------------------------------------------===//

def Attn_CacheWriteOp : Attn_Op<"cache_write", [InferTypeOpAdaptor]> {
  let summary = "Writes new keys or values into a cache, in place";
  let description = [{
    `cache: [B, H, T, D]` is an `inout` argument of the model (a buffer the
    caller owns, `T` its capacity), `new: [B, H, S, D]`, `start: i32[B]`.
    Rows `start[b] .. start[b] + S - 1` of `cache[b]` take `new[b]`, in
    place, when the call returns; the result is the cache as it is after
    the write (in f32), read by attention without copying the cache. A
    `start[b] < 0` or `start[b] + S > T` fails the call with a message that
    names the cache. `rows` names `new`'s dim 2 (a size of the model, or
    its static value) for the write-back.

    ```mlir
    %kc = attn.cache_write %k_cache, %k, %start {rows = "S"} : tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32>, tensor<?xi32> -> tensor<?x12x?x64xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32, F16, BF16]>:$cache,
                       Attn_F32Tensor:$new_rows, 1DTensorOf<[I32]>:$start,
                       AnyAttrOf<[StrAttr, I64Attr]>:$rows);
  let results = (outs Attn_F32Tensor:$result);
  let assemblyFormat = [{
    $cache `,` $new_rows `,` $start attr-dict `:` type($cache) `,`
    type($new_rows) `,` type($start) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Model calls
//===----------------------------------------------------------------------===//

def Attn_CallOp : Attn_Op<"call", [Pure, AttrSizedOperandSegments]> {
  let summary = "Calls another model: its params bound under a prefix";
  let description = [{
    `results = callee(args)` where the callee's params are bound to
    `params`: the caller's params whose weight names are the callee's
    under the call's `prefix` (`"encoder.layer.3."`). The callee's
    symbolic sizes take the sizes of the arguments. A model called N times
    is compiled once; each call runs it on its own arguments and weights.

    ```mlir
    %h1 = attn.call @layer(%h0, %lengths) params(%wq, %bq) {prefix = "encoder.layer.0."} : (tensor<?x?x384xf32>, tensor<?xi32>, tensor<384x384xf32>, tensor<384xf32>) -> tensor<?x?x384xf32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$callee, Variadic<Attn_AnyTensor>:$args,
                       Variadic<Attn_AnyTensor>:$params, StrAttr:$prefix);
  let results = (outs Variadic<Attn_AnyTensor>:$results);
  let assemblyFormat = [{
    $callee `(` $args `)` `params` `(` $params `)` attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Reductions, gathers, index values and slices
//===----------------------------------------------------------------------===//

def Attn_ReduceOp : Attn_Op<"reduce", [Pure, InferTypeOpAdaptor]> {
  let summary = "Sum, mean, max or min over one dim";
  let description = [{
    `result[..., ...] = reduce_{k} x[..., k, ...]` over dim `dim`, which is
    dropped, or kept with size 1 with `keepdim` (as `torch.sum(x, dim,
    keepdim)`). `mean` divides the sum by the dim's size. f32 sums
    accumulate in f32; i32 only for `max` and `min`.

    ```mlir
    %m = attn.reduce <mean> %x {dim = 1 : i64} : tensor<?x?x384xf32> -> tensor<?x384xf32>
    ```
  }];
  let arguments = (ins Attn_ReduceKindAttr:$kind, Attn_NumericTensor:$x,
                       I64Attr:$dim, UnitAttr:$keepdim);
  let results = (outs Attn_NumericTensor:$result);
  let assemblyFormat = "$kind $x attr-dict `:` type($x) `->` type($result)";
  let hasVerifier = 1;
}

def Attn_MeanPoolOp : Attn_Op<"mean_pool", [Pure, InferTypeOpAdaptor]> {
  let summary = "Mean over the first `lengths[b]` positions of each row";
  let description = [{
    `x: [B, S, ...]`, `lengths: i32[B]`; `result[b, ...] = sum_{s <
    lengths[b]} x[b, s, ...] / lengths[b]`, and 0 where `lengths[b] <= 0`
    (sentence-transformers' masked mean pooling, whose divisor is clamped
    to 1e-9). Lengths past `S` count `S` positions.

    ```mlir
    %e = attn.mean_pool %h, %lengths : tensor<?x?x384xf32>, tensor<?xi32> -> tensor<?x384xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tensor:$x, 1DTensorOf<[I32]>:$lengths);
  let results = (outs Attn_F32Tensor:$result);
  let assemblyFormat = [{
    $x `,` $lengths attr-dict `:` type($x) `,` type($lengths) `->`
    type($result)
  }];
}

def Attn_L2NormalizeOp : Attn_Op<"l2_normalize",
                                 [Pure, SameOperandsAndResultType]> {
  let summary = "Divides by the L2 norm over the last dim";
  let description = [{
    `x / max(sqrt(sum_k x[..., k]^2), eps)`, as
    `torch.nn.functional.normalize(x, p=2, dim=-1, eps)`.

    ```mlir
    %n = attn.l2_normalize %e {eps = 9.9999999999999998E-13 : f64} : tensor<?x384xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tensor:$x, F64Attr:$eps);
  let results = (outs Attn_F32Tensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x)";
}

def Attn_EmbeddingOp : Attn_Op<"embedding", [Pure, InferTypeOpAdaptor]> {
  let summary = "Rows of a table gathered by integer ids";
  let description = [{
    `table: [V, D]`, `ids: i32[...]`; `result[..., d] = table[ids[...], d]`,
    of shape `ids.shape + [D]` (`torch.nn.functional.embedding`). The
    generated code checks every id against `[0, V)` and fails the call with
    an error naming the ids tensor otherwise; it never reads out of bounds.
    An f16/bf16 table gives f32 rows.

    ```mlir
    %x = attn.embedding %wte, %ids : tensor<50257x768xf32>, tensor<?x?xi32> -> tensor<?x?x768xf32>
    ```
  }];
  let arguments = (ins 2DTensorOf<[F32, F16, BF16]>:$table,
                       Attn_IndexTensor:$ids,
                       DefaultValuedStrAttr<StrAttr, "ids">:$ids_name);
  let results = (outs Attn_F32Tensor:$result);
  let assemblyFormat = [{
    $table `,` $ids attr-dict `:` type($table) `,` type($ids) `->`
    type($result)
  }];
}

def Attn_ArangeOp : Attn_Op<"arange", [Pure]> {
  let summary = "The positions `0, 1, ..., n-1` as i32";
  let description = [{
    `result[i] = i` for `i < n`, where `n` is a static size (`size`) or a
    symbolic size of the model (`sym`, bound at run time). Used for
    positions: `embedding(wpe, arange(S))`.

    ```mlir
    %p = attn.arange {sym = "S"} : tensor<?xi32>
    ```
  }];
  let arguments = (ins OptionalAttr<I64Attr>:$size,
                       OptionalAttr<StrAttr>:$sym);
  let results = (outs 1DTensorOf<[I32]>:$result);
  let assemblyFormat = "attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Attn_UnsqueezeOp : Attn_Op<"unsqueeze", [Pure, InferTypeOpAdaptor]> {
  let summary = "Inserts a dim of size 1";
  let description = [{
    `result` is `x` with a dim of size 1 inserted before dim `dim` (`dim` =
    rank appends it), as `torch.unsqueeze`: an index map, never a copy.

    ```mlir
    %s = attn.unsqueeze %start {dim = 1 : i64} : tensor<?xi32> -> tensor<?x1xi32>
    ```
  }];
  let arguments = (ins Attn_AnyTensor:$x, I64Attr:$dim);
  let results = (outs Attn_AnyTensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x) `->` type($result)";
}

def Attn_SliceOp : Attn_Op<"slice", [Pure]> {
  let summary = "A range of one dim, or one position of it (dim dropped)";
  let description = [{
    `result = x[..., start:stop, ...]` on dim `dim`. `start` is an index,
    negative counting from the end; `stop` is a static index, the symbolic
    size `stop_sym`, or the end when neither is given. With `drop`, the
    slice is the one position `start` and the dim is removed
    (`x[..., -1, :]`). Bounds past the dim fail at run time with a message.

    ```mlir
    %last = attn.slice %logits {dim = 1 : i64, start = -1 : i64, drop} : tensor<?x?x50257xf32> -> tensor<?x50257xf32>
    ```
  }];
  let arguments = (ins Attn_AnyTensor:$x, I64Attr:$dim, I64Attr:$start,
                       OptionalAttr<I64Attr>:$stop,
                       OptionalAttr<StrAttr>:$stop_sym, UnitAttr:$drop);
  let results = (outs Attn_AnyTensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Projections and layout
//===----------------------------------------------------------------------===//

def Attn_LinearOp : Attn_Op<"linear", [Pure, InferTypeOpAdaptor]> {
  let summary = "Affine projection `x @ w^T + b` in PyTorch's weight layout";
  let description = [{
    `x: [..., in]`, `w: [out, in]`, optional `b: [out]`; the result is
    `[..., out]`. The weight layout is `torch.nn.Linear`'s, so checkpoints
    load unchanged.

    ```mlir
    %y = attn.linear %x, %w, %b : tensor<?x?x768xf32>, tensor<3072x768xf32>, tensor<3072xf32> -> tensor<?x?x3072xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tensor:$x, Attn_F32Tensor:$weight,
                       Optional<Attn_F32Tensor>:$bias);
  let results = (outs Attn_F32Tensor:$result);
  let assemblyFormat = [{
    $x `,` $weight (`,` $bias^)? attr-dict `:` type($x) `,` type($weight)
    (`,` type($bias)^)? `->` type($result)
  }];
}

def Attn_MatmulOp : Attn_Op<"matmul", [Pure, InferTypeOpAdaptor]> {
  let summary = "Batched matrix product with broadcast batch dims";
  let description = [{
    `[..., M, K] x [..., K, N] -> [..., M, N]`; the leading (batch) dims
    broadcast as in NumPy.

    ```mlir
    %s = attn.matmul %q, %kt : tensor<?x12x?x64xf32>, tensor<?x12x64x?xf32> -> tensor<?x12x?x?xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tensor:$lhs, Attn_F32Tensor:$rhs);
  let results = (outs Attn_F32Tensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)
  }];
}

def Attn_TransposeOp : Attn_Op<"transpose", [Pure, InferTypeOpAdaptor]> {
  let summary = "Swaps the last two dims";
  let description = [{
    `[..., M, N] -> [..., N, M]`. Two transposes in a row fold away.

    ```mlir
    %kt = attn.transpose %k : tensor<?x12x?x64xf32> -> tensor<?x12x64x?xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tensor:$x);
  let results = (outs Attn_F32Tensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x) `->` type($result)";
  let hasFolder = 1;
}

def Attn_SplitHeadsOp : Attn_Op<"split_heads", [Pure, InferTypeOpAdaptor]> {
  let summary = "Splits the model width into heads: `[B, S, H*D] -> [B, H, S, D]`";
  let description = [{
    Head `h` takes columns `h*D .. h*D+D-1`. `heads` must divide the
    (static) model width.

    ```mlir
    %q = attn.split_heads %x {heads = 12 : i64} : tensor<?x?x768xf32> -> tensor<?x12x?x64xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tensor:$x, ConfinedAttr<I64Attr, [IntPositive]>:$heads);
  let results = (outs Attn_F32Tensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x) `->` type($result)";
}

def Attn_MergeHeadsOp : Attn_Op<"merge_heads", [Pure, InferTypeOpAdaptor]> {
  let summary = "Concatenates heads: `[B, H, S, D] -> [B, S, H*D]`";
  let description = [{
    The inverse of `attn.split_heads`; `H` and `D` must be static.
    `merge_heads(split_heads(x))` folds to `x`.

    ```mlir
    %y = attn.merge_heads %a : tensor<?x12x?x64xf32> -> tensor<?x?x768xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tensor:$x);
  let results = (outs Attn_F32Tensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x) `->` type($result)";
  let hasFolder = 1;
}

def Attn_SplitOp : Attn_Op<"split", [Pure, InferTypeOpAdaptor]> {
  let summary = "Splits the last dim into `n` equal parts";
  let description = [{
    `[..., n*E] -> n x [..., E]`, part `i` holding columns `i*E .. i*E+E-1`.
    Used for fused projections such as GPT-2's `c_attn`.

    ```mlir
    %q, %k, %v = attn.split %qkv {parts = 3 : i64} : tensor<?x?x2304xf32> -> tensor<?x?x768xf32>, tensor<?x?x768xf32>, tensor<?x?x768xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tensor:$x, ConfinedAttr<I64Attr, [IntPositive]>:$parts);
  let results = (outs Variadic<Attn_F32Tensor>:$results);
  let assemblyFormat = "$x attr-dict `:` type($x) `->` type($results)";
}

def Attn_ConcatOp : Attn_Op<"concat", [Pure, InferTypeOpAdaptor]> {
  let summary = "Concatenates two tensors along one axis";
  let description = [{
    Both operands have the same rank and agree on every dim but `axis`
    (non-negative here; the front end resolves `axis=-1`).

    ```mlir
    %kv = attn.concat %past, %k {axis = 2 : i64} : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32> -> tensor<1x8x?x64xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tensor:$lhs, Attn_F32Tensor:$rhs,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$axis);
  let results = (outs Attn_F32Tensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)
  }];
}

//===----------------------------------------------------------------------===//
// Masks
//===----------------------------------------------------------------------===//

def Attn_CausalOp : Attn_Op<"causal", [Pure]> {
  let summary = "Causal mask: bottom-right aligned, or from cache positions";
  let description = [{
    Without `start`: query `i` sees key `j` iff `j <= i + (Sk - Sq)`, as in
    FlashAttention >= 2.1. With `start: i32[B]` (decoding with a KV cache
    whose row `b` already holds `start[b]` tokens): query `i` of batch row
    `b` is at position `start[b] + i` and sees key `j` iff
    `j <= start[b] + i`, so keys past `start[b] + Sq` are never read.

    ```mlir
    %m = attn.causal
    %c = attn.causal from %start : tensor<?xi32>
    ```
  }];
  let arguments = (ins Optional<1DTensorOf<[I32]>>:$start);
  let results = (outs Attn_MaskType:$result);
  let assemblyFormat = "(`from` $start^ `:` type($start))? attr-dict";
}

def Attn_SlidingWindowOp : Attn_Op<"sliding_window", [Pure]> {
  let summary = "Causal mask that keeps the `window` most recent keys";
  let description = [{
    Query `i` sees key `j` iff `i + (Sk-Sq) - window < j <= i + (Sk-Sq)`:
    causal, and the key itself is one of the `window` kept.

    ```mlir
    %m = attn.sliding_window 256
    ```
  }];
  let arguments = (ins ConfinedAttr<I64Attr, [IntPositive]>:$window);
  let results = (outs Attn_MaskType:$result);
  let assemblyFormat = "$window attr-dict";
}

def Attn_PaddingOp : Attn_Op<"padding", [Pure]> {
  let summary = "Keeps keys before each batch row's length";
  let description = [{
    `lengths: i32[B]`; batch row `b` keeps keys `j < lengths[b]`. Query rows
    past the length are computed like any other row.

    ```mlir
    %m = attn.padding %lengths : tensor<?xi32>
    ```
  }];
  let arguments = (ins 1DTensorOf<[I32]>:$lengths);
  let results = (outs Attn_MaskType:$result);
  let assemblyFormat = "$lengths attr-dict `:` type($lengths)";
}

def Attn_TensorMaskOp : Attn_Op<"tensor_mask", [Pure]> {
  let summary = "A boolean tensor used as a mask (true = keep)";
  let description = [{
    The tensor broadcasts NumPy-style to the `[B, H, Sq, Sk]` scores; the
    user (softmax or attention) checks that it does.

    ```mlir
    %m = attn.tensor_mask %keep : tensor<?x1x1x?xi1>
    ```
  }];
  let arguments = (ins Attn_BoolTensor:$keep);
  let results = (outs Attn_MaskType:$result);
  let assemblyFormat = "$keep attr-dict `:` type($keep)";
}

def Attn_MaskAndOp : Attn_Op<"mask_and", [Pure, Commutative]> {
  let summary = "Conjunction of two masks";
  let description = [{
    Keeps a score iff both masks keep it. `m & m` folds to `m`.

    ```mlir
    %m = attn.mask_and %causal, %pad
    ```
  }];
  let arguments = (ins Attn_MaskType:$lhs, Attn_MaskType:$rhs);
  let results = (outs Attn_MaskType:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict";
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Softmax and attention
//===----------------------------------------------------------------------===//

def Attn_SoftmaxOp : Attn_Op<"softmax", [Pure, InferTypeOpAdaptor]> {
  let summary = "Softmax over the last dim, with an optional mask";
  let description = [{
    Masked entries get probability 0; a row with every entry masked is all
    0 (never NaN). With a mask, the last two dims are the mask's `(i, j)`,
    dim 0 is the batch that `attn.padding` indexes, and a tensor mask must
    broadcast to the operand's shape.

    ```mlir
    %p = attn.softmax %s mask(%m) : tensor<?x12x?x?xf32> -> tensor<?x12x?x?xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tensor:$x, Optional<Attn_MaskType>:$mask);
  let results = (outs Attn_F32Tensor:$result);
  let assemblyFormat = [{
    $x (`mask` `(` $mask^ `)`)? attr-dict `:` type($x) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Attn_AttentionOp : Attn_Op<"attention",
    [Pure, AttrSizedOperandSegments, InferTypeOpAdaptor]> {
  let summary = "Scaled dot-product attention with masks, bias and GQA";
  let description = [{
    `softmax(q k^T * scale + bias, mask) v` with `q: [B, Hq, Sq, D]`,
    `k: [B, Hkv, Sk, D]`, `v: [B, Hkv, Sk, Dv]` and result
    `[B, Hq, Sq, Dv]`. `Hq % Hkv == 0`: query head `h` reads kv head
    `h / (Hq / Hkv)` (MQA/GQA). `scale` defaults to `1/sqrt(D)`. The optional
    `bias` and a tensor mask broadcast to `[B, Hq, Sq, Sk]`. A query row
    whose keys are all masked gives 0.

    ```mlir
    %a = attn.attention %q, %k, %v mask(%m) {scale = 1.250000e-01 : f64} : tensor<?x32x?x64xf32>, tensor<?x8x?x64xf32>, tensor<?x8x?x64xf32> -> tensor<?x32x?x64xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tensor:$query, Attn_F32Tensor:$key,
                       Attn_F32Tensor:$value, Optional<Attn_MaskType>:$mask,
                       Optional<Attn_F32Tensor>:$bias,
                       OptionalAttr<F64Attr>:$scale);
  let results = (outs Attn_F32Tensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value (`mask` `(` $mask^ `)`)?
    (`bias` `(` $bias^ `:` type($bias) `)`)? attr-dict `:` type($query) `,`
    type($key) `,` type($value) `->` type($result)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The scale applied to q k^T: the attribute, or 1/sqrt(D).
    double getScaleOrDefault();
  }];
}

//===----------------------------------------------------------------------===//
// Fused projections (produced by the fusion passes)
//===----------------------------------------------------------------------===//

def Attn_FusedLinearOp : Attn_Op<"fused_linear",
    [Pure, AttrSizedOperandSegments, InferTypeOpAdaptor]> {
  let summary = "A projection with its epilogue: `act(x @ w^T + b) + residual`";
  let description = [{
    Produced by `attn-fuse-epilogues` from an `attn.linear` and the bias add,
    activation and residual add that consume it, so that the GEMM applies
    them to each output tile while it is still in registers. `residual` has
    the result's shape.

    ```mlir
    %y = attn.fused_linear %x, %w, %b residual(%r : tensor<?x?x768xf32>) {activation = #attn.activation<gelu>} : tensor<?x?x768xf32>, tensor<768x768xf32>, tensor<768xf32> -> tensor<?x?x768xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tensor:$x, Attn_F32Tensor:$weight,
                       Optional<Attn_F32Tensor>:$bias,
                       Optional<Attn_F32Tensor>:$residual,
                       DefaultValuedAttr<Attn_ActivationAttr,
                                         "::attn::Activation::none">:$activation);
  let results = (outs Attn_F32Tensor:$result);
  let assemblyFormat = [{
    $x `,` $weight (`,` $bias^)? (`residual` `(` $residual^ `:` type($residual) `)`)?
    attr-dict `:` type($x) `,` type($weight) (`,` type($bias)^)? `->` type($result)
  }];
  let hasVerifier = 1;
}

def Attn_MultiLinearOp : Attn_Op<"multi_linear",
    [Pure, AttrSizedOperandSegments, InferTypeOpAdaptor]> {
  let summary = "Several projections of one input in one pass over it";
  let description = [{
    `result_i = x @ weights_i^T (+ biases_i)`. Produced by
    `attn-fuse-projections` from `attn.linear`s of the same `x` (q, k and v
    of multi-head attention; the output widths may differ, as with GQA): the
    backend computes them as one GEMM over the concatenated outputs, so every
    tile of `x` is loaded once for all of them. Either every projection has a
    bias or none does.

    ```mlir
    %q, %k, %v = attn.multi_linear %x, %wq, %wk, %wv biases(%bq, %bk, %bv : tensor<768xf32>, tensor<768xf32>, tensor<768xf32>) : tensor<?x?x768xf32>, tensor<768x768xf32>, tensor<768x768xf32>, tensor<768x768xf32> -> tensor<?x?x768xf32>, tensor<?x?x768xf32>, tensor<?x?x768xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tensor:$x, Variadic<Attn_F32Tensor>:$weights,
                       Variadic<Attn_F32Tensor>:$biases);
  let results = (outs Variadic<Attn_F32Tensor>:$results);
  let assemblyFormat = [{
    $x `,` $weights (`biases` `(` $biases^ `:` type($biases) `)`)? attr-dict
    `:` type($x) `,` type($weights) `->` type($results)
  }];
}

//===----------------------------------------------------------------------===//
// Norms and rotary embeddings
//===----------------------------------------------------------------------===//

def Attn_LayerNormOp : Attn_Op<"layer_norm", [Pure, InferTypeOpAdaptor]> {
  let summary = "Layer normalisation over the last dim";
  let description = [{
    `(x - mean) / sqrt(var + eps) * gamma + beta` with the biased variance,
    as `torch.nn.LayerNorm`; `gamma, beta: [E]` where `E` is x's last dim.

    ```mlir
    %h = attn.layer_norm %x, %g, %b {eps = 9.9999999999999998E-13 : f64} : tensor<?x?x768xf32>, tensor<768xf32>, tensor<768xf32> -> tensor<?x?x768xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tensor:$x, 1DTensorOf<[F32]>:$gamma,
                       1DTensorOf<[F32]>:$beta, F64Attr:$eps);
  let results = (outs Attn_F32Tensor:$result);
  let assemblyFormat = [{
    $x `,` $gamma `,` $beta attr-dict `:` type($x) `,` type($gamma) `,`
    type($beta) `->` type($result)
  }];
}

def Attn_RmsNormOp : Attn_Op<"rms_norm", [Pure, InferTypeOpAdaptor]> {
  let summary = "RMS normalisation over the last dim";
  let description = [{
    `x * rsqrt(mean(x^2) + eps) * gamma`, as in Llama; `gamma: [E]`.

    ```mlir
    %h = attn.rms_norm %x, %g {eps = 9.9999999999999995E-7 : f64} : tensor<?x?x256xf32>, tensor<256xf32> -> tensor<?x?x256xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tensor:$x, 1DTensorOf<[F32]>:$gamma,
                       F64Attr:$eps);
  let results = (outs Attn_F32Tensor:$result);
  let assemblyFormat = [{
    $x `,` $gamma attr-dict `:` type($x) `,` type($gamma) `->` type($result)
  }];
}

def Attn_RopeOp : Attn_Op<"rope", [Pure, InferTypeOpAdaptor]> {
  let summary = "Rotary position embedding on `[B, H, S, D]`";
  let description = [{
    Rotates pairs of dims by `pos * theta^(-2i/D)`, `i < D/2`. By default
    dim `i` pairs with `i + D/2` ("rotate half", Hugging Face Llama); with
    `interleaved`, dim `2i` pairs with `2i+1`. `pos: i32[S]` or `i32[B, S]`.

    ```mlir
    %q2 = attn.rope %q, %pos {theta = 1.000000e+04 : f64} : tensor<?x8x?x32xf32>, tensor<?xi32> -> tensor<?x8x?x32xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tensor:$x, Attn_IndexTensor:$positions,
                       F64Attr:$theta, UnitAttr:$interleaved);
  let results = (outs Attn_F32Tensor:$result);
  let assemblyFormat = [{
    $x `,` $positions attr-dict `:` type($x) `,` type($positions) `->`
    type($result)
  }];
}

#endif // ATTN_OPS_TD
