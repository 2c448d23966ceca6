func.func @attn_rank(%q: tensor<2x5x16xf32>, %k: tensor<2x2x9x16xf32>) {
  %0 = attn.attention %q, %k, %k : tensor<2x5x16xf32>, tensor<2x2x9x16xf32>, tensor<2x2x9x16xf32> -> tensor<2x5x16xf32>
  return
}
