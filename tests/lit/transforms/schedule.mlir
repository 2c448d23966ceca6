// RUN: attn-opt %s -split-input-file -attn-schedule | FileCheck %s --check-prefix=AVX512
// RUN: attn-opt %s -split-input-file '-attn-schedule=target=avx2' | FileCheck %s --check-prefix=AVX2
// RUN: attn-opt %s -split-input-file '-attn-schedule=target=cuda' | FileCheck %s --check-prefix=CUDA
// RUN: attn-opt %s -split-input-file '-attn-schedule=overrides=attention:tile.q=16;vector=8;parallel=b+h,q_linear_L7:unroll.rm=4' | FileCheck %s --check-prefix=OVERRIDE
// RUN: not attn-opt %s -split-input-file '-attn-schedule=overrides=nothing:vector=4' 2>&1 | FileCheck %s --check-prefix=NONAME
// RUN: not attn-opt %s -split-input-file '-attn-schedule=overrides=attention:size=4' 2>&1 | FileCheck %s --check-prefix=BADKEY
// RUN: not attn-opt %s -split-input-file '-attn-schedule=target=sve' 2>&1 | FileCheck %s --check-prefix=BADTARGET
// RUN: attn-opt %s -split-input-file '-attn-schedule=target=neon' | FileCheck %s --check-prefix=NEON
// RUN: attn-opt %s -split-input-file '-attn-schedule=target=generic' | FileCheck %s --check-prefix=GENERIC
// RUN: attn-opt %s -split-input-file '-attn-schedule=target=avx512 l1=32768 l2=1048576' | FileCheck %s --check-prefix=CACHES
// RUN: not attn-opt %s -split-input-file '-attn-schedule=overrides=attention:tile.qq=16' 2>&1 | FileCheck %s --check-prefix=TYPO
// A value the attribute rejects is an error at the op, not a crash:
// RUN: not attn-opt %s -split-input-file '-attn-schedule=overrides=attention:tile.rows=0' 2>&1 | FileCheck %s --check-prefix=BADVALUE
// RUN: not attn-opt %s -split-input-file '-attn-schedule=overrides=attention:vector=0' 2>&1 | FileCheck %s --check-prefix=BADVECTOR

