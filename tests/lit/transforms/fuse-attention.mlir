// RUN: attn-opt %s -split-input-file -attn-fuse-attention | FileCheck %s

// CHECK-LABEL: func.func @scaled_masked
// CHECK-SAME: (%[[Q:.*]]: tensor<2x4x5x16xf32>, %[[K:.*]]: tensor<2x4x9x16xf32>, %[[V:.*]]: tensor<2x4x9x8xf32>)
// CHECK: %[[M:.*]] = attn.causal
// CHECK-NEXT: %[[A:.*]] = attn.attention %[[Q]], %[[K]], %[[V]] mask(%[[M]]) {scale = 2.500000e-01 : f64} : tensor<2x4x5x16xf32>, tensor<2x4x9x16xf32>, tensor<2x4x9x8xf32> -> tensor<2x4x5x8xf32>
// CHECK-NEXT: return %[[A]]
// CHECK-NOT: attn.softmax
func.func @scaled_masked(%q: tensor<2x4x5x16xf32>, %k: tensor<2x4x9x16xf32>, %v: tensor<2x4x9x8xf32>) -> tensor<2x4x5x8xf32> {
  %kt = attn.transpose %k : tensor<2x4x9x16xf32> -> tensor<2x4x16x9xf32>
  %s = attn.matmul %q, %kt : tensor<2x4x5x16xf32>, tensor<2x4x16x9xf32> -> tensor<2x4x5x9xf32>
  %c = attn.constant 0.25 : tensor<f32>
  %t = attn.mul %c, %s : tensor<f32>, tensor<2x4x5x9xf32> -> tensor<2x4x5x9xf32>
  %m = attn.causal
  %p = attn.softmax %t mask(%m) : tensor<2x4x5x9xf32> -> tensor<2x4x5x9xf32>
  %o = attn.matmul %p, %v : tensor<2x4x5x9xf32>, tensor<2x4x9x8xf32> -> tensor<2x4x5x8xf32>
  return %o : tensor<2x4x5x8xf32>
}

// -----

// Division by a constant and an additive bias.
// CHECK-LABEL: func.func @div_bias
// CHECK: attn.attention %{{.*}}, %{{.*}}, %{{.*}} bias(%{{.*}} : tensor<1x1x5x9xf32>) {scale = 1.250000e-01 : f64}
func.func @div_bias(%q: tensor<2x4x5x16xf32>, %k: tensor<2x4x9x16xf32>, %v: tensor<2x4x9x16xf32>, %bias: tensor<1x1x5x9xf32>) -> tensor<2x4x5x16xf32> {
  %kt = attn.transpose %k : tensor<2x4x9x16xf32> -> tensor<2x4x16x9xf32>
  %s = attn.matmul %q, %kt : tensor<2x4x5x16xf32>, tensor<2x4x16x9xf32> -> tensor<2x4x5x9xf32>
  %c = attn.constant 8.0 : tensor<f32>
  %t = attn.div %s, %c : tensor<2x4x5x9xf32>, tensor<f32> -> tensor<2x4x5x9xf32>
  %tb = attn.add %t, %bias : tensor<2x4x5x9xf32>, tensor<1x1x5x9xf32> -> tensor<2x4x5x9xf32>
  %p = attn.softmax %tb : tensor<2x4x5x9xf32> -> tensor<2x4x5x9xf32>
  %o = attn.matmul %p, %v : tensor<2x4x5x9xf32>, tensor<2x4x9x16xf32> -> tensor<2x4x5x16xf32>
  return %o : tensor<2x4x5x16xf32>
}

// -----

// No scale at all: scale 1, not the default 1/sqrt(D).
// CHECK-LABEL: func.func @unscaled
// CHECK: attn.attention {{.*}} {scale = 1.000000e+00 : f64}
func.func @unscaled(%q: tensor<1x2x3x4xf32>, %k: tensor<1x2x3x4xf32>) -> tensor<1x2x3x4xf32> {
  %kt = attn.transpose %k : tensor<1x2x3x4xf32> -> tensor<1x2x4x3xf32>
  %s = attn.matmul %q, %kt : tensor<1x2x3x4xf32>, tensor<1x2x4x3xf32> -> tensor<1x2x3x3xf32>
  %p = attn.softmax %s : tensor<1x2x3x3xf32> -> tensor<1x2x3x3xf32>
  %o = attn.matmul %p, %k : tensor<1x2x3x3xf32>, tensor<1x2x3x4xf32> -> tensor<1x2x3x4xf32>
  return %o : tensor<1x2x3x4xf32>
}

// -----

// Negative: the probabilities are used twice, so they must exist anyway.
// CHECK-LABEL: func.func @probabilities_escape
// CHECK: attn.softmax
// CHECK-NOT: attn.attention
func.func @probabilities_escape(%q: tensor<1x2x3x4xf32>, %k: tensor<1x2x3x4xf32>) -> (tensor<1x2x3x4xf32>, tensor<1x2x3x3xf32>) {
  %kt = attn.transpose %k : tensor<1x2x3x4xf32> -> tensor<1x2x4x3xf32>
  %s = attn.matmul %q, %kt : tensor<1x2x3x4xf32>, tensor<1x2x4x3xf32> -> tensor<1x2x3x3xf32>
  %p = attn.softmax %s : tensor<1x2x3x3xf32> -> tensor<1x2x3x3xf32>
  %o = attn.matmul %p, %k : tensor<1x2x3x3xf32>, tensor<1x2x3x4xf32> -> tensor<1x2x3x4xf32>
  return %o, %p : tensor<1x2x3x4xf32>, tensor<1x2x3x3xf32>
}

// -----

// Negative: a scale that is not a constant is not folded into attention.
// CHECK-LABEL: func.func @dynamic_scale
// CHECK-NOT: attn.attention
func.func @dynamic_scale(%q: tensor<1x2x3x4xf32>, %k: tensor<1x2x3x4xf32>, %c: tensor<f32>) -> tensor<1x2x3x4xf32> {
  %kt = attn.transpose %k : tensor<1x2x3x4xf32> -> tensor<1x2x4x3xf32>
  %s = attn.matmul %q, %kt : tensor<1x2x3x4xf32>, tensor<1x2x4x3xf32> -> tensor<1x2x3x3xf32>
  %t = attn.mul %s, %c : tensor<1x2x3x3xf32>, tensor<f32> -> tensor<1x2x3x3xf32>
  %p = attn.softmax %t : tensor<1x2x3x3xf32> -> tensor<1x2x3x3xf32>
  %o = attn.matmul %p, %k : tensor<1x2x3x3xf32>, tensor<1x2x3x4xf32> -> tensor<1x2x3x4xf32>
  return %o : tensor<1x2x3x4xf32>
}

// -----

// Negative: k is not transposed (a plain batched matmul chain).
// CHECK-LABEL: func.func @no_transpose
// CHECK-NOT: attn.attention
func.func @no_transpose(%q: tensor<1x2x3x4xf32>, %kt: tensor<1x2x4x3xf32>, %v: tensor<1x2x3x4xf32>) -> tensor<1x2x3x4xf32> {
  %s = attn.matmul %q, %kt : tensor<1x2x3x4xf32>, tensor<1x2x4x3xf32> -> tensor<1x2x3x3xf32>
  %p = attn.softmax %s : tensor<1x2x3x3xf32> -> tensor<1x2x3x3xf32>
  %o = attn.matmul %p, %v : tensor<1x2x3x3xf32>, tensor<1x2x3x4xf32> -> tensor<1x2x3x4xf32>
  return %o : tensor<1x2x3x4xf32>
}
