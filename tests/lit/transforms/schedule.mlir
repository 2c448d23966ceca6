// RUN: attn-opt %s -split-input-file -attn-schedule | FileCheck %s --check-prefix=AVX512
// RUN: attn-opt %s -split-input-file '-attn-schedule=target=avx2' | FileCheck %s --check-prefix=AVX2
// RUN: attn-opt %s -split-input-file '-attn-schedule=target=cuda' | FileCheck %s --check-prefix=CUDA
// RUN: attn-opt %s -split-input-file '-attn-schedule=overrides=attention:q=16;rqk=16;vector=8;parallel=false,q_linear_L7:tile.m=12;unroll=false' | FileCheck %s --check-prefix=OVERRIDE
// RUN: not attn-opt %s -split-input-file '-attn-schedule=overrides=nothing:vector=4' 2>&1 | FileCheck %s --check-prefix=NONAME
// RUN: not attn-opt %s -split-input-file '-attn-schedule=target=sve' 2>&1 | FileCheck %s --check-prefix=BADTARGET
// RUN: attn-opt %s -split-input-file '-attn-schedule=target=neon' | FileCheck %s --check-prefix=NEON
// RUN: attn-opt %s -split-input-file '-attn-schedule=target=generic' | FileCheck %s --check-prefix=GENERIC
// RUN: attn-opt %s -split-input-file '-attn-schedule=target=avx512 l1=32768 l2=1048576' | FileCheck %s --check-prefix=CACHES
// Overrides are parsed against the attribute's fields, then checked by its
// verifier (the rules that span fields) and the target's register file:
// RUN: not attn-opt %s -split-input-file '-attn-schedule=overrides=attention:tile.qq=16' 2>&1 | FileCheck %s --check-prefix=TYPO
// RUN: not attn-opt %s -split-input-file '-attn-schedule=overrides=attention:rows=-1' 2>&1 | FileCheck %s --check-prefix=BADVALUE
// RUN: not attn-opt %s -split-input-file '-attn-schedule=overrides=attention:vector=0' 2>&1 | FileCheck %s --check-prefix=BADVECTOR
// RUN: not attn-opt %s -split-input-file '-attn-schedule=overrides=softmax:vector=4294967297' 2>&1 | FileCheck %s --check-prefix=HUGE
// RUN: not attn-opt %s -split-input-file '-attn-schedule=overrides=attention:parallel=maybe' 2>&1 | FileCheck %s --check-prefix=BADFLAG
// RUN: not attn-opt %s -split-input-file '-attn-schedule=overrides=attention:q=32' 2>&1 | FileCheck %s --check-prefix=DIVIDE
// RUN: not attn-opt %s -split-input-file '-attn-schedule=target=avx2 overrides=linear:rn=32;n=32' 2>&1 | FileCheck %s --check-prefix=REGISTERS
// RUN: not attn-opt %s -split-input-file '-attn-schedule=overrides=softmax:compute=later' 2>&1 | FileCheck %s --check-prefix=BADCOMPUTE

