// RUN: attn-opt %s | FileCheck %s
// RUN: attn-opt %s | attn-opt | FileCheck %s
// RUN: attn-opt %s -mlir-print-op-generic | attn-opt | FileCheck %s
// Round trip of every op of the attn dialect.

// CHECK-LABEL: func.func @every_op
func.func @every_op(%x: tensor<?x?x768xf32>, %w: tensor<2304x768xf32>,
                    %b: tensor<2304xf32>, %g: tensor<768xf32>,
                    %len: tensor<?xi32>, %pos: tensor<?xi32>,
                    %keep: tensor<?x1x1x?xi1>, %h: tensor<?x?x768xbf16>)
    -> tensor<?x?x768xf32> {
  // CHECK: %[[C:.*]] = attn.constant 1.250000e-01 : tensor<f32>
  %c = attn.constant 0.125 : tensor<f32>
  // CHECK: attn.cast %{{.*}} : tensor<?x?x768xbf16> -> tensor<?x?x768xf32>
  %hf = attn.cast %h : tensor<?x?x768xbf16> -> tensor<?x?x768xf32>
  // CHECK: attn.layer_norm %{{.*}}, %{{.*}}, %{{.*}} {eps = 1.000000e-05 : f64}
  %ln = attn.layer_norm %x, %g, %g {eps = 1.0e-5} : tensor<?x?x768xf32>, tensor<768xf32>, tensor<768xf32> -> tensor<?x?x768xf32>
  // CHECK: attn.rms_norm
  %rn = attn.rms_norm %ln, %g {eps = 1.0e-6} : tensor<?x?x768xf32>, tensor<768xf32> -> tensor<?x?x768xf32>
  // CHECK: %[[QKV:.*]] = attn.linear %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x?x768xf32>, tensor<2304x768xf32>, tensor<2304xf32> -> tensor<?x?x2304xf32>
  %qkv = attn.linear %rn, %w, %b : tensor<?x?x768xf32>, tensor<2304x768xf32>, tensor<2304xf32> -> tensor<?x?x2304xf32>
  // CHECK: %[[S:.*]]:3 = attn.split %[[QKV]] {parts = 3 : i64}
  %q, %k, %v = attn.split %qkv {parts = 3} : tensor<?x?x2304xf32> -> tensor<?x?x768xf32>, tensor<?x?x768xf32>, tensor<?x?x768xf32>
  // CHECK: attn.split_heads %[[S]]#0 {heads = 12 : i64} : tensor<?x?x768xf32> -> tensor<?x12x?x64xf32>
  %qh = attn.split_heads %q {heads = 12} : tensor<?x?x768xf32> -> tensor<?x12x?x64xf32>
  %kh = attn.split_heads %k {heads = 4} : tensor<?x?x768xf32> -> tensor<?x4x?x192xf32>
  %vh = attn.split_heads %v {heads = 4} : tensor<?x?x768xf32> -> tensor<?x4x?x192xf32>
  %qk = attn.split_heads %k {heads = 12} : tensor<?x?x768xf32> -> tensor<?x12x?x64xf32>
  // CHECK: attn.rope %{{.*}}, %{{.*}} {theta = 1.000000e+04 : f64}
  %qr = attn.rope %qh, %pos {theta = 10000.0} : tensor<?x12x?x64xf32>, tensor<?xi32> -> tensor<?x12x?x64xf32>
  // CHECK: attn.rope %{{.*}}, %{{.*}} {interleaved, theta = 5.000000e+05 : f64}
  %qi = attn.rope %qr, %pos {interleaved, theta = 500000.0} : tensor<?x12x?x64xf32>, tensor<?xi32> -> tensor<?x12x?x64xf32>
  // CHECK: %[[CAUSAL:.*]] = attn.causal
  %causal = attn.causal
  // CHECK: attn.sliding_window 128
  %win = attn.sliding_window 128
  // CHECK: attn.padding %{{.*}} : tensor<?xi32>
  %pad = attn.padding %len : tensor<?xi32>
  // CHECK: attn.tensor_mask %{{.*}} : tensor<?x1x1x?xi1>
  %tm = attn.tensor_mask %keep : tensor<?x1x1x?xi1>
  // CHECK: attn.mask_and %[[CAUSAL]], %{{.*}}
  %m1 = attn.mask_and %causal, %pad
  %m2 = attn.mask_and %m1, %tm
  %m3 = attn.mask_and %m2, %win
  // CHECK: attn.and %{{.*}}, %{{.*}} : tensor<?x1x1x?xi1>, tensor<?x1x1x?xi1> -> tensor<?x1x1x?xi1>
  %kk = attn.and %keep, %keep : tensor<?x1x1x?xi1>, tensor<?x1x1x?xi1> -> tensor<?x1x1x?xi1>
  // CHECK: attn.transpose %{{.*}} : tensor<?x12x?x64xf32> -> tensor<?x12x64x?xf32>
  %kt = attn.transpose %qk : tensor<?x12x?x64xf32> -> tensor<?x12x64x?xf32>
  // CHECK: attn.matmul
  %s = attn.matmul %qi, %kt : tensor<?x12x?x64xf32>, tensor<?x12x64x?xf32> -> tensor<?x12x?x?xf32>
  // CHECK: attn.softmax %{{.*}} mask(%{{.*}}) : tensor<?x12x?x?xf32> -> tensor<?x12x?x?xf32>
  %p = attn.softmax %s mask(%m1) : tensor<?x12x?x?xf32> -> tensor<?x12x?x?xf32>
  // CHECK: attn.softmax %{{.*}} : tensor<?x12x?x?xf32>
  %p2 = attn.softmax %s : tensor<?x12x?x?xf32> -> tensor<?x12x?x?xf32>
  // CHECK: attn.attention %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x4x?x192xf32>, tensor<?x4x?x192xf32>, tensor<?x4x?x192xf32> -> tensor<?x4x?x192xf32>
  %q64 = attn.split_heads %q {heads = 4} : tensor<?x?x768xf32> -> tensor<?x4x?x192xf32>
  %a0 = attn.attention %q64, %kh, %vh : tensor<?x4x?x192xf32>, tensor<?x4x?x192xf32>, tensor<?x4x?x192xf32> -> tensor<?x4x?x192xf32>
  // CHECK: attn.attention %{{.*}}, %{{.*}}, %{{.*}} mask(%{{.*}}) bias(%{{.*}} : tensor<?x12x?x?xf32>) {scale = 1.250000e-01 : f64} : tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32> -> tensor<?x12x?x64xf32>
  %k12 = attn.split_heads %k {heads = 12} : tensor<?x?x768xf32> -> tensor<?x12x?x64xf32>
  %a = attn.attention %qh, %qk, %k12 mask(%m3) bias(%p2 : tensor<?x12x?x?xf32>) {scale = 0.125} : tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32> -> tensor<?x12x?x64xf32>
  // CHECK: attn.merge_heads %{{.*}} : tensor<?x12x?x64xf32> -> tensor<?x?x768xf32>
  %mh = attn.merge_heads %a : tensor<?x12x?x64xf32> -> tensor<?x?x768xf32>
  // CHECK: attn.concat %{{.*}}, %{{.*}} {axis = 1 : i64} : tensor<?x?x768xf32>, tensor<?x?x768xf32> -> tensor<?x?x768xf32>
  %cc = attn.concat %mh, %hf {axis = 1} : tensor<?x?x768xf32>, tensor<?x?x768xf32> -> tensor<?x?x768xf32>
  // CHECK: attn.add
  %sum = attn.add %mh, %g : tensor<?x?x768xf32>, tensor<768xf32> -> tensor<?x?x768xf32>
  // CHECK: attn.sub
  %d = attn.sub %sum, %x : tensor<?x?x768xf32>, tensor<?x?x768xf32> -> tensor<?x?x768xf32>
  // CHECK: attn.mul %{{.*}}, %[[C]] : tensor<?x?x768xf32>, tensor<f32> -> tensor<?x?x768xf32>
  %e = attn.mul %d, %c : tensor<?x?x768xf32>, tensor<f32> -> tensor<?x?x768xf32>
  // CHECK: attn.div
  %f = attn.div %e, %c : tensor<?x?x768xf32>, tensor<f32> -> tensor<?x?x768xf32>
  // CHECK: attn.neg
  %n = attn.neg %f : tensor<?x?x768xf32>
  // CHECK: attn.gelu %{{.*}} : tensor<?x?x768xf32>
  %g1 = attn.gelu %n : tensor<?x?x768xf32>
  // CHECK: attn.gelu_tanh
  %g2 = attn.gelu_tanh %g1 : tensor<?x?x768xf32>
  // CHECK: attn.silu
  %g3 = attn.silu %g2 : tensor<?x?x768xf32>
  // CHECK: attn.relu
  %g4 = attn.relu %g3 : tensor<?x?x768xf32>
  return %g4 : tensor<?x?x768xf32>
}

