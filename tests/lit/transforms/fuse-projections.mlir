// RUN: attn-opt %s -split-input-file -attn-fuse-projections | FileCheck %s

// q, k and v projections of one input become one pass over it.
// CHECK-LABEL: func.func @qkv
// CHECK-SAME: (%[[X:[^:]*]]: tensor<?x?x8xf32>, %[[WQ:[^:]*]]: tensor<8x8xf32>, %[[WK:[^:]*]]: tensor<8x8xf32>, %[[WV:[^:]*]]: tensor<8x8xf32>, %[[B:[^:]*]]: tensor<8xf32>)
// CHECK: %[[P:.*]]:3 = attn.multi_linear %[[X]], %[[WQ]], %[[WK]], %[[WV]] biases(%[[B]], %[[B]], %[[B]] : tensor<8xf32>, tensor<8xf32>, tensor<8xf32>)
// CHECK: attn.split_heads %[[P]]#0
// CHECK: attn.split_heads %[[P]]#1
// CHECK: attn.split_heads %[[P]]#2
// CHECK-NOT: attn.linear
func.func @qkv(%x: tensor<?x?x8xf32>, %wq: tensor<8x8xf32>, %wk: tensor<8x8xf32>, %wv: tensor<8x8xf32>, %b: tensor<8xf32>) -> (tensor<?x2x?x4xf32>, tensor<?x2x?x4xf32>, tensor<?x2x?x4xf32>) {
  %q = attn.linear %x, %wq, %b : tensor<?x?x8xf32>, tensor<8x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %qh = attn.split_heads %q {heads = 2} : tensor<?x?x8xf32> -> tensor<?x2x?x4xf32>
  %k = attn.linear %x, %wk, %b : tensor<?x?x8xf32>, tensor<8x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %kh = attn.split_heads %k {heads = 2} : tensor<?x?x8xf32> -> tensor<?x2x?x4xf32>
  %v = attn.linear %x, %wv, %b : tensor<?x?x8xf32>, tensor<8x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %vh = attn.split_heads %v {heads = 2} : tensor<?x?x8xf32> -> tensor<?x2x?x4xf32>
  return %qh, %kh, %vh : tensor<?x2x?x4xf32>, tensor<?x2x?x4xf32>, tensor<?x2x?x4xf32>
}

// -----

// GQA: projections of different widths (16-wide q, 4-wide k and v) fuse
// too; a mix of biased and unbiased projections does not.
// CHECK-LABEL: func.func @gqa
// CHECK: attn.multi_linear %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<4x8xf32>, tensor<16x8xf32>, tensor<4x8xf32>, tensor<4x8xf32> -> tensor<4x16xf32>, tensor<4x4xf32>, tensor<4x4xf32>
// CHECK: attn.linear %{{.*}}, %{{.*}}, %{{.*}} : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4xf32>
func.func @gqa(%x: tensor<4x8xf32>, %wq: tensor<16x8xf32>, %wk: tensor<4x8xf32>, %wv: tensor<4x8xf32>, %b: tensor<4xf32>) -> (tensor<4x16xf32>, tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>) {
  %q = attn.linear %x, %wq : tensor<4x8xf32>, tensor<16x8xf32> -> tensor<4x16xf32>
  %k = attn.linear %x, %wk : tensor<4x8xf32>, tensor<4x8xf32> -> tensor<4x4xf32>
  %v = attn.linear %x, %wv : tensor<4x8xf32>, tensor<4x8xf32> -> tensor<4x4xf32>
  %kb = attn.linear %x, %wk, %b : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4xf32> -> tensor<4x4xf32>
  return %q, %k, %v, %kb : tensor<4x16xf32>, tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>
}

// -----

// Negative: the second weight is computed after the first projection, so
// the fused op could not be placed at the first one.
// CHECK-LABEL: func.func @late_weight
// CHECK-NOT: attn.multi_linear
func.func @late_weight(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %a = attn.linear %x, %w : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  %w2 = attn.relu %w : tensor<8x8xf32>
  %b = attn.linear %x, %w2 : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  return %a, %b : tensor<4x8xf32>, tensor<4x8xf32>
}
