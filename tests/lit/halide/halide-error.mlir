// A Halide error (here: a result name Halide rejects) becomes an MLIR
// diagnostic at the model; attnc exits with an error, it does not abort.
// (Argument names are made valid Halide names: weight names hold dots.)
// RUN: not attnc %s --emit=halide-stmt --target=x86-64-linux-avx2 2>&1 | FileCheck %s

// CHECK: halide-error.mlir:[[@LINE+3]]:{{[0-9]+}}: error: Halide: Func name "x.y" is invalid
func.func @bad(%arg0: tensor<4xf32> {attn.dims = [4], attn.name = "x.y"}) -> (tensor<4xf32> {attn.dims = [4], attn.name = "x.y"}) {
  %0 = attn.relu %arg0 : tensor<4xf32>
  return %0 : tensor<4xf32>
}