// AVX512-LABEL: func.func @block
// Fewer rows than a register tile (6) take dot products (`dot`).
// AVX512: attn.linear {{.*}}attn.schedule = #attn.schedule<compute = "root", tile = {dot = 6 : i64, k = 128 : i64, m = 6 : i64, n = 64 : i64, rm = 6 : i64, rn = 64 : i64}, vector = 16, parallel = ["n"], unroll = {rm = 6 : i64}>
// AVX512: attn.split_heads {{.*}}compute = "inline"
// Attention: 4 vectors of queries x 6 keys (24 of 32 registers, the most
// FMAs per load), P.V rows of Dv = 4 lanes (one vector each: 24 rows, cut to
// 16 to divide the 64-row tile); the whole-row variant up to 2048 keys
// (64 x 2048 floats = a quarter of a 2 MiB L2), beyond it query tiles of
// 128 rows and blocks of 1024 keys (128 x 1024 scores and 1024 x (4 + 4)
// keys and values within half of L2, a power of two); probabilities in
// sub-blocks of 48 keys (64 x 48 floats = a quarter of a 48 KiB L1);
// fewer than 128 / 16 = 8 queries (decode) take one-row tiles (`few`).
// AVX512: attn.attention {{.*}}tile = {few = 8 : i64, kv = 1024 : i64, pv = 48 : i64, q = 64 : i64, qb = 128 : i64, rkv = 6 : i64, rows = 2048 : i64, rq = 16 : i64, rqk = 64 : i64}, vector = 16, parallel = ["b", "h", "q"]
// AVX512: attn.softmax {{.*}}tile = {rows = 8 : i64}, vector = 16, parallel = ["rows"]
// An explicit schedule is kept.
// AVX512: attn.relu {{.*}}compute = "inline", tile = {}, vector = 1
// AVX2: attn.linear {{.*}}tile = {dot = 6 : i64, k = 256 : i64, m = 6 : i64, n = 16 : i64, rm = 6 : i64, rn = 16 : i64}, vector = 8
// AVX2: attn.attention {{.*}}tile = {few = 4 : i64, kv = 2048 : i64, pv = 128 : i64, q = 16 : i64, qb = 32 : i64, rkv = 4 : i64, rows = 4096 : i64, rq = 8 : i64, rqk = 16 : i64}, vector = 8
// CUDA: attn.attention {{.*}}gpu = {blocks = ["b", "h", "q"], shared = ["k", "v"], threads = ["rq", "d"]}
// OVERRIDE: attn.linear {{.*}}unroll = {rm = 4 : i64}
// OVERRIDE: attn.attention {{.*}}tile = {few = 8 : i64, kv = 1024 : i64, pv = 48 : i64, q = 16 : i64, qb = 128 : i64, rkv = 6 : i64, rows = 2048 : i64, rq = 16 : i64, rqk = 64 : i64}, vector = 8, parallel = ["b", "h"]
// NONAME: error: schedule override 'nothing:vector=4' names no op
// BADKEY: error: schedule override for attention_L{{[0-9]+}}: unknown schedule key or non-integer value in 'size=4'
// BADTARGET: error: unknown schedule target 'sve' (expected one of avx512, avx2, neon, generic, cuda, opencl)
// NEON (4 lanes, 32 q registers): register tiles of 4 x 4 lanes and 6 keys
// as on AVX-512, GEMM panels of 4 vectors.
// NEON: attn.linear {{.*}}tile = {dot = 6 : i64, k = 256 : i64, m = 6 : i64, n = 16 : i64, rm = 6 : i64, rn = 16 : i64}, vector = 4
// NEON: attn.attention {{.*}}tile = {few = 8 : i64, kv = 2048 : i64, pv = 256 : i64, q = 16 : i64, qb = 32 : i64, rkv = 6 : i64, rows = 4096 : i64, rq = 16 : i64, rqk = 16 : i64}, vector = 4
// GENERIC (SSE-class: 4 lanes, 16 registers): AVX2's tile shapes at 4 lanes.
// GENERIC: attn.linear {{.*}}tile = {dot = 6 : i64, k = 256 : i64, m = 6 : i64, n = 8 : i64, rm = 6 : i64, rn = 8 : i64}, vector = 4
// GENERIC: attn.attention {{.*}}tile = {few = 4 : i64, kv = 1024 : i64, pv = 256 : i64, q = 8 : i64, qb = 16 : i64, rkv = 4 : i64, rows = 2048 : i64, rq = 8 : i64, rqk = 8 : i64}, vector = 4
// Cache sizes given as options replace the family's: L1 32 KiB halves the
// GEMM's k block (64 x 64 floats within 2/3 of L1) and pv; L2 1 MiB halves
// rows and kv.
// CACHES: attn.linear {{.*}}tile = {dot = 6 : i64, k = 64 : i64
// CACHES: attn.attention {{.*}}tile = {few = 8 : i64, kv = 512 : i64, pv = 32 : i64, q = 64 : i64, qb = 128 : i64, rkv = 6 : i64, rows = 1024 : i64
// A loop name that the op does not have is an error at the op that lists
// the ones it has.
// TYPO: :9:3: error: schedule override for attention_L9: unknown loop 'qq' in 'tile.qq' (this op's loops: few, kv, pv, q, qb, rkv, rows, rq, rqk)
// BADVALUE: :9:{{[0-9]+}}: error: schedule override for attention_L{{[0-9]+}}: schedule size of loop 'rows' must be a positive integer
// BADVECTOR: error: schedule override for attention_L{{[0-9]+}}: schedule vector width must be >= 1, got 0
func.func @block(%x: tensor<?x?x8xf32>, %w: tensor<8x8xf32>) -> (tensor<?x2x?x4xf32>, tensor<?x2x?x4xf32>, tensor<?x2x?x4xf32>) {
  %q = attn.linear %x, %w : tensor<?x?x8xf32>, tensor<8x8xf32> -> tensor<?x?x8xf32> loc(#named_q)
  %h = attn.split_heads %q {heads = 2} : tensor<?x?x8xf32> -> tensor<?x2x?x4xf32>
  %a = attn.attention %h, %h, %h : tensor<?x2x?x4xf32>, tensor<?x2x?x4xf32>, tensor<?x2x?x4xf32> -> tensor<?x2x?x4xf32> loc(#line9)
  %p = attn.softmax %a : tensor<?x2x?x4xf32> -> tensor<?x2x?x4xf32>
  %r = attn.relu %p {attn.schedule = #attn.schedule<compute = "inline", tile = {}, vector = 1, parallel = [], unroll = {}>} : tensor<?x2x?x4xf32>
  return %a, %p, %r : tensor<?x2x?x4xf32>, tensor<?x2x?x4xf32>, tensor<?x2x?x4xf32>
}
#line7 = loc("model.attn":7:3)
#line9 = loc("model.attn":9:3)
#named_q = loc("q"(#line7))