// GQA (8 query heads over 2 kv heads) with Sq != Sk and Dv != D.
// CHECK-LABEL: func.func @gqa
func.func @gqa(%q: tensor<2x8x5x16xf32>, %k: tensor<2x2x9x16xf32>,
               %v: tensor<2x2x9x32xf32>) -> tensor<2x8x5x32xf32> {
  // CHECK: attn.attention %{{.*}}, %{{.*}}, %{{.*}} mask(%{{.*}}) : tensor<2x8x5x16xf32>, tensor<2x2x9x16xf32>, tensor<2x2x9x32xf32> -> tensor<2x8x5x32xf32>
  %m = attn.causal
  %a = attn.attention %q, %k, %v mask(%m) : tensor<2x8x5x16xf32>, tensor<2x2x9x16xf32>, tensor<2x2x9x32xf32> -> tensor<2x8x5x32xf32>
  return %a : tensor<2x8x5x32xf32>
}

// A model signature with its interface attributes.
// CHECK-LABEL: func.func @model
// CHECK-SAME: {attn.dims = ["B", "S", 64], attn.name = "x"}
// CHECK-SAME: {attn.dims = [64, 64], attn.name = "w", attn.weight = "proj.weight"}
// CHECK-SAME: attributes {attn.syms = ["B", "S"]}
func.func @model(%x: tensor<?x?x64xf32> {attn.name = "x", attn.dims = ["B", "S", 64]},
                 %w: tensor<64x64xf32> {attn.name = "w", attn.weight = "proj.weight", attn.dims = [64, 64]})
    -> (tensor<?x?x64xf32> {attn.name = "result0", attn.dims = ["B", "S", 64]})
    attributes {attn.syms = ["B", "S"]} {
  %y = attn.linear %x, %w : tensor<?x?x64xf32>, tensor<64x64xf32> -> tensor<?x?x64xf32>
  return %y : tensor<?x?x64xf32>
}

