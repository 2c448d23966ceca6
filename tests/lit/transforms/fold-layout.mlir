// RUN: attn-opt %s -split-input-file -attn-fold-layout | FileCheck %s

// Inverse pairs disappear (and what only they used); the remaining layout ops
// become index maps (#attn.inline); computing ops get no schedule here.
// CHECK-LABEL: func.func @pairs
// CHECK-SAME: (%[[X:[^:]*]]: tensor<?x?x8xf32>, %[[H:[^:]*]]: tensor<?x2x?x4xf32>)
// CHECK-NOT: attn.merge_heads
// CHECK: %[[S:.*]] = attn.split_heads %[[X]] {attn.schedule = #attn.inline
// CHECK: %[[R:.*]] = attn.relu %[[S]] : tensor<?x2x?x4xf32>
// CHECK: return %[[X]], %[[H]], %[[R]]
func.func @pairs(%x: tensor<?x?x8xf32>, %h: tensor<?x2x?x4xf32>) -> (tensor<?x?x8xf32>, tensor<?x2x?x4xf32>, tensor<?x2x?x4xf32>) {
  %s = attn.split_heads %x {heads = 2} : tensor<?x?x8xf32> -> tensor<?x2x?x4xf32>
  %m = attn.merge_heads %s : tensor<?x2x?x4xf32> -> tensor<?x?x8xf32>
  %m2 = attn.merge_heads %h : tensor<?x2x?x4xf32> -> tensor<?x?x8xf32>
  %s2 = attn.split_heads %m2 {heads = 2} : tensor<?x?x8xf32> -> tensor<?x2x?x4xf32>
  %t = attn.transpose %s2 : tensor<?x2x?x4xf32> -> tensor<?x2x4x?xf32>
  %t2 = attn.transpose %t : tensor<?x2x4x?xf32> -> tensor<?x2x?x4xf32>
  %r = attn.relu %s : tensor<?x2x?x4xf32>
  return %m, %t2, %r : tensor<?x?x8xf32>, tensor<?x2x?x4xf32>, tensor<?x2x?x4xf32>
}

// -----

// Negative: split_heads with a different head count is not an inverse.
// CHECK-LABEL: func.func @different_heads
// CHECK: attn.merge_heads
// CHECK: attn.split_heads
func.func @different_heads(%h: tensor<?x2x?x4xf32>) -> tensor<?x4x?x2xf32> {
  %m = attn.merge_heads %h : tensor<?x2x?x4xf32> -> tensor<?x?x8xf32>
  %s = attn.split_heads %m {heads = 4} : tensor<?x?x8xf32> -> tensor<?x4x?x2xf32>
  return %s : tensor<?x4x?x2xf32>
}

// -----

// Masks are index maps too.
// CHECK-LABEL: func.func @mask
// CHECK: attn.causal {attn.schedule = #attn.inline
// CHECK: attn.softmax %{{.*}} mask(%{{.*}}) : tensor<1x2x3x3xf32>
func.func @mask(%s: tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32> {
  %c = attn.causal
  %p = attn.softmax %s mask(%c) : tensor<1x2x3x3xf32> -> tensor<1x2x3x3xf32>
  return %p : tensor<1x2x3x3xf32>
}
