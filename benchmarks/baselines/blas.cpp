//===- blas.cpp - OpenBLAS baselines and the naive loops --------*- C++ -*-===//
//
// See baselines.h. OpenBLAS must run with OPENBLAS_CORETYPE=SkylakeX (the
// harness re-execs itself with it): Debian's build misdetects this CPU as
// Prescott and runs at a fifth of the speed.
//
//===----------------------------------------------------------------------===//
#include "baselines.h"
#include "fast_kernels.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

extern "C" {
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);
char *openblas_get_config(void);
char *openblas_get_corename(void);
}

namespace attn::bench {

Buffer::Buffer(size_t n) : count(n) {
  size_t bytes = std::max<size_t>(64, (n * sizeof(float) + 63) / 64 * 64);
  data = static_cast<float *>(std::aligned_alloc(64, bytes));
  if (!data)
    throw std::bad_alloc();
  std::memset(data, 0, bytes); // touch: no first-touch faults in timed runs
}
Buffer::~Buffer() { std::free(data); }
Buffer &Buffer::operator=(Buffer &&o) noexcept {
  if (this != &o) {
    std::free(data);
    data = o.data;
    count = o.count;
    o.data = nullptr;
    o.count = 0;
  }
  return *this;
}

float AttnShape::effectiveScale() const {
  return scale != 0 ? scale : 1.0f / std::sqrt(static_cast<float>(D));
}
HeadView AttnShape::qView(float *p) const {
  return {p, (long)Hq * Sq * D, (long)Sq * D, D};
}
HeadView AttnShape::kvView(float *p) const {
  return {p, (long)Hkv * Sk * D, (long)Sk * D, D};
}

double attentionFlops(const AttnShape &s) {
  double f = 4.0 * s.B * s.Hq * double(s.Sq) * s.Sk * s.D;
  return s.causal ? f / 2 : f;
}

void setBlasThreads(int n) {
  if (openblas_get_num_threads() != n)
    openblas_set_num_threads(n);
}
std::string blasConfig() {
  return std::string(openblas_get_config()) + " core=" + openblas_get_corename();
}

//===-- BlasAttention -----------------------------------------------------===//

BlasAttention::BlasAttention(const AttnShape &s, int threads)
    : shape(s), threads(threads),
      scores(size_t(threads) * size_t(s.Sq) * size_t(s.Sk)) {
  if (s.Hq % s.Hkv)
    throw std::invalid_argument("Hq % Hkv != 0");
}

static void zeroRows(float *o, long ld, int rows, int d) {
  for (int r = 0; r < rows; ++r)
    std::memset(o + r * ld, 0, sizeof(float) * d);
}

void BlasAttention::run(const HeadView &q, const HeadView &k, const HeadView &v,
                        const HeadView &o, const int32_t *key_len) {
  const AttnShape &s = shape;
  const float scale = s.effectiveScale();
  const int group = s.Hq / s.Hkv;
  const long offset = long(s.Sk) - s.Sq; // causal is bottom-right aligned
  const int D = s.D;
  setBlasThreads(1);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int bh = 0; bh < s.B * s.Hq; ++bh) {
    const int b = bh / s.Hq, h = bh % s.Hq, hk = h / group;
    float *S = scores.data + size_t(omp_get_thread_num()) * s.Sq * s.Sk;
    const float *Q = q.data + b * q.sb + h * q.sh;
    const float *K = k.data + b * k.sb + hk * k.sh;
    const float *V = v.data + b * v.sb + hk * v.sh;
    float *O = o.data + b * o.sb + h * o.sh;
    const int kl = key_len ? std::clamp<int>(key_len[b], 0, s.Sk) : s.Sk;
    if (!s.causal) {
      if (kl == 0) {
        zeroRows(O, o.ss, s.Sq, D);
        continue;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.Sq, kl, D, scale,
                  Q, q.ss, K, k.ss, 0.0f, S, kl);
      bench_softmax_rows(S, kl, s.Sq, kl);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.Sq, D, kl, 1.0f,
                  S, kl, V, v.ss, 0.0f, O, o.ss);
      continue;
    }
    for (int i0 = 0; i0 < s.Sq; i0 += kCausalBlock) {
      const int rows = std::min(kCausalBlock, s.Sq - i0);
      // Keys visible to the block's last row: j <= i0 + rows - 1 + offset.
      const int n =
          int(std::clamp<long>(i0 + rows + offset, 0, long(kl)));
      float *Ob = O + long(i0) * o.ss;
      if (n == 0) {
        zeroRows(Ob, o.ss, rows, D);
        continue;
      }
      float *Sb = S + long(i0) * s.Sk;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, D, scale,
                  Q + long(i0) * q.ss, q.ss, K, k.ss, 0.0f, Sb, s.Sk);
      bench_softmax_rows_causal(Sb, s.Sk, rows, n, i0 + offset + 1);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, D, n, 1.0f,
                  Sb, s.Sk, V, v.ss, 0.0f, Ob, o.ss);
    }
  }
}

