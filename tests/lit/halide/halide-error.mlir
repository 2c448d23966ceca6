// A Halide error (here: a name Halide rejects) becomes an MLIR diagnostic at
// the offending argument; attnc exits with an error, it does not abort.
// RUN: not attnc %s --emit=halide-stmt 2>&1 | FileCheck %s

// CHECK: halide-error.mlir:[[@LINE+1]]:{{[0-9]+}}: error: Halide: Func name "x.y_im" is invalid
func.func @bad(%arg0: tensor<4xf32> {attn.dims = [4], attn.name = "x.y"}) -> (tensor<4xf32> {attn.dims = [4], attn.name = "out0"}) {
  %0 = attn.relu %arg0 : tensor<4xf32>
  return %0 : tensor<4xf32>
}