// Fused projections and schedules (produced by the fusion/scheduling passes).
// CHECK-LABEL: func.func @fused
// CHECK: attn.fused_linear %{{.*}}, %{{.*}}, %{{.*}} residual(%{{.*}} : tensor<?x?x8xf32>) {activation = #attn.activation<gelu_tanh>, attn.schedule = #attn.gemm_schedule<m = 32, n = 16, k = 64, rm = 8, rn = 16, dot = 0, vector = 16, parallel = false, unroll = true>}
// CHECK: attn.multi_linear %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x?x8xf32>, tensor<8x8xf32>, tensor<8x8xf32> -> tensor<?x?x8xf32>, tensor<?x?x8xf32>
// CHECK: attn.relu %{{.*}}#1 {attn.schedule = #attn.gpu_schedule<x = 32, y = 8>}
// CHECK: attn.tanh %{{.*}} {attn.schedule = #attn.rows_schedule<compute = inline, rows = 8, vector = 1, parallel = true>}
// CHECK: attn.exp %{{.*}} {attn.schedule = #attn.inline}
func.func @fused(%x: tensor<?x?x8xf32>, %w: tensor<8x8xf32>, %b: tensor<8xf32>) -> tensor<?x?x8xf32> {
  %y = attn.fused_linear %x, %w, %b residual(%x : tensor<?x?x8xf32>) {activation = #attn.activation<gelu_tanh>, attn.schedule = #attn.gemm_schedule<m = 32, n = 16, k = 64, rm = 8, rn = 16, dot = 0, vector = 16, parallel = false, unroll = true>} : tensor<?x?x8xf32>, tensor<8x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %p:2 = attn.multi_linear %y, %w, %w : tensor<?x?x8xf32>, tensor<8x8xf32>, tensor<8x8xf32> -> tensor<?x?x8xf32>, tensor<?x?x8xf32>
  %r = attn.relu %p#1 {attn.schedule = #attn.gpu_schedule<x = 32, y = 8>} : tensor<?x?x8xf32>
  %t = attn.tanh %r {attn.schedule = #attn.rows_schedule<compute = inline, rows = 8, vector = 1, parallel = true>} : tensor<?x?x8xf32>
  %e = attn.exp %t {attn.schedule = #attn.inline} : tensor<?x?x8xf32>
  return %e : tensor<?x?x8xf32>
}

// i32 arithmetic (+ - * and negation), an i32 constant, and the cast of an
// i32 to f32 for arithmetic with floats.
// CHECK-LABEL: func.func @integer_arith
// CHECK: attn.constant 1.000000e+00 : tensor<i32>
// CHECK: attn.add %{{.*}}, %{{.*}} : tensor<?xi32>, tensor<i32> -> tensor<?xi32>
// CHECK: attn.mul %{{.*}}, %{{.*}} : tensor<?xi32>, tensor<1xi32> -> tensor<?xi32>
// CHECK: attn.sub
// CHECK: attn.neg %{{.*}} : tensor<?xi32>
// CHECK: attn.cast %{{.*}} : tensor<?xi32> -> tensor<?xf32>
func.func @integer_arith(%pos: tensor<?xi32>, %start: tensor<1xi32>) -> tensor<?xf32> {
  %one = attn.constant 1.0 : tensor<i32>
  %a = attn.add %pos, %one : tensor<?xi32>, tensor<i32> -> tensor<?xi32>
  %m = attn.mul %a, %start : tensor<?xi32>, tensor<1xi32> -> tensor<?xi32>
  %s = attn.sub %m, %pos : tensor<?xi32>, tensor<?xi32> -> tensor<?xi32>
  %n = attn.neg %s : tensor<?xi32>
  %f = attn.cast %n : tensor<?xi32> -> tensor<?xf32>
  return %f : tensor<?xf32>
}

// Comparisons (every predicate, f32 and i32, broadcasting), bool or/not,
// select on f32 and i32, element-wise min/max, and the unary math ops.
// CHECK-LABEL: func.func @compare_select_math
// CHECK: %[[LT:.*]] = attn.cmp <lt> %{{.*}}, %{{.*}} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xi1>
// CHECK: %[[LE:.*]] = attn.cmp <le> %{{.*}}, %{{.*}} : tensor<1x?xi32>, tensor<?x1xi32> -> tensor<?x?xi1>
// CHECK: attn.cmp <gt>
// CHECK: attn.cmp <ge>
// CHECK: attn.cmp <eq> %{{.*}}, %{{.*}} : tensor<?x1xi32>, tensor<?x1xi32> -> tensor<?x1xi1>
// CHECK: attn.cmp <ne>
// CHECK: %[[OR:.*]] = attn.or %[[LT]], %{{.*}} : tensor<?x?x8xi1>, tensor<?x?x1xi1> -> tensor<?x?x8xi1>
// CHECK: %[[NOT:.*]] = attn.not %[[OR]] : tensor<?x?x8xi1>
// CHECK: %[[SEL:.*]] = attn.select %[[NOT]], %{{.*}}, %{{.*}} : tensor<?x?x8xi1>, tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
// CHECK: attn.select %[[LE]], %{{.*}}, %{{.*}} : tensor<?x?xi1>, tensor<?x1xi32>, tensor<1x?xi32> -> tensor<?x?xi32>
// CHECK: %[[MIN:.*]] = attn.min %[[SEL]], %{{.*}} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
// CHECK: %[[MAX:.*]] = attn.max %[[MIN]], %{{.*}} : tensor<?x?x8xf32>, tensor<?x?x8xf32> -> tensor<?x?x8xf32>
// CHECK: attn.max %{{.*}}, %{{.*}} : tensor<?x1xi32>, tensor<1x?xi32> -> tensor<?x?xi32>
// CHECK: %[[EXP:.*]] = attn.exp %[[MAX]] : tensor<?x?x8xf32>
// CHECK: %[[LOG:.*]] = attn.log %[[EXP]] : tensor<?x?x8xf32>
// CHECK: %[[SQRT:.*]] = attn.sqrt %[[LOG]] : tensor<?x?x8xf32>
// CHECK: %[[RSQRT:.*]] = attn.rsqrt %[[SQRT]] : tensor<?x?x8xf32>
// CHECK: %[[TANH:.*]] = attn.tanh %[[RSQRT]] : tensor<?x?x8xf32>
// CHECK: %[[SIG:.*]] = attn.sigmoid %[[TANH]] : tensor<?x?x8xf32>
// CHECK: %[[ABS:.*]] = attn.abs %[[SIG]] : tensor<?x?x8xf32>
// CHECK: attn.abs %{{.*}} : tensor<?x1xi32>
// CHECK: return %[[ABS]]
func.func @compare_select_math(%x: tensor<?x?x8xf32>, %y: tensor<8xf32>,
                               %i: tensor<?x1xi32>, %j: tensor<1x?xi32>,
                               %c: tensor<?x?x1xi1>) -> tensor<?x?x8xf32> {
  %lt = attn.cmp <lt> %x, %y : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xi1>
  %le = attn.cmp <le> %j, %i : tensor<1x?xi32>, tensor<?x1xi32> -> tensor<?x?xi1>
  %gt = attn.cmp <gt> %x, %y : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xi1>
  %ge = attn.cmp <ge> %x, %y : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xi1>
  %eq = attn.cmp <eq> %i, %i : tensor<?x1xi32>, tensor<?x1xi32> -> tensor<?x1xi1>
  %ne = attn.cmp <ne> %x, %y : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xi1>
  %or = attn.or %lt, %c : tensor<?x?x8xi1>, tensor<?x?x1xi1> -> tensor<?x?x8xi1>
  %not = attn.not %or : tensor<?x?x8xi1>
  %sel = attn.select %not, %x, %y : tensor<?x?x8xi1>, tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %isel = attn.select %le, %i, %j : tensor<?x?xi1>, tensor<?x1xi32>, tensor<1x?xi32> -> tensor<?x?xi32>
  %mn = attn.min %sel, %y : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %mx = attn.max %mn, %x : tensor<?x?x8xf32>, tensor<?x?x8xf32> -> tensor<?x?x8xf32>
  %imx = attn.max %i, %j : tensor<?x1xi32>, tensor<1x?xi32> -> tensor<?x?xi32>
  %e = attn.exp %mx : tensor<?x?x8xf32>
  %l = attn.log %e : tensor<?x?x8xf32>
  %s = attn.sqrt %l : tensor<?x?x8xf32>
  %r = attn.rsqrt %s : tensor<?x?x8xf32>
  %t = attn.tanh %r : tensor<?x?x8xf32>
  %sg = attn.sigmoid %t : tensor<?x?x8xf32>
  %a = attn.abs %sg : tensor<?x?x8xf32>
  %ia = attn.abs %i : tensor<?x1xi32>
  return %a : tensor<?x?x8xf32>
}

// Reductions (every kind, keepdim, i32 max), pooling, normalisation,
// gathers, positions and slices.
// CHECK-LABEL: func.func @reduce_gather_slice
// CHECK: attn.reduce <sum> %{{.*}} {dim = 0 : i64} : tensor<?x?x8xf32> -> tensor<?x8xf32>
// CHECK: attn.reduce <mean> %{{.*}} {dim = 1 : i64, keepdim} : tensor<?x?x8xf32> -> tensor<?x1x8xf32>
// CHECK: attn.reduce <max> %{{.*}} {dim = 1 : i64} : tensor<?x5xi32> -> tensor<?xi32>
// CHECK: attn.reduce <min> %{{.*}} {dim = 2 : i64, keepdim} : tensor<?x?x8xf32> -> tensor<?x?x1xf32>
// CHECK: %[[POOL:.*]] = attn.mean_pool %{{.*}}, %{{.*}} : tensor<?x?x8xf32>, tensor<?xi32> -> tensor<?x8xf32>
// CHECK: %[[NORM:.*]] = attn.l2_normalize %[[POOL]] {eps = 9.9999999999999998E-13 : f64} : tensor<?x8xf32>
// CHECK: attn.embedding %{{.*}}, %{{.*}} {ids_name = "input_ids"} : tensor<50x8xf16>, tensor<?x?xi32> -> tensor<?x?x8xf32>
// CHECK: %[[POS:.*]] = attn.arange {sym = "S"} : tensor<?xi32>
// CHECK: attn.arange {size = 3 : i64} : tensor<3xi32>
// CHECK: attn.embedding %{{.*}}, %[[POS]] : tensor<50x8xf16>, tensor<?xi32> -> tensor<?x8xf32>
// CHECK: attn.slice %{{.*}} {dim = 1 : i64, drop, start = -1 : i64} : tensor<?x?x8xf32> -> tensor<?x8xf32>
// CHECK: attn.slice %{{.*}} {dim = 0 : i64, start = 0 : i64, stop_sym = "S"} : tensor<50x8xf16> -> tensor<?x8xf16>
// CHECK: attn.slice %{{.*}} {dim = 2 : i64, start = 2 : i64, stop = 5 : i64} : tensor<?x?x8xf32> -> tensor<?x?x3xf32>
// CHECK: attn.slice %{{.*}} {dim = 2 : i64, start = -2 : i64} : tensor<?x?x8xf32> -> tensor<?x?x2xf32>
// CHECK: return %[[NORM]]
func.func @reduce_gather_slice(%x: tensor<?x?x8xf32>, %i: tensor<?x5xi32>,
                               %len: tensor<?xi32>, %w: tensor<50x8xf16>,
                               %ids: tensor<?x?xi32>) -> tensor<?x8xf32> {
  %s = attn.reduce <sum> %x {dim = 0 : i64} : tensor<?x?x8xf32> -> tensor<?x8xf32>
  %m = attn.reduce <mean> %x {dim = 1 : i64, keepdim} : tensor<?x?x8xf32> -> tensor<?x1x8xf32>
  %mx = attn.reduce <max> %i {dim = 1 : i64} : tensor<?x5xi32> -> tensor<?xi32>
  %mn = attn.reduce <min> %x {dim = 2 : i64, keepdim} : tensor<?x?x8xf32> -> tensor<?x?x1xf32>
  %p = attn.mean_pool %x, %len : tensor<?x?x8xf32>, tensor<?xi32> -> tensor<?x8xf32>
  %n = attn.l2_normalize %p {eps = 1.0e-12} : tensor<?x8xf32>
  %e = attn.embedding %w, %ids {ids_name = "input_ids"} : tensor<50x8xf16>, tensor<?x?xi32> -> tensor<?x?x8xf32>
  %a = attn.arange {sym = "S"} : tensor<?xi32>
  %a3 = attn.arange {size = 3 : i64} : tensor<3xi32>
  %pe = attn.embedding %w, %a : tensor<50x8xf16>, tensor<?xi32> -> tensor<?x8xf32>
  %last = attn.slice %x {dim = 1 : i64, start = -1 : i64, drop} : tensor<?x?x8xf32> -> tensor<?x8xf32>
  %rows = attn.slice %w {dim = 0 : i64, start = 0 : i64, stop_sym = "S"} : tensor<50x8xf16> -> tensor<?x8xf16>
  %cols = attn.slice %x {dim = 2 : i64, start = 2 : i64, stop = 5 : i64} : tensor<?x?x8xf32> -> tensor<?x?x3xf32>
  %tail = attn.slice %x {dim = 2 : i64, start = -2 : i64} : tensor<?x?x8xf32> -> tensor<?x?x2xf32>
  return %n : tensor<?x8xf32>
}

// A model calling another twice, each call binding the callee's param to
// its own weight (prefix "l.0.", "l.1.").
// CHECK-LABEL: func.func @layer
// CHECK-LABEL: func.func @caller
// CHECK: %[[H:.*]] = attn.call @layer(%{{.*}}) params(%{{.*}}) {prefix = "l.0."} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
// CHECK: %[[Y:.*]] = attn.call @layer(%[[H]]) params(%{{.*}}) {prefix = "l.1."} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
// CHECK: return %[[Y]]
func.func @layer(%x: tensor<?x?x8xf32> {attn.name = "x", attn.dims = ["B", "S", 8]},
                 %w: tensor<8x8xf32> {attn.name = "w", attn.weight = "w", attn.dims = [8, 8]})
    -> (tensor<?x?x8xf32> {attn.name = "out0", attn.dims = ["B", "S", 8]})
    attributes {attn.syms = ["B", "S"]} {
  %y = attn.linear %x, %w : tensor<?x?x8xf32>, tensor<8x8xf32> -> tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}
func.func @caller(%x: tensor<?x?x8xf32>, %w0: tensor<8x8xf32>,
                  %w1: tensor<8x8xf32>) -> tensor<?x?x8xf32> {
  %h = attn.call @layer(%x) params(%w0) {prefix = "l.0."} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %y = attn.call @layer(%h) params(%w1) {prefix = "l.1."} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}

// KV caches: cache_write into an inout argument (rows by size name and by a
// static count), causal with starts next to the bare one, unsqueeze at the
// front, the middle and the end (an index map), on f32 and i32.
// CHECK-LABEL: func.func @kv_cache
// CHECK-SAME: %[[KC:[^:]*]]: tensor<?x2x?x16xf32> {attn.inout}
// CHECK-SAME: %[[VC:[^:]*]]: tensor<?x2x?x16xf16> {attn.inout}
// CHECK: %[[K:.*]] = attn.cache_write %[[KC]], %{{.*}}, %[[ST:[^ ]*]] {rows = "S"} : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?xi32> -> tensor<?x2x?x16xf32>
// CHECK: %[[V:.*]] = attn.cache_write %[[VC]], %{{.*}}, %[[ST]] {rows = 1 : i64} : tensor<?x2x?x16xf16>, tensor<?x2x1x16xf32>, tensor<?xi32> -> tensor<?x2x?x16xf32>
// CHECK: %[[M:.*]] = attn.causal from %[[ST]] : tensor<?xi32>
// CHECK: attn.causal{{$}}
// CHECK: attn.unsqueeze %[[ST]] {dim = 1 : i64} : tensor<?xi32> -> tensor<?x1xi32>
// CHECK: attn.unsqueeze %[[ST]] {dim = 0 : i64} : tensor<?xi32> -> tensor<1x?xi32>
// CHECK: attn.unsqueeze %{{.*}} {dim = 2 : i64} : tensor<?x?x16xf32> -> tensor<?x?x1x16xf32>
// CHECK: attn.unsqueeze %{{.*}} {dim = 3 : i64} : tensor<?x?x16xf32> -> tensor<?x?x16x1xf32>
// CHECK: attn.attention %{{.*}}, %[[K]], %[[V]] mask(%[[M]]) : tensor<?x4x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32> -> tensor<?x4x?x16xf32>
func.func @kv_cache(%q: tensor<?x4x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                    %v: tensor<?x2x1x16xf32>, %start: tensor<?xi32>,
                    %kc: tensor<?x2x?x16xf32> {attn.inout},
                    %vc: tensor<?x2x?x16xf16> {attn.inout},
                    %x: tensor<?x?x16xf32>) -> tensor<?x4x?x16xf32> {
  %kw = attn.cache_write %kc, %k, %start {rows = "S"} : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?xi32> -> tensor<?x2x?x16xf32>
  %vw = attn.cache_write %vc, %v, %start {rows = 1 : i64} : tensor<?x2x?x16xf16>, tensor<?x2x1x16xf32>, tensor<?xi32> -> tensor<?x2x?x16xf32>
  %m = attn.causal from %start : tensor<?xi32>
  %bare = attn.causal
  %p = attn.unsqueeze %start {dim = 1 : i64} : tensor<?xi32> -> tensor<?x1xi32>
  %p0 = attn.unsqueeze %start {dim = 0 : i64} : tensor<?xi32> -> tensor<1x?xi32>
  %u2 = attn.unsqueeze %x {dim = 2 : i64} : tensor<?x?x16xf32> -> tensor<?x?x1x16xf32>
  %u3 = attn.unsqueeze %x {dim = 3 : i64} : tensor<?x?x16xf32> -> tensor<?x?x16x1xf32>
  %a = attn.attention %q, %kw, %vw mask(%m) : tensor<?x4x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32> -> tensor<?x4x?x16xf32>
  return %a : tensor<?x4x?x16xf32>
}