// AVX512-LABEL: func.func @block
// Fewer rows than a register tile (6) take dot products (`dot`).
// AVX512: attn.linear {{.*}}attn.schedule = #attn.gemm_schedule<m = 6, n = 64, k = 128, rm = 6, rn = 64, dot = 6, vector = 16, parallel = true, unroll = true>
// AVX512: attn.split_heads {{.*}}attn.schedule = #attn.inline
// Attention: 4 vectors of queries x 6 keys (24 of 32 registers, the most
// FMAs per load), P.V rows of Dv = 4 lanes (one vector each: 24 rows, cut to
// 16 to divide the 64-row tile); the whole-row variant up to 2048 keys
// (64 x 2048 floats = a quarter of a 2 MiB L2), beyond it query tiles of
// 128 rows and blocks of 1024 keys (128 x 1024 scores and 1024 x (4 + 4)
// keys and values within half of L2, a power of two); probabilities in
// sub-blocks of 48 keys (64 x 48 floats = a quarter of a 48 KiB L1);
// fewer than 128 / 16 = 8 queries (decode) take one-row tiles (`few`).
// AVX512: attn.attention {{.*}}#attn.attention_schedule<q = 64, qb = 128, few = 8, kv = 1024, pv = 48, rq = 16, rv = 16, rkv = 6, rqk = 64, rows = 2048, vector = 16, parallel = true, unroll_qk = true, unroll_pv = true>
// AVX512: attn.softmax {{.*}}#attn.rows_schedule<compute = root, rows = 8, vector = 16, parallel = true>
// An explicit schedule is kept.
// AVX512: attn.relu {{.*}}#attn.rows_schedule<compute = inline, rows = 4, vector = 1, parallel = false>
// AVX2: attn.linear {{.*}}#attn.gemm_schedule<m = 6, n = 16, k = 256, rm = 6, rn = 16, dot = 6, vector = 8,
// AVX2 (16 registers, 12 accumulators): q.k tiles of 3 vectors of queries
// x 4 keys, so query tiles of 24 rows; P.V rows of Dv = 4 lanes, 12 rows.
// AVX2: attn.attention {{.*}}#attn.attention_schedule<q = 24, qb = 48, few = 6, kv = 2048, pv = 85, rq = 12, rv = 8, rkv = 4, rqk = 24, rows = 2730, vector = 8,
// GPU targets: every op gets the threads of its GPU blocks; a CPU
// schedule given by hand is replaced.
// CUDA: attn.linear {{.*}}#attn.gpu_schedule<x = 16, y = 16>
// CUDA: attn.attention {{.*}}#attn.gpu_schedule<x = 16, y = 16>
// CUDA: attn.relu {{.*}}#attn.gpu_schedule<x = 16, y = 16>
// OVERRIDE: attn.linear {{.*}}#attn.gemm_schedule<m = 12, n = 64, k = 128, rm = 6, rn = 64, dot = 6, vector = 16, parallel = true, unroll = false>
// OVERRIDE: attn.attention {{.*}}#attn.attention_schedule<q = 16, qb = 128, few = 8, kv = 1024, pv = 48, rq = 16, rv = 16, rkv = 6, rqk = 16, rows = 2048, vector = 8, parallel = false,
// NONAME: error: schedule override 'nothing:vector=4' names no op
// BADTARGET: error: unknown schedule target 'sve' (expected one of avx512, avx2, neon, generic, cuda, opencl)
// NEON (4 lanes, 32 q registers): register tiles of 4 x 4 lanes and 6 keys
// as on AVX-512, GEMM panels of 4 vectors.
// NEON: attn.linear {{.*}}#attn.gemm_schedule<m = 6, n = 16, k = 256, rm = 6, rn = 16, dot = 6, vector = 4,
// NEON: attn.attention {{.*}}#attn.attention_schedule<q = 16, qb = 32, few = 8, kv = 2048, pv = 256, rq = 16, rv = 4, rkv = 6, rqk = 16, rows = 4096, vector = 4,
// GENERIC (SSE-class: 4 lanes, 16 registers): AVX2's tile shapes at 4 lanes.
// GENERIC: attn.linear {{.*}}#attn.gemm_schedule<m = 6, n = 8, k = 256, rm = 6, rn = 8, dot = 6, vector = 4,
// GENERIC: attn.attention {{.*}}#attn.attention_schedule<q = 12, qb = 24, few = 6, kv = 1024, pv = 170, rq = 12, rv = 4, rkv = 4, rqk = 12, rows = 1365, vector = 4,
// Cache sizes given as options replace the family's: L1 32 KiB halves the
// GEMM's k block (64 x 64 floats within 2/3 of L1) and pv; L2 1 MiB halves
// rows and kv.
// CACHES: attn.linear {{.*}}#attn.gemm_schedule<m = 6, n = 64, k = 64,
// CACHES: attn.attention {{.*}}#attn.attention_schedule<q = 64, qb = 128, few = 8, kv = 512, pv = 32, rq = 16, rv = 16, rkv = 6, rqk = 64, rows = 1024,
// A key that the op's attribute does not have is an error at the op that
// lists the ones it has.
// TYPO: :9:3: error: schedule override for attention_L9: unknown key 'qq' for #attn.attention_schedule (valid keys: q, qb, few, kv, pv, rq, rv, rkv, rqk, rows, vector, parallel, unroll_qk, unroll_pv)
// BADVALUE: :9:{{[0-9]+}}: error: schedule override for attention_L{{[0-9]+}}: #attn.attention_schedule: rows = -1 is out of range (0 to 1073741824)
// BADVECTOR: error: schedule override for attention_L{{[0-9]+}}: #attn.attention_schedule: vector = 0 is out of range (1 to 1073741824)
// HUGE: error: schedule override for softmax_L{{[0-9]+}}: #attn.rows_schedule: vector = 4294967297 is out of range (1 to 1073741824)
// BADFLAG: error: schedule override for attention_L{{[0-9]+}}: 'parallel=maybe': parallel takes true or false
// DIVIDE: error: schedule override for attention_L{{[0-9]+}}: #attn.attention_schedule: rqk = 64 must divide q = 32
// REGISTERS: error: schedule of q_linear_L7 on avx2: #attn.gemm_schedule: the rm x rn register tile needs 24 accumulator registers, and the target has 16 vector registers (2 stay free for the operands)
// BADCOMPUTE: error: schedule override for softmax_L{{[0-9]+}}: 'compute=later': compute takes root or inline
func.func @block(%x: tensor<?x?x8xf32>, %w: tensor<8x8xf32>) -> (tensor<?x2x?x4xf32>, tensor<?x2x?x4xf32>, tensor<?x2x?x4xf32>) {
  %q = attn.linear %x, %w : tensor<?x?x8xf32>, tensor<8x8xf32> -> tensor<?x?x8xf32> loc(#named_q)
  %h = attn.split_heads %q {heads = 2} : tensor<?x?x8xf32> -> tensor<?x2x?x4xf32>
  %a = attn.attention %h, %h, %h : tensor<?x2x?x4xf32>, tensor<?x2x?x4xf32>, tensor<?x2x?x4xf32> -> tensor<?x2x?x4xf32> loc(#line9)
  %p = attn.softmax %a : tensor<?x2x?x4xf32> -> tensor<?x2x?x4xf32>
  %r = attn.relu %p {attn.schedule = #attn.rows_schedule<compute = inline, rows = 4, vector = 1, parallel = false>} : tensor<?x2x?x4xf32>
  return %a, %p, %r : tensor<?x2x?x4xf32>, tensor<?x2x?x4xf32>, tensor<?x2x?x4xf32>
}
#line7 = loc("model.attn":7:3)
#line9 = loc("model.attn":9:3)
#named_q = loc("q"(#line7))