//===-- NaiveAttention ----------------------------------------------------===//

NaiveAttention::NaiveAttention(const AttnShape &s) : shape(s), row(s.Sk) {}

void NaiveAttention::run(const float *q, const float *k, const float *v,
                         float *o) {
  const AttnShape &s = shape;
  const float scale = s.effectiveScale();
  const int group = s.Hq / s.Hkv;
  const long offset = long(s.Sk) - s.Sq;
  float *p = row.data;
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.Hq; ++h) {
      const int hk = h / group;
      const float *Q = q + (long(b) * s.Hq + h) * s.Sq * s.D;
      const float *K = k + (long(b) * s.Hkv + hk) * s.Sk * s.D;
      const float *V = v + (long(b) * s.Hkv + hk) * s.Sk * s.D;
      float *O = o + (long(b) * s.Hq + h) * s.Sq * s.D;
      for (int i = 0; i < s.Sq; ++i) {
        const int n =
            s.causal ? int(std::clamp<long>(i + offset + 1, 0, s.Sk)) : s.Sk;
        float m = -INFINITY;
        for (int j = 0; j < n; ++j) {
          float acc = 0;
          for (int d = 0; d < s.D; ++d)
            acc += Q[long(i) * s.D + d] * K[long(j) * s.D + d];
          p[j] = acc * scale;
          m = std::max(m, p[j]);
        }
        float sum = 0;
        for (int j = 0; j < n; ++j) {
          p[j] = std::exp(p[j] - m);
          sum += p[j];
        }
        for (int d = 0; d < s.D; ++d) {
          float acc = 0;
          for (int j = 0; j < n; ++j)
            acc += p[j] * V[long(j) * s.D + d];
          O[long(i) * s.D + d] = n ? acc / sum : 0.0f;
        }
      }
    }
}

//===-- GEMM --------------------------------------------------------------===//

static void linear(int threads, int M, int N, int K, const float *x, long ldx,
                   const float *w, const float *b, float *y, long ldy,
                   float beta = 0.0f) {
  setBlasThreads(threads);
  if (b && beta == 0.0f) {
    bench_fill_rows(y, ldy, M, N, b);
    beta = 1.0f;
    b = nullptr;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, ldx,
              w, K, beta, y, ldy);
  if (b)
    bench_add_rows(y, ldy, M, N, b);
}

void BlasGemm::run(const float *x, const float *w, const float *b, float *y) {
  linear(threads, s.M, s.N, s.K, x, s.K, w, b, y, s.N);
}

//===-- BlasLayer ---------------------------------------------------------===//

const float *LayerParams::get(const std::string &name) const {
  for (auto &[n, p] : items)
    if (n == name)
      return p;
  throw std::invalid_argument("missing layer param " + name);
}

static constexpr int kHidden = 768, kHeads = 12, kHeadDim = 64, kFFN = 3072;

static AttnShape layerAttnShape(BlasLayer::Kind kind, int S) {
  AttnShape a;
  a.B = 1;
  a.Hq = a.Hkv = kHeads;
  a.Sq = a.Sk = S;
  a.D = kHeadDim;
  a.causal = kind == BlasLayer::Gpt2;
  return a;
}

BlasLayer::BlasLayer(Kind kind, int S, int threads)
    : kind(kind), S(S), threads(threads),
      attention(layerAttnShape(kind, S), threads),
      qkv(size_t(S) * 3 * kHidden), a(size_t(S) * kHidden),
      h(size_t(S) * kHidden), t(size_t(S) * kFFN),
      f(kind == Gpt2 ? size_t(S) * kHidden : 0) {}

