//===- baselines.h - Competitors the attnc libraries are measured against -===//
//
// All tensors are f32, row-major, with explicit strides so that a layer can
// run attention on head views of a [S, H*D] projection without copies.
//
//  - BlasAttention: the strong unfused baseline of issue 4. Per (batch, head):
//    cblas_sgemm for S = Q K^T with the scale folded into alpha, a row softmax
//    from fast_kernels.c (-Ofast, libmvec expf), cblas_sgemm for O = P V.
//    Heads run in parallel with OpenMP; OpenBLAS runs single-threaded inside.
//    Causal: query rows go in blocks of kCausalBlock; a block only computes
//    (and multiplies by V) the key columns its last row can see, so the upper
//    triangle is skipped except for the diagonal blocks; the softmax zeroes
//    the masked entries. GQA: query head h reads kv head h / (Hq / Hkv).
//    Padding (`key_len`): sgemm's N (and PV's K) is cut to the valid keys.
//  - NaiveAttention: plain loops, one score row at a time (the "naive
//    reference" competitor; the correctness reference is the double
//    interpreter of tests/reference).
//  - DnnlAttention: oneDNN 2.6 matmul (scale as output scale, causal mask as
//    a binary-add post-op), softmax, matmul primitives. GQA is expressed
//    without copies as a batch of kv heads with M = (Hq/Hkv) * Sq.
//  - Gemm competitors (OpenBLAS / oneDNN): y = x w^T + b.
//  - BlasLayer: the BERT (post-norm) and GPT-2 (pre-norm, causal) layers,
//    unfused, from sgemm + bias pre-fill + BlasAttention + fast_kernels.
//
// Every competitor allocates its buffers in the constructor and reports them
// as `workspaceBytes()` (scores, intermediates); run() allocates nothing.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_BENCH_BASELINES_H
#define ATTN_BENCH_BASELINES_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace attn::bench {

/// 64-byte aligned float buffer.
struct Buffer {
  float *data = nullptr;
  size_t count = 0;
  Buffer() = default;
  explicit Buffer(size_t n);
  ~Buffer();
  Buffer(Buffer &&o) noexcept : data(o.data), count(o.count) {
    o.data = nullptr;
    o.count = 0;
  }
  Buffer &operator=(Buffer &&o) noexcept;
  Buffer(const Buffer &) = delete;
  Buffer &operator=(const Buffer &) = delete;
  size_t bytes() const { return count * sizeof(float); }
};

/// A [B, H, S, D] view: element (b, h, s, d) is at
/// data[b*sb + h*sh + s*ss + d].
struct HeadView {
  float *data;
  long sb, sh, ss;
};

struct AttnShape {
  int B = 1, Hq = 12, Hkv = 12, Sq = 0, Sk = 0, D = 64;
  bool causal = false;
  float scale = 0; // 0: 1/sqrt(D)
  float effectiveScale() const;
  /// Contiguous [B, H, S, D] views.
  HeadView qView(float *p) const;
  HeadView kvView(float *p) const;
};

/// Counts multiply-adds as 2 flops: 4*B*Hq*Sq*Sk*D, halved when causal (the
/// convention of the report, whatever work a competitor actually does).
double attentionFlops(const AttnShape &s);

class BlasAttention {
public:
  static constexpr int kCausalBlock = 128;
  BlasAttention(const AttnShape &shape, int threads);
  /// key_len: per batch, keys >= key_len[b] are masked (nullptr: none).
  void run(const HeadView &q, const HeadView &k, const HeadView &v,
           const HeadView &o, const int32_t *key_len = nullptr);
  size_t workspaceBytes() const { return scores.bytes(); }

private:
  AttnShape shape;
  int threads;
  Buffer scores; // threads x Sq x Sk
};

class NaiveAttention {
public:
  explicit NaiveAttention(const AttnShape &shape);
  void run(const float *q, const float *k, const float *v, float *o);
  size_t workspaceBytes() const { return row.bytes(); }

private:
  AttnShape shape;
  Buffer row;
};

class DnnlAttention {
public:
  DnnlAttention(const AttnShape &shape, int threads);
  ~DnnlAttention();
  void run(const float *q, const float *k, const float *v, float *o);
  size_t workspaceBytes() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl;
};

/// y[M, N] = x[M, K] w[N, K]^T + b[N].
struct GemmShape {
  int M, N, K;
};
class BlasGemm {
public:
  BlasGemm(const GemmShape &s, int threads) : s(s), threads(threads) {}
  void run(const float *x, const float *w, const float *b, float *y);
  size_t workspaceBytes() const { return 0; }

private:
  GemmShape s;
  int threads;
};
class DnnlGemm {
public:
  DnnlGemm(const GemmShape &s, int threads);
  ~DnnlGemm();
  void run(const float *x, const float *w, const float *b, float *y);
  size_t workspaceBytes() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl;
};

/// Parameters of a layer by model param name (pointers stay owned by the
/// caller).
struct LayerParams {
  std::vector<std::pair<std::string, const float *>> items;
  const float *get(const std::string &name) const;
};

class BlasLayer {
public:
  enum Kind { Bert, Gpt2 };
  /// Hidden 768, 12 heads, FFN 3072, B = 1.
  BlasLayer(Kind kind, int S, int threads);
  /// x: [S, 768]; lengths: BERT's padding lengths (B = 1); y: [S, 768].
  void run(const float *x, const int32_t *lengths, const LayerParams &p,
           float *y);
  size_t workspaceBytes() const;

private:
  Kind kind;
  int S, threads;
  BlasAttention attention;
  Buffer qkv, a, h, t, f;
};

/// The OpenBLAS thread count for the next calls (wraps
/// openblas_set_num_threads) and the configuration string.
void setBlasThreads(int n);
std::string blasConfig();

} // namespace attn::bench

#endif // ATTN_BENCH_BASELINES_H
