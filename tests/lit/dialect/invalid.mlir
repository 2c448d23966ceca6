// RUN: attn-opt %s -split-input-file -verify-diagnostics
// Every verifier and type-inference message of the attn dialect.

// Shape errors found by type inference are followed by the generic
// "failed to infer returned types" that MLIR adds; both are expected.
func.func @broadcast(%a: tensor<2x3xf32>, %b: tensor<2x4xf32>) {
  // expected-error @+2 {{cannot broadcast [2, 3] with [2, 4]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.add %a, %b : tensor<2x3xf32>, tensor<2x4xf32> -> tensor<2x4xf32>
  return
}

// -----

func.func @linear_in(%x: tensor<?x?x770xf32>, %w: tensor<768x768xf32>) {
  // expected-error @+2 {{linear: x is [?, ?, 770] but the weight is [768, 768]; x's last dim must equal the weight's dim 1 (PyTorch layout [out, in])}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.linear %x, %w : tensor<?x?x770xf32>, tensor<768x768xf32> -> tensor<?x?x768xf32>
  return
}

// -----

func.func @linear_rank(%x: tensor<4x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+2 {{linear needs a weight of rank 2 [out, in], got [8]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.linear %x, %w : tensor<4x8xf32>, tensor<8xf32> -> tensor<4x8xf32>
  return
}

// -----

func.func @linear_bias(%x: tensor<4x8xf32>, %w: tensor<16x8xf32>, %b: tensor<8xf32>) {
  // expected-error @+2 {{linear: the bias is [8] but the weight is [16, 8]; expected [16]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.linear %x, %w, %b : tensor<4x8xf32>, tensor<16x8xf32>, tensor<8xf32> -> tensor<4x16xf32>
  return
}

// -----

func.func @linear_x_rank(%x: tensor<f32>, %w: tensor<16x8xf32>) {
  // expected-error @+2 {{linear needs x of rank >= 1, got []}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.linear %x, %w : tensor<f32>, tensor<16x8xf32> -> tensor<16xf32>
  return
}

// -----

func.func @matmul_k(%a: tensor<4x8xf32>, %b: tensor<9x4xf32>) {
  // expected-error @+2 {{matmul: [4, 8] x [9, 4]: the contracted dims differ}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.matmul %a, %b : tensor<4x8xf32>, tensor<9x4xf32> -> tensor<4x4xf32>
  return
}

// -----

func.func @matmul_rank(%a: tensor<8xf32>, %b: tensor<8x4xf32>) {
  // expected-error @+2 {{matmul needs operands of rank >= 2, got [8] and [8, 4]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.matmul %a, %b : tensor<8xf32>, tensor<8x4xf32> -> tensor<4xf32>
  return
}

// -----

func.func @matmul_batch(%a: tensor<2x4x8xf32>, %b: tensor<3x8x4xf32>) {
  // expected-error @+2 {{matmul: the batch dims of [2, 4, 8] and [3, 8, 4] do not broadcast}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.matmul %a, %b : tensor<2x4x8xf32>, tensor<3x8x4xf32> -> tensor<2x4x4xf32>
  return
}

// -----

func.func @transpose_rank(%a: tensor<8xf32>) {
  // expected-error @+2 {{transpose needs rank >= 2, got [8]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.transpose %a : tensor<8xf32> -> tensor<8xf32>
  return
}

// -----

func.func @heads(%x: tensor<?x?x770xf32>) {
  // expected-error @+2 {{heads=12 does not divide 770}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.split_heads %x {heads = 12} : tensor<?x?x770xf32> -> tensor<?x12x?x64xf32>
  return
}

// -----

func.func @heads_rank(%x: tensor<?x768xf32>) {
  // expected-error @+2 {{split_heads needs [B, S, H*D], got [?, 768]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.split_heads %x {heads = 12} : tensor<?x768xf32> -> tensor<?x12x?x64xf32>
  return
}

// -----

func.func @heads_dynamic(%x: tensor<?x?x?xf32>) {
  // expected-error @+2 {{split_heads needs a static model width}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.split_heads %x {heads = 12} : tensor<?x?x?xf32> -> tensor<?x12x?x?xf32>
  return
}

// -----

func.func @heads_zero(%x: tensor<?x?x768xf32>) {
  // expected-error @+1 {{attribute 'heads' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %0 = attn.split_heads %x {heads = 0} : tensor<?x?x768xf32> -> tensor<?x12x?x64xf32>
  return
}

// -----

func.func @merge_rank(%x: tensor<?x?x768xf32>) {
  // expected-error @+2 {{merge_heads needs [B, H, S, D], got [?, ?, 768]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.merge_heads %x : tensor<?x?x768xf32> -> tensor<?x?x768xf32>
  return
}

// -----

func.func @merge_dynamic(%x: tensor<?x?x?x64xf32>) {
  // expected-error @+2 {{merge_heads needs static H and D, got [?, ?, ?, 64]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.merge_heads %x : tensor<?x?x?x64xf32> -> tensor<?x?x?xf32>
  return
}

// -----

func.func @split_parts(%x: tensor<?x?x10xf32>) {
  // expected-error @+2 {{split: 3 parts do not divide 10}}
  // expected-error @+1 {{failed to infer returned types}}
  %0:3 = attn.split %x {parts = 3} : tensor<?x?x10xf32> -> tensor<?x?x3xf32>, tensor<?x?x3xf32>, tensor<?x?x3xf32>
  return
}

// -----

func.func @split_dynamic(%x: tensor<?x?x?xf32>) {
  // expected-error @+2 {{split needs a static last dim, got [?, ?, ?]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0:2 = attn.split %x {parts = 2} : tensor<?x?x?xf32> -> tensor<?x?x?xf32>, tensor<?x?x?xf32>
  return
}

// -----

func.func @concat_rank(%a: tensor<2x3xf32>, %b: tensor<2x3x4xf32>) {
  // expected-error @+2 {{concat needs equal ranks, got [2, 3] and [2, 3, 4]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.concat %a, %b {axis = 1} : tensor<2x3xf32>, tensor<2x3x4xf32> -> tensor<2x6xf32>
  return
}

// -----

func.func @concat_axis(%a: tensor<2x3xf32>, %b: tensor<2x3xf32>) {
  // expected-error @+2 {{concat axis 2 is out of range for [2, 3]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.concat %a, %b {axis = 2} : tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x6xf32>
  return
}

// -----

func.func @concat_dims(%a: tensor<2x3xf32>, %b: tensor<4x3xf32>) {
  // expected-error @+2 {{concat along axis 1: [2, 3] and [4, 3] differ in dim 0}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.concat %a, %b {axis = 1} : tensor<2x3xf32>, tensor<4x3xf32> -> tensor<2x6xf32>
  return
}

// -----

func.func @softmax_mask_rank(%x: tensor<8xf32>) {
  %m = attn.causal
  // expected-error @+1 {{a mask needs scores of rank >= 2, got [8]}}
  %0 = attn.softmax %x mask(%m) : tensor<8xf32> -> tensor<8xf32>
  return
}

// -----

func.func @tensor_mask(%s: tensor<2x4x5x7xf32>, %keep: tensor<2x1x5x6xi1>) {
  %m = attn.tensor_mask %keep : tensor<2x1x5x6xi1>
  // expected-error @+1 {{mask of shape [2, 1, 5, 6] does not broadcast to the scores [2, 4, 5, 7]}}
  %0 = attn.softmax %s mask(%m) : tensor<2x4x5x7xf32> -> tensor<2x4x5x7xf32>
  return
}

// -----

func.func @padding_batch(%s: tensor<2x4x5x7xf32>, %len: tensor<3xi32>) {
  %c = attn.causal
  %p = attn.padding %len : tensor<3xi32>
  %m = attn.mask_and %c, %p
  // expected-error @+1 {{padding lengths have 3 entries but the batch is 2}}
  %0 = attn.softmax %s mask(%m) : tensor<2x4x5x7xf32> -> tensor<2x4x5x7xf32>
  return
}

// -----

func.func @padding_rank(%s: tensor<5x7xf32>, %len: tensor<5xi32>) {
  %p = attn.padding %len : tensor<5xi32>
  // expected-error @+1 {{a padding mask needs scores of rank >= 3 with the batch in dim 0, got [5, 7]}}
  %0 = attn.softmax %s mask(%p) : tensor<5x7xf32> -> tensor<5x7xf32>
  return
}

// -----

func.func @window(%s: tensor<5x7xf32>) {
  // expected-error @+1 {{attribute 'window' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %m = attn.sliding_window 0
  return
}

// -----

func.func @attn_rank(%q: tensor<2x5x16xf32>, %k: tensor<2x2x9x16xf32>) {
  // expected-error @+2 {{attention needs q, k, v of rank 4 [B, H, S, D], got [2, 5, 16], [2, 2, 9, 16], [2, 2, 9, 16]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.attention %q, %k, %k : tensor<2x5x16xf32>, tensor<2x2x9x16xf32>, tensor<2x2x9x16xf32> -> tensor<2x5x16xf32>
  return
}

// -----

func.func @attn_gqa(%q: tensor<1x32x5x16xf32>, %k: tensor<1x6x9x16xf32>) {
  // expected-error @+2 {{Hq=32 is not a multiple of Hkv=6}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.attention %q, %k, %k : tensor<1x32x5x16xf32>, tensor<1x6x9x16xf32>, tensor<1x6x9x16xf32> -> tensor<1x32x5x16xf32>
  return
}

// -----

func.func @attn_kv_len(%q: tensor<1x4x5x16xf32>, %k: tensor<1x4x9x16xf32>, %v: tensor<1x4x8x16xf32>) {
  // expected-error @+2 {{attention: k and v lengths differ: k [1, 4, 9, 16], v [1, 4, 8, 16]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.attention %q, %k, %v : tensor<1x4x5x16xf32>, tensor<1x4x9x16xf32>, tensor<1x4x8x16xf32> -> tensor<1x4x5x16xf32>
  return
}

// -----

func.func @attn_kv_heads(%q: tensor<1x4x5x16xf32>, %k: tensor<1x4x9x16xf32>, %v: tensor<1x2x9x16xf32>) {
  // expected-error @+2 {{attention: k has 4 heads but v has 2}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.attention %q, %k, %v : tensor<1x4x5x16xf32>, tensor<1x4x9x16xf32>, tensor<1x2x9x16xf32> -> tensor<1x4x5x16xf32>
  return
}

// -----

func.func @attn_batch(%q: tensor<2x4x5x16xf32>, %k: tensor<1x4x9x16xf32>) {
  // expected-error @+2 {{attention: batch sizes differ: q [2, 4, 5, 16], k [1, 4, 9, 16], v [1, 4, 9, 16]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.attention %q, %k, %k : tensor<2x4x5x16xf32>, tensor<1x4x9x16xf32>, tensor<1x4x9x16xf32> -> tensor<2x4x5x16xf32>
  return
}

// -----

func.func @attn_heads_dynamic(%q: tensor<1x?x5x16xf32>, %k: tensor<1x4x9x16xf32>) {
  // expected-error @+2 {{attention needs static head counts}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.attention %q, %k, %k : tensor<1x?x5x16xf32>, tensor<1x4x9x16xf32>, tensor<1x4x9x16xf32> -> tensor<1x?x5x16xf32>
  return
}

// -----

func.func @attn_d(%q: tensor<1x4x5x16xf32>, %k: tensor<1x4x9x32xf32>) {
  // expected-error @+2 {{attention: q and k head dims differ: q [1, 4, 5, 16], k [1, 4, 9, 32]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.attention %q, %k, %k : tensor<1x4x5x16xf32>, tensor<1x4x9x32xf32>, tensor<1x4x9x32xf32> -> tensor<1x4x5x32xf32>
  return
}

// -----

func.func @attn_scale(%q: tensor<1x4x5x?xf32>, %k: tensor<1x4x9x?xf32>) {
  // expected-error @+1 {{'attn.attention' op needs a static head dim or an explicit scale}}
  %0 = attn.attention %q, %k, %k : tensor<1x4x5x?xf32>, tensor<1x4x9x?xf32>, tensor<1x4x9x?xf32> -> tensor<1x4x5x?xf32>
  return
}

// -----

func.func @attn_bias(%q: tensor<1x4x5x16xf32>, %k: tensor<1x4x9x16xf32>, %b: tensor<5x8xf32>) {
  // expected-error @+1 {{'attn.attention' op bias of shape [5, 8] does not broadcast to the scores [1, 4, 5, 9]}}
  %0 = attn.attention %q, %k, %k bias(%b : tensor<5x8xf32>) : tensor<1x4x5x16xf32>, tensor<1x4x9x16xf32>, tensor<1x4x9x16xf32> -> tensor<1x4x5x16xf32>
  return
}

// -----

func.func @attn_mask(%q: tensor<1x4x5x16xf32>, %k: tensor<1x4x9x16xf32>, %keep: tensor<5x5xi1>) {
  %m = attn.tensor_mask %keep : tensor<5x5xi1>
  // expected-error @+1 {{mask of shape [5, 5] does not broadcast to the scores [1, 4, 5, 9]}}
  %0 = attn.attention %q, %k, %k mask(%m) : tensor<1x4x5x16xf32>, tensor<1x4x9x16xf32>, tensor<1x4x9x16xf32> -> tensor<1x4x5x16xf32>
  return
}

// -----

func.func @layer_norm(%x: tensor<4x8xf32>, %g: tensor<8xf32>, %b: tensor<7xf32>) {
  // expected-error @+2 {{layer_norm: beta is [7] but x is [4, 8]; it must match x's last dim}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.layer_norm %x, %g, %b {eps = 1.0e-5} : tensor<4x8xf32>, tensor<8xf32>, tensor<7xf32> -> tensor<4x8xf32>
  return
}

// -----

func.func @rms_norm(%x: tensor<4x8xf32>, %g: tensor<9xf32>) {
  // expected-error @+2 {{rms_norm: gamma is [9] but x is [4, 8]; it must match x's last dim}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.rms_norm %x, %g {eps = 1.0e-6} : tensor<4x8xf32>, tensor<9xf32> -> tensor<4x8xf32>
  return
}

// -----

func.func @rope_rank(%x: tensor<4x8xf32>, %p: tensor<4xi32>) {
  // expected-error @+2 {{rope needs x of shape [B, H, S, D], got [4, 8]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.rope %x, %p {theta = 1.0e4} : tensor<4x8xf32>, tensor<4xi32> -> tensor<4x8xf32>
  return
}

// -----

func.func @rope_odd(%x: tensor<1x2x4x7xf32>, %p: tensor<4xi32>) {
  // expected-error @+2 {{rope needs a static, even head dim, got [1, 2, 4, 7]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.rope %x, %p {theta = 1.0e4} : tensor<1x2x4x7xf32>, tensor<4xi32> -> tensor<1x2x4x7xf32>
  return
}

// -----

func.func @rope_pos(%x: tensor<1x2x4x8xf32>, %p: tensor<5xi32>) {
  // expected-error @+2 {{rope: positions [5] must be [S] or [B, S] for x [1, 2, 4, 8]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.rope %x, %p {theta = 1.0e4} : tensor<1x2x4x8xf32>, tensor<5xi32> -> tensor<1x2x4x8xf32>
  return
}

// -----

func.func @result_type(%x: tensor<4x8xf32>) {
  // expected-error @+2 {{'attn.transpose' op inferred type(s) 'tensor<8x4xf32>' are incompatible with return type(s) of operation 'tensor<4x8xf32>'}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.transpose %x : tensor<4x8xf32> -> tensor<4x8xf32>
  return
}

// -----

// expected-error @+1 {{input 'x' uses size 'T' that is not in attn.syms}}
func.func @model_sym(%x: tensor<?xf32> {attn.name = "x", attn.dims = ["T"]}) attributes {attn.syms = ["S"]} {
  return
}

// -----

// expected-error @+1 {{input 'x' has 2 attn.dims for a rank-1 tensor}}
func.func @model_rank(%x: tensor<?xf32> {attn.name = "x", attn.dims = ["S", 4]}) attributes {attn.syms = ["S"]} {
  return
}

// -----

// expected-error @+1 {{input 'x' dim 0 is 5 in attn.dims but the type says 'tensor<4xf32>'}}
func.func @model_static(%x: tensor<4xf32> {attn.name = "x", attn.dims = [5]}) attributes {attn.syms = []} {
  return
}

// -----

// expected-error @+1 {{input 'x' dim 0 is symbolic but static in 'tensor<4xf32>'}}
func.func @model_symbolic(%x: tensor<4xf32> {attn.name = "x", attn.dims = ["S"]}) attributes {attn.syms = ["S"]} {
  return
}

// -----

// expected-error @+1 {{argument 1: inputs must come before params}}
func.func @model_order(%w: tensor<4xf32> {attn.name = "w", attn.weight = "w", attn.dims = [4]}, %x: tensor<4xf32> {attn.name = "x", attn.dims = [4]}) attributes {attn.syms = []} {
  return
}

// -----

// expected-error @+1 {{result needs 'attn.name' and 'attn.dims'}}
func.func @model_result(%x: tensor<4xf32> {attn.name = "x", attn.dims = [4]}) -> tensor<4xf32> attributes {attn.syms = []} {
  return %x : tensor<4xf32>
}

// -----

// expected-error @+1 {{'attn.syms' must hold distinct names}}
func.func @model_syms() attributes {attn.syms = ["S", "S"]} {
  return
}

// -----

// expected-error @+1 {{'attn.syms' is an array of size names on a func.func (a model)}}
func.func @model_syms_type() attributes {attn.syms = 3} {
  return
}

// -----

func.func @fused_residual(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>, %r: tensor<1x8xf32>) {
  // expected-error @+1 {{'attn.fused_linear' op residual 'tensor<1x8xf32>' must have the result type 'tensor<4x8xf32>'}}
  %0 = attn.fused_linear %x, %w residual(%r : tensor<1x8xf32>) : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  return
}

// -----

func.func @multi_biases(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>, %b: tensor<8xf32>) {
  // expected-error @+2 {{multi_linear has 2 weights but 1 biases; give every projection a bias or none}}
  // expected-error @+1 {{failed to infer returned types}}
  %0:2 = attn.multi_linear %x, %w, %w biases(%b : tensor<8xf32>) : tensor<4x8xf32>, tensor<8x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>, tensor<4x8xf32>
  return
}

// -----

func.func @schedule_compute(%x: tensor<4xf32>) {
  // expected-error @+2 {{expected ::attn::ComputeKind to be one of: root, inline}}
  // expected-error @+1 {{failed to parse Attn_RowsScheduleAttr parameter 'compute'}}
  %0 = attn.relu %x {attn.schedule = #attn.rows_schedule<compute = later, rows = 8, vector = 1, parallel = true>} : tensor<4xf32>
  return
}

// -----

func.func @schedule_rows(%x: tensor<4xf32>) {
  // expected-error @+1 {{#attn.rows_schedule: rows = 0 is out of range (1 to 1073741824)}}
  %0 = attn.relu %x {attn.schedule = #attn.rows_schedule<compute = root, rows = 0, vector = 1, parallel = true>} : tensor<4xf32>
  return
}

// -----

func.func @schedule_vector(%x: tensor<4xf32>) {
  // expected-error @+1 {{#attn.rows_schedule: vector = 0 is out of range (1 to 1073741824)}}
  %0 = attn.relu %x {attn.schedule = #attn.rows_schedule<compute = root, rows = 8, vector = 0, parallel = true>} : tensor<4xf32>
  return
}

// -----

// The rules that span fields: register tiles divide the cache tiles.
func.func @schedule_gemm_divide(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>) {
  // expected-error @+1 {{#attn.gemm_schedule: rm = 4 must divide m = 6}}
  %0 = attn.linear %x, %w {attn.schedule = #attn.gemm_schedule<m = 6, n = 16, k = 64, rm = 4, rn = 16, dot = 0, vector = 8, parallel = true, unroll = true>} : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  return
}

// -----

func.func @schedule_gemm_vector(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>) {
  // expected-error @+1 {{#attn.gemm_schedule: vector = 16 must divide rn = 24}}
  %0 = attn.linear %x, %w {attn.schedule = #attn.gemm_schedule<m = 6, n = 48, k = 64, rm = 6, rn = 24, dot = 0, vector = 16, parallel = true, unroll = true>} : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  return
}

// -----

func.func @schedule_attention_rqk(%q: tensor<1x1x4x8xf32>) {
  // expected-error @+1 {{#attn.attention_schedule: rqk = 32 must divide qb = 48}}
  %0 = attn.attention %q, %q, %q {attn.schedule = #attn.attention_schedule<q = 32, qb = 48, few = 0, kv = 64, pv = 16, rq = 4, rv = 8, rkv = 4, rqk = 32, rows = 0, vector = 8, parallel = true, unroll_qk = true, unroll_pv = true>} : tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32> -> tensor<1x1x4x8xf32>
  return
}

// -----

func.func @schedule_attention_rv(%q: tensor<1x1x4x8xf32>) {
  // expected-error @+1 {{#attn.attention_schedule: vector = 8 must divide rv = 12}}
  %0 = attn.attention %q, %q, %q {attn.schedule = #attn.attention_schedule<q = 32, qb = 64, few = 0, kv = 64, pv = 16, rq = 4, rv = 12, rkv = 4, rqk = 32, rows = 0, vector = 8, parallel = true, unroll_qk = true, unroll_pv = true>} : tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32> -> tensor<1x1x4x8xf32>
  return
}

// -----

// Each family's attribute goes on the ops its kernel schedules.
func.func @schedule_wrong_family(%x: tensor<4xf32>) {
  // expected-error @+1 {{#attn.gemm_schedule<m = 6, n = 16, k = 64, rm = 6, rn = 16, dot = 0, vector = 8, parallel = true, unroll = true> does not apply to 'attn.relu'}}
  %0 = attn.relu %x {attn.schedule = #attn.gemm_schedule<m = 6, n = 16, k = 64, rm = 6, rn = 16, dot = 0, vector = 8, parallel = true, unroll = true>} : tensor<4xf32>
  return
}

// -----

func.func @schedule_gpu_threads(%x: tensor<4xf32>) {
  // expected-error @+1 {{#attn.gpu_schedule: x * y = 2048 threads exceed a GPU block's 1024}}
  %0 = attn.relu %x {attn.schedule = #attn.gpu_schedule<x = 64, y = 32>} : tensor<4xf32>
  return
}
  %0 = attn.relu %x {attn.schedule = #attn.schedule<compute = "root", tile = {}, vector = 0, parallel = [], unroll = {}>} : tensor<4xf32>
  return
}

// -----

func.func @schedule_type(%x: tensor<4xf32>) {
  // expected-error @+1 {{'attn.schedule' must be a schedule attribute (#attn.gemm_schedule, #attn.attention_schedule, #attn.rows_schedule, #attn.gpu_schedule or #attn.inline)}}
  %0 = attn.relu %x {attn.schedule = 3} : tensor<4xf32>
  return
}

// -----

// Arithmetic operands share the result's element type (the front end casts).
func.func @mixed_element_types(%a: tensor<4xf32>, %b: tensor<4xi32>) {
  // expected-error @+2 {{operands have different element types, 'f32' and 'i32' (cast one first)}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.add %a, %b : tensor<4xf32>, tensor<4xi32> -> tensor<4xf32>
  return
}

// -----

// Division is true division: f32 only.
func.func @integer_div(%a: tensor<4xi32>, %b: tensor<4xi32>) {
  // expected-error @+1 {{operand #0 must be ranked tensor of 32-bit float values}}
  %0 = attn.div %a, %b : tensor<4xi32>, tensor<4xi32> -> tensor<4xi32>
  return
}

// -----

func.func @fractional_i32_constant() {
  // expected-error @+1 {{an i32 constant must be an integer in the i32 range, got 1.5}}
  %0 = attn.constant 1.5 : tensor<i32>
  return
}

// -----

func.func @reduce_dim(%x: tensor<2x3x4xf32>) {
  // expected-error @+2 {{reduce: dim 3 is out of range for [2, 3, 4]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.reduce <sum> %x {dim = 3 : i64} : tensor<2x3x4xf32> -> tensor<2x3xf32>
  return
}

// -----

// The front end normalises a negative dim; the op takes 0 <= dim < rank.
func.func @reduce_negative_dim(%x: tensor<2x3x4xf32>) {
  // expected-error @+2 {{reduce: dim -1 is out of range for [2, 3, 4]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.reduce <max> %x {dim = -1 : i64} : tensor<2x3x4xf32> -> tensor<2x3xf32>
  return
}

// -----

func.func @reduce_sum_i32(%x: tensor<2x3xi32>) {
  // expected-error @+1 {{'attn.reduce' op sum and mean need f32, got 'i32'}}
  %0 = attn.reduce <sum> %x {dim = 1 : i64} : tensor<2x3xi32> -> tensor<2xi32>
  return
}

// -----

func.func @reduce_mean_i32(%x: tensor<2x3xi32>) {
  // expected-error @+1 {{'attn.reduce' op sum and mean need f32, got 'i32'}}
  %0 = attn.reduce <mean> %x {dim = 0 : i64} : tensor<2x3xi32> -> tensor<3xi32>
  return
}

// -----

// keepdim keeps the dim with size 1.
func.func @reduce_keepdim_type(%x: tensor<2x3xf32>) {
  // expected-error @+2 {{'attn.reduce' op inferred type(s) 'tensor<1x3xf32>' are incompatible with return type(s) of operation 'tensor<3xf32>'}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.reduce <sum> %x {dim = 0 : i64, keepdim} : tensor<2x3xf32> -> tensor<3xf32>
  return
}

// -----

func.func @arange_neither() {
  // expected-error @+1 {{'attn.arange' op needs exactly one of size and sym}}
  %0 = attn.arange : tensor<?xi32>
  return
}

// -----

func.func @arange_both() {
  // expected-error @+1 {{'attn.arange' op needs exactly one of size and sym}}
  %0 = attn.arange {size = 3 : i64, sym = "S"} : tensor<3xi32>
  return
}

// -----

func.func @arange_size() {
  // expected-error @+1 {{'attn.arange' op size 3 does not match the type 'tensor<4xi32>'}}
  %0 = attn.arange {size = 3 : i64} : tensor<4xi32>
  return
}

// -----

func.func @arange_sym_static() {
  // expected-error @+1 {{'attn.arange' op with a symbolic size has a dynamic result, got 'tensor<4xi32>'}}
  %0 = attn.arange {sym = "S"} : tensor<4xi32>
  return
}

// -----

func.func @slice_shape(%x: tensor<3x4xf32>) {
  // expected-error @+1 {{'attn.slice' op result [3, 4] should be [2, 4]}}
  %0 = attn.slice %x {dim = 0 : i64, start = 1 : i64} : tensor<3x4xf32> -> tensor<3x4xf32>
  return
}

// -----

func.func @slice_range(%x: tensor<3x4xf32>) {
  // expected-error @+1 {{'attn.slice' op range 2:5 is out of bounds for [3, 4]}}
  %0 = attn.slice %x {dim = 1 : i64, start = 2 : i64, stop = 5 : i64} : tensor<3x4xf32> -> tensor<3x3xf32>
  return
}

// -----

func.func @slice_dim(%x: tensor<3x4xf32>) {
  // expected-error @+1 {{'attn.slice' op dim 2 is out of range for [3, 4]}}
  %0 = attn.slice %x {dim = 2 : i64, start = 0 : i64} : tensor<3x4xf32> -> tensor<3x4xf32>
  return
}

// -----

func.func @slice_drop_stop(%x: tensor<3x4xf32>) {
  // expected-error @+1 {{'attn.slice' op drop takes one position: no stop}}
  %0 = attn.slice %x {dim = 1 : i64, start = 0 : i64, stop = 1 : i64, drop} : tensor<3x4xf32> -> tensor<3xf32>
  return
}

// -----

func.func @slice_two_stops(%x: tensor<?x4xf32>) {
  // expected-error @+1 {{'attn.slice' op takes a static stop or a symbolic one, not both}}
  %0 = attn.slice %x {dim = 0 : i64, start = 0 : i64, stop = 1 : i64, stop_sym = "S"} : tensor<?x4xf32> -> tensor<?x4xf32>
  return
}

// -----

func.func @slice_element_type(%x: tensor<3x4xf32>) {
  // expected-error @+1 {{'attn.slice' op changes the element type}}
  %0 = attn.slice %x {dim = 1 : i64, start = 0 : i64} : tensor<3x4xf32> -> tensor<3x4xi32>
  return
}

// -----

func.func @call_unknown(%x: tensor<4xf32>) {
  // expected-error @+1 {{'attn.call' op calls unknown model @nope}}
  %0 = attn.call @nope(%x) params() {prefix = ""} : (tensor<4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @callee(%x: tensor<?x8xf32>, %w: tensor<8x8xf32>) -> tensor<?x8xf32> {
  %y = attn.linear %x, %w : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}
func.func @call_operand_count(%x: tensor<3x8xf32>) {
  // expected-error @+1 {{'attn.call' op passes 1 arguments and 0 params, but @callee takes 2 in all}}
  %0 = attn.call @callee(%x) params() {prefix = ""} : (tensor<3x8xf32>) -> tensor<3x8xf32>
  return
}

// -----

func.func @callee(%x: tensor<?x8xf32>, %w: tensor<8x8xf32>) -> tensor<?x8xf32> {
  %y = attn.linear %x, %w : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}
func.func @call_param_shape(%x: tensor<3x8xf32>, %w: tensor<8x9xf32>) {
  // expected-error @+1 {{'attn.call' op operand 1 is 'tensor<8x9xf32>' but @callee expects 'tensor<8x8xf32>'}}
  %0 = attn.call @callee(%x) params(%w) {prefix = "p."} : (tensor<3x8xf32>, tensor<8x9xf32>) -> tensor<3x8xf32>
  return
}

// -----

func.func @callee(%x: tensor<?x8xf32>, %w: tensor<8x8xf32>) -> tensor<?x8xf32> {
  %y = attn.linear %x, %w : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}
func.func @call_argument_dtype(%x: tensor<3x8xi32>, %w: tensor<8x8xf32>) {
  // expected-error @+1 {{'attn.call' op operand 0 is 'tensor<3x8xi32>' but @callee expects 'tensor<?x8xf32>'}}
  %0 = attn.call @callee(%x) params(%w) {prefix = "p."} : (tensor<3x8xi32>, tensor<8x8xf32>) -> tensor<3x8xf32>
  return
}

// -----

func.func @callee(%x: tensor<?x8xf32>, %w: tensor<8x8xf32>) -> tensor<?x8xf32> {
  %y = attn.linear %x, %w : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}
func.func @call_result_type(%x: tensor<3x8xf32>, %w: tensor<8x8xf32>) {
  // expected-error @+1 {{'attn.call' op result 0 is 'tensor<3x9xf32>' but @callee returns 'tensor<?x8xf32>'}}
  %0 = attn.call @callee(%x) params(%w) {prefix = "p."} : (tensor<3x8xf32>, tensor<8x8xf32>) -> tensor<3x9xf32>
  return
}

// -----

func.func @callee(%x: tensor<?x8xf32>, %w: tensor<8x8xf32>) -> tensor<?x8xf32> {
  %y = attn.linear %x, %w : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}
func.func @call_result_count(%x: tensor<3x8xf32>, %w: tensor<8x8xf32>) {
  // expected-error @+1 {{'attn.call' op has 2 results but @callee returns 1}}
  %0:2 = attn.call @callee(%x) params(%w) {prefix = "p."} : (tensor<3x8xf32>, tensor<8x8xf32>) -> (tensor<3x8xf32>, tensor<3x8xf32>)
  return
}

// -----

// Comparison operands share one element type (the front end casts).
func.func @cmp_element_types(%a: tensor<4xf32>, %b: tensor<4xi32>) {
  // expected-error @+2 {{operands have different element types, 'f32' and 'i32' (cast one first)}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.cmp <lt> %a, %b : tensor<4xf32>, tensor<4xi32> -> tensor<4xi1>
  return
}

// -----

func.func @cmp_broadcast(%a: tensor<3xf32>, %b: tensor<4xf32>) {
  // expected-error @+2 {{cannot broadcast [3] with [4]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.cmp <eq> %a, %b : tensor<3xf32>, tensor<4xf32> -> tensor<4xi1>
  return
}

// -----

func.func @select_condition(%c: tensor<2x3xi1>, %a: tensor<2x4xf32>, %b: tensor<2x4xf32>) {
  // expected-error @+2 {{cannot broadcast the condition [2, 3] with [2, 4]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.select %c, %a, %b : tensor<2x3xi1>, tensor<2x4xf32>, tensor<2x4xf32> -> tensor<2x4xf32>
  return
}

// -----

func.func @select_values(%c: tensor<2x4xi1>, %a: tensor<2x4xf32>, %b: tensor<3x4xf32>) {
  // expected-error @+2 {{cannot broadcast [2, 4] with [3, 4]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.select %c, %a, %b : tensor<2x4xi1>, tensor<2x4xf32>, tensor<3x4xf32> -> tensor<2x4xf32>
  return
}

// -----

func.func @select_element_types(%c: tensor<4xi1>, %a: tensor<4xf32>, %b: tensor<4xi32>) {
  // expected-error @+2 {{operands have different element types, 'f32' and 'i32' (cast one first)}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.select %c, %a, %b : tensor<4xi1>, tensor<4xf32>, tensor<4xi32> -> tensor<4xf32>
  return
}

// -----

func.func @min_element_types(%a: tensor<4xf32>, %b: tensor<4xi32>) {
  // expected-error @+2 {{operands have different element types, 'f32' and 'i32' (cast one first)}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.min %a, %b : tensor<4xf32>, tensor<4xi32> -> tensor<4xf32>
  return
}

// -----

func.func @mean_pool_lengths(%x: tensor<2x5x8xf32>, %l: tensor<3xi32>) {
  // expected-error @+2 {{mean_pool: lengths [3] do not match the batch of x [2, 5, 8]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.mean_pool %x, %l : tensor<2x5x8xf32>, tensor<3xi32> -> tensor<2x8xf32>
  return
}

// -----

func.func @mean_pool_rank(%x: tensor<2xf32>, %l: tensor<2xi32>) {
  // expected-error @+2 {{mean_pool needs x of shape [B, S, ...], got [2]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.mean_pool %x, %l : tensor<2xf32>, tensor<2xi32> -> tensor<2xf32>
  return
}

// -----

func.func @embedding_float_ids(%t: tensor<10x4xf32>, %ids: tensor<3xf32>) {
  // expected-error @+1 {{'attn.embedding' op operand #1 must be ranked tensor of 32-bit signless integer values, but got 'tensor<3xf32>'}}
  %0 = attn.embedding %t, %ids : tensor<10x4xf32>, tensor<3xf32> -> tensor<3x4xf32>
  return
}

// -----

func.func @or_of_floats(%a: tensor<4xf32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{'attn.or' op operand #0 must be ranked tensor of 1-bit signless integer values, but got 'tensor<4xf32>'}}
  %0 = attn.or %a, %b : tensor<4xf32>, tensor<4xf32> -> tensor<4xf32>
  return
}

// -----

func.func @cache_write_not_inout(%c: tensor<2x2x8x16xf32>, %k: tensor<2x2x1x16xf32>, %s: tensor<2xi32>) {
  // expected-error @+1 {{'attn.cache_write' op writes a cache that is not an inout argument of the model}}
  %0 = attn.cache_write %c, %k, %s {rows = 1 : i64} : tensor<2x2x8x16xf32>, tensor<2x2x1x16xf32>, tensor<2xi32> -> tensor<2x2x8x16xf32>
  return
}

// -----

func.func @cache_write_computed_cache(%c: tensor<2x2x8x16xf32> {attn.inout}, %k: tensor<2x2x1x16xf32>, %s: tensor<2xi32>) {
  %n = attn.neg %c : tensor<2x2x8x16xf32>
  // expected-error @+1 {{'attn.cache_write' op writes a cache that is not an inout argument of the model}}
  %0 = attn.cache_write %n, %k, %s {rows = 1 : i64} : tensor<2x2x8x16xf32>, tensor<2x2x1x16xf32>, tensor<2xi32> -> tensor<2x2x8x16xf32>
  return
}

// -----

func.func @cache_write_heads(%c: tensor<2x2x8x16xf32> {attn.inout}, %k: tensor<2x4x1x16xf32>, %s: tensor<2xi32>) {
  // expected-error @+1 {{'attn.cache_write' op cache [2, 2, 8, 16] and new rows [2, 4, 1, 16] must be [B, H, T, D] and [B, H, S, D]}}
  %0 = attn.cache_write %c, %k, %s {rows = 1 : i64} : tensor<2x2x8x16xf32>, tensor<2x4x1x16xf32>, tensor<2xi32> -> tensor<2x2x8x16xf32>
  return
}

// -----

func.func @cache_write_rank(%c: tensor<2x8x16xf32> {attn.inout}, %k: tensor<2x1x16xf32>, %s: tensor<2xi32>) {
  // expected-error @+1 {{'attn.cache_write' op cache [2, 8, 16] and new rows [2, 1, 16] must be [B, H, T, D] and [B, H, S, D]}}
  %0 = attn.cache_write %c, %k, %s {rows = 1 : i64} : tensor<2x8x16xf32>, tensor<2x1x16xf32>, tensor<2xi32> -> tensor<2x8x16xf32>
  return
}

// -----

func.func @cache_write_start(%c: tensor<2x2x8x16xf32> {attn.inout}, %k: tensor<2x2x1x16xf32>, %s: tensor<3xi32>) {
  // expected-error @+1 {{'attn.cache_write' op start [3] must be [B] for the cache [2, 2, 8, 16]}}
  %0 = attn.cache_write %c, %k, %s {rows = 1 : i64} : tensor<2x2x8x16xf32>, tensor<2x2x1x16xf32>, tensor<3xi32> -> tensor<2x2x8x16xf32>
  return
}

// -----

func.func @cache_write_start_rank(%c: tensor<2x2x8x16xf32> {attn.inout}, %k: tensor<2x2x1x16xf32>, %s: tensor<2x1xi32>) {
  // expected-error @+1 {{'attn.cache_write' op operand #2 must be 1D tensor of 32-bit signless integer values, but got 'tensor<2x1xi32>'}}
  %0 = attn.cache_write %c, %k, %s {rows = 1 : i64} : tensor<2x2x8x16xf32>, tensor<2x2x1x16xf32>, tensor<2x1xi32> -> tensor<2x2x8x16xf32>
  return
}

// -----

func.func @unsqueeze_dim(%x: tensor<2x3xf32>) {
  // expected-error @+2 {{unsqueeze: dim 3 is out of range for [2, 3]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.unsqueeze %x {dim = 3 : i64} : tensor<2x3xf32> -> tensor<2x3x1xf32>
  return
}

// -----

func.func @unsqueeze_negative_dim(%x: tensor<2x3xf32>) {
  // expected-error @+2 {{unsqueeze: dim -1 is out of range for [2, 3]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = attn.unsqueeze %x {dim = -1 : i64} : tensor<2x3xf32> -> tensor<2x3x1xf32>
  return
}