size_t BlasLayer::workspaceBytes() const {
  return attention.workspaceBytes() + qkv.bytes() + a.bytes() + h.bytes() +
         t.bytes() + f.bytes();
}

void BlasLayer::run(const float *x, const int32_t *lengths,
                    const LayerParams &p, float *y) {
  const long ld3 = 3 * kHidden;
  HeadView qv{qkv.data, 0, kHeadDim, ld3};
  HeadView kv{qkv.data + kHidden, 0, kHeadDim, ld3};
  HeadView vv{qkv.data + 2 * kHidden, 0, kHeadDim, ld3};
  HeadView ov{a.data, 0, kHeadDim, kHidden};
  const size_t rowBytes = sizeof(float) * size_t(S) * kHidden;
  if (kind == Bert) {
    linear(threads, S, kHidden, kHidden, x, kHidden, p.get("wq"), p.get("bq"),
           qkv.data, ld3);
    linear(threads, S, kHidden, kHidden, x, kHidden, p.get("wk"), p.get("bk"),
           qkv.data + kHidden, ld3);
    linear(threads, S, kHidden, kHidden, x, kHidden, p.get("wv"), p.get("bv"),
           qkv.data + 2 * kHidden, ld3);
    attention.run(qv, kv, vv, ov, lengths);
    // h = LN1(x + a wo^T + bo)
    std::memcpy(h.data, x, rowBytes);
    linear(threads, S, kHidden, kHidden, a.data, kHidden, p.get("wo"), nullptr,
           h.data, kHidden, 1.0f);
    bench_layer_norm_rows(h.data, kHidden, S, kHidden, p.get("bo"),
                          p.get("ln1_g"), p.get("ln1_b"), 1e-12f, h.data,
                          kHidden);
    // y = LN2(h + gelu(h w1^T + b1) w2^T + b2)
    linear(threads, S, kFFN, kHidden, h.data, kHidden, p.get("w1"), p.get("b1"),
           t.data, kFFN);
    bench_gelu_erf(t.data, long(S) * kFFN);
    std::memcpy(y, h.data, rowBytes);
    linear(threads, S, kHidden, kFFN, t.data, kFFN, p.get("w2"), nullptr, y,
           kHidden, 1.0f);
    bench_layer_norm_rows(y, kHidden, S, kHidden, p.get("b2"), p.get("ln2_g"),
                          p.get("ln2_b"), 1e-12f, y, kHidden);
    return;
  }
  // GPT-2, pre-norm: q, k, v = split(LN1(x) c_attn^T + c_attn_b)
  bench_layer_norm_rows(const_cast<float *>(x), kHidden, S, kHidden, nullptr,
                        p.get("ln_1_g"), p.get("ln_1_b"), 1e-5f, h.data,
                        kHidden);
  linear(threads, S, 3 * kHidden, kHidden, h.data, kHidden, p.get("c_attn_w"),
         p.get("c_attn_b"), qkv.data, ld3);
  attention.run(qv, kv, vv, ov, nullptr);
  // f = x + a c_proj^T + c_proj_b
  std::memcpy(f.data, x, rowBytes);
  linear(threads, S, kHidden, kHidden, a.data, kHidden, p.get("c_proj_w"),
         p.get("c_proj_b"), f.data, kHidden, 1.0f);
  // y = f + gelu_tanh(LN2(f) fc^T + fc_b) proj^T + proj_b
  bench_layer_norm_rows(f.data, kHidden, S, kHidden, nullptr, p.get("ln_2_g"),
                        p.get("ln_2_b"), 1e-5f, h.data, kHidden);
  linear(threads, S, kFFN, kHidden, h.data, kHidden, p.get("fc_w"),
         p.get("fc_b"), t.data, kFFN);
  bench_gelu_tanh(t.data, long(S) * kFFN);
  std::memcpy(y, f.data, rowBytes);
  linear(threads, S, kHidden, kFFN, t.data, kFFN, p.get("proj_w"),
         p.get("proj_b"), y, kHidden, 1.0f);
}

} // namespace attn::bench
