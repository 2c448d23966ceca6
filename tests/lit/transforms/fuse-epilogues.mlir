// RUN: attn-opt %s -split-input-file -attn-fuse-epilogues | FileCheck %s

// BERT's FFN: bias, gelu and the residual add all fold into the GEMMs.
// CHECK-LABEL: func.func @ffn
// CHECK-SAME: (%[[H:[^:]*]]: tensor<?x?x8xf32>, %[[W1:[^:]*]]: tensor<16x8xf32>, %[[B1:[^:]*]]: tensor<16xf32>, %[[W2:[^:]*]]: tensor<8x16xf32>, %[[B2:[^:]*]]: tensor<8xf32>)
// CHECK: %[[F:.*]] = attn.fused_linear %[[H]], %[[W1]], %[[B1]] {activation = #attn.activation<gelu>}
// CHECK: %[[R:.*]] = attn.fused_linear %[[F]], %[[W2]], %[[B2]] residual(%[[H]] : tensor<?x?x8xf32>)
// CHECK-NOT: attn.gelu
// CHECK-NOT: attn.add
// CHECK: return %[[R]]
func.func @ffn(%h: tensor<?x?x8xf32>, %w1: tensor<16x8xf32>, %b1: tensor<16xf32>, %w2: tensor<8x16xf32>, %b2: tensor<8xf32>) -> tensor<?x?x8xf32> {
  %0 = attn.linear %h, %w1, %b1 : tensor<?x?x8xf32>, tensor<16x8xf32>, tensor<16xf32> -> tensor<?x?x16xf32>
  %1 = attn.gelu %0 : tensor<?x?x16xf32>
  %2 = attn.linear %1, %w2, %b2 : tensor<?x?x16xf32>, tensor<8x16xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %3 = attn.add %h, %2 : tensor<?x?x8xf32>, tensor<?x?x8xf32> -> tensor<?x?x8xf32>
  return %3 : tensor<?x?x8xf32>
}

// -----

// A separate bias add becomes the GEMM's bias, then the activation folds.
// CHECK-LABEL: func.func @bias_then_silu
// CHECK: %[[F:.*]] = attn.fused_linear %{{.*}}, %{{.*}}, %{{.*}} {activation = #attn.activation<silu>}
// CHECK-NEXT: return %[[F]]
func.func @bias_then_silu(%x: tensor<4x8xf32>, %w: tensor<16x8xf32>, %b: tensor<16xf32>) -> tensor<4x16xf32> {
  %0 = attn.linear %x, %w : tensor<4x8xf32>, tensor<16x8xf32> -> tensor<4x16xf32>
  %1 = attn.add %0, %b : tensor<4x16xf32>, tensor<16xf32> -> tensor<4x16xf32>
  %2 = attn.silu %1 : tensor<4x16xf32>
  return %2 : tensor<4x16xf32>
}

// -----

// Negative: the projection is used twice, so it stays a plain linear.
// CHECK-LABEL: func.func @two_uses
// CHECK: attn.linear
// CHECK: attn.relu
// CHECK-NOT: attn.fused_linear
func.func @two_uses(%x: tensor<4x8xf32>, %w: tensor<16x8xf32>) -> (tensor<4x16xf32>, tensor<4x16xf32>) {
  %0 = attn.linear %x, %w : tensor<4x8xf32>, tensor<16x8xf32> -> tensor<4x16xf32>
  %1 = attn.relu %0 : tensor<4x16xf32>
  return %0, %1 : tensor<4x16xf32>, tensor<4x16xf32>
}

// -----

// Negative: an add that broadcasts is no residual, and an activation after a
// residual cannot move before it.
// CHECK-LABEL: func.func @broadcast_add
// CHECK: attn.fused_linear %{{.*}}, %{{.*}} residual
// CHECK: attn.gelu
func.func @broadcast_add(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>, %r: tensor<1x8xf32>) -> tensor<4x8xf32> {
  %0 = attn.linear %x, %w : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  %1 = attn.add %0, %x : tensor<4x8xf32>, tensor<4x8xf32> -> tensor<4x8xf32>
  %2 = attn.gelu %1 : tensor<4x8xf32>
  %3 = attn.add %2, %r : tensor<4x8xf32>, tensor<1x8xf32> -> tensor<4x8xf32>
  return %3 : tensor<4x8xf32>
}
