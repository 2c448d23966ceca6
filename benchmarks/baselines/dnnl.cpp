//===- dnnl.cpp - oneDNN 2.6 attention and GEMM baselines -------*- C++ -*-===//
//
// Attention: matmul (Q K^T, scale as output scale), for causal an in-place
// binary add of a broadcast [M, Sk] tensor of 0 / -1e30, in-place softmax,
// matmul (P V). The full score matrix is computed even when causal. Heads are batched in chunks whose score tensor stays under
// kMaxScoreBytes (every head at S <= 2048). GQA: the Hq/Hkv query heads of
// one kv head are contiguous, so Q is a [Hkv, (Hq/Hkv)*Sq, D] batch and K/V
// are read in place. oneDNN here uses the OpenMP runtime, so it runs with
// omp_get_max_threads() threads (the harness sets it). Scratchpads are
// user-managed and allocated up front, so run() allocates nothing.
//
//===----------------------------------------------------------------------===//
#include "baselines.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <unordered_map>

namespace attn::bench {

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

static constexpr size_t kMaxScoreBytes = size_t(256) << 20;

static engine &cpuEngine() {
  static engine eng(engine::kind::cpu, 0);
  return eng;
}

struct DnnlAttention::Impl {
  AttnShape s;
  int M, chunk, chunks;
  stream strm{cpuEngine()};
  matmul qk, pv;
  softmax_forward sm;
  binary addMask;
  memory::desc qmd, kmd, smd, vmd, omd, maskmd, qkPad, smPad, pvPad;
  Buffer scores, mask, pad1, pad2, pad3;
};

DnnlAttention::DnnlAttention(const AttnShape &s, int) : impl(new Impl) {
  Impl &I = *impl;
  I.s = s;
  const int group = s.Hq / s.Hkv;
  if (s.causal && group != 1)
    throw std::invalid_argument("oneDNN baseline: causal GQA not supported");
  const int batch = s.B * s.Hkv;
  I.M = group * s.Sq;
  const size_t perHead = size_t(I.M) * s.Sk * sizeof(float);
  int chunk = int(std::clamp<size_t>(kMaxScoreBytes / perHead, 1, batch));
  while (batch % chunk)
    --chunk;
  I.chunk = chunk;
  I.chunks = batch / chunk;
  const memory::dim g = chunk, M = I.M, Sk = s.Sk, D = s.D;
  I.qmd = memory::desc({g, M, D}, dt::f32, tag::abc);
  I.kmd = memory::desc({g, D, Sk}, dt::f32, memory::dims{Sk * D, 1, D});
  I.smd = memory::desc({g, M, Sk}, dt::f32, tag::abc);
  I.vmd = memory::desc({g, Sk, D}, dt::f32, tag::abc);
  I.omd = memory::desc({g, M, D}, dt::f32, tag::abc);

  primitive_attr qkAttr;
  qkAttr.set_scratchpad_mode(scratchpad_mode::user);
  qkAttr.set_output_scales(0, {s.effectiveScale()});
  if (s.causal) {
    // A separate in-place binary add: as a matmul post-op with a broadcast
    // src1, oneDNN 2.6 falls back to a reference kernel (minutes at S=2048).
    I.maskmd = memory::desc({1, M, Sk}, dt::f32, tag::abc);
    primitive_attr binAttr;
    binAttr.set_scratchpad_mode(scratchpad_mode::user);
    auto binPd = binary::primitive_desc(
        binary::desc(algorithm::binary_add, I.smd, I.maskmd, I.smd), binAttr,
        cpuEngine());
    if (binPd.scratchpad_desc().get_size() != 0)
      throw std::runtime_error("binary add wants a scratchpad");
    I.addMask = binary(binPd);
    I.mask = Buffer(size_t(M) * Sk);
    const long offset = long(s.Sk) - s.Sq;
    for (long i = 0; i < M; ++i)
      for (long j = 0; j < Sk; ++j)
        I.mask.data[i * Sk + j] = j <= i + offset ? 0.0f : -1e30f;
  }
  auto qkPd = matmul::primitive_desc(matmul::desc(I.qmd, I.kmd, I.smd), qkAttr,
                                     cpuEngine());
  primitive_attr plain;
  plain.set_scratchpad_mode(scratchpad_mode::user);
  auto smPd = softmax_forward::primitive_desc(
      softmax_forward::desc(prop_kind::forward_inference, I.smd, 2), plain,
      cpuEngine());
  auto pvPd = matmul::primitive_desc(matmul::desc(I.smd, I.vmd, I.omd), plain,
                                     cpuEngine());
  I.qk = matmul(qkPd);
  I.sm = softmax_forward(smPd);
  I.pv = matmul(pvPd);
  I.scores = Buffer(size_t(g) * M * Sk);
  I.qkPad = qkPd.scratchpad_desc();
  I.smPad = smPd.scratchpad_desc();
  I.pvPad = pvPd.scratchpad_desc();
  I.pad1 = Buffer(qkPd.scratchpad_desc().get_size() / 4 + 1);
  I.pad2 = Buffer(smPd.scratchpad_desc().get_size() / 4 + 1);
  I.pad3 = Buffer(pvPd.scratchpad_desc().get_size() / 4 + 1);
}

DnnlAttention::~DnnlAttention() = default;

size_t DnnlAttention::workspaceBytes() const {
  return impl->scores.bytes() + impl->mask.bytes() + impl->pad1.bytes() +
         impl->pad2.bytes() + impl->pad3.bytes();
}

void DnnlAttention::run(const float *q, const float *k, const float *v,
                        float *o) {
  Impl &I = *impl;
  engine &eng = cpuEngine();
  const size_t qStride = size_t(I.chunk) * I.M * I.s.D;
  const size_t kStride = size_t(I.chunk) * I.s.Sk * I.s.D;
  memory sm(I.smd, eng, I.scores.data);
  memory pad1(I.qkPad, eng, I.pad1.data), pad2(I.smPad, eng, I.pad2.data),
      pad3(I.pvPad, eng, I.pad3.data);
  for (int c = 0; c < I.chunks; ++c) {
    memory qm(I.qmd, eng, const_cast<float *>(q) + c * qStride);
    memory km(I.kmd, eng, const_cast<float *>(k) + c * kStride);
    memory vm(I.vmd, eng, const_cast<float *>(v) + c * kStride);
    memory om(I.omd, eng, o + c * qStride);
    std::unordered_map<int, memory> qkArgs{{DNNL_ARG_SRC, qm},
                                           {DNNL_ARG_WEIGHTS, km},
                                           {DNNL_ARG_DST, sm},
                                           {DNNL_ARG_SCRATCHPAD, pad1}};
    I.qk.execute(I.strm, qkArgs);
    if (I.s.causal)
      I.addMask.execute(I.strm, {{DNNL_ARG_SRC_0, sm},
                                 {DNNL_ARG_SRC_1,
                                  memory(I.maskmd, eng, I.mask.data)},
                                 {DNNL_ARG_DST, sm}});
    I.sm.execute(I.strm, {{DNNL_ARG_SRC, sm},
                          {DNNL_ARG_DST, sm},
                          {DNNL_ARG_SCRATCHPAD, pad2}});
    I.pv.execute(I.strm, {{DNNL_ARG_SRC, sm},
                          {DNNL_ARG_WEIGHTS, vm},
                          {DNNL_ARG_DST, om},
                          {DNNL_ARG_SCRATCHPAD, pad3}});
  }
  I.strm.wait();
}

struct DnnlGemm::Impl {
  GemmShape s;
  stream strm{cpuEngine()};
  matmul mm;
  memory::desc xmd, wmd, bmd, ymd, padmd;
  Buffer pad;
};

DnnlGemm::DnnlGemm(const GemmShape &s, int) : impl(new Impl) {
  Impl &I = *impl;
  I.s = s;
  const memory::dim M = s.M, N = s.N, K = s.K;
  I.xmd = memory::desc({M, K}, dt::f32, tag::ab);
  I.wmd = memory::desc({K, N}, dt::f32, tag::ba); // w is [N, K] row-major
  I.bmd = memory::desc({1, N}, dt::f32, tag::ab);
  I.ymd = memory::desc({M, N}, dt::f32, tag::ab);
  primitive_attr attr;
  attr.set_scratchpad_mode(scratchpad_mode::user);
  auto pd = matmul::primitive_desc(matmul::desc(I.xmd, I.wmd, I.bmd, I.ymd),
                                   attr, cpuEngine());
  I.mm = matmul(pd);
  I.padmd = pd.scratchpad_desc();
  I.pad = Buffer(I.padmd.get_size() / 4 + 1);
}
DnnlGemm::~DnnlGemm() = default;
size_t DnnlGemm::workspaceBytes() const { return impl->pad.bytes(); }

void DnnlGemm::run(const float *x, const float *w, const float *b, float *y) {
  Impl &I = *impl;
  engine &eng = cpuEngine();
  I.mm.execute(I.strm,
               {{DNNL_ARG_SRC, memory(I.xmd, eng, const_cast<float *>(x))},
                {DNNL_ARG_WEIGHTS, memory(I.wmd, eng, const_cast<float *>(w))},
                {DNNL_ARG_BIAS, memory(I.bmd, eng, const_cast<float *>(b))},
                {DNNL_ARG_DST, memory(I.ymd, eng, y)},
                {DNNL_ARG_SCRATCHPAD, memory(I.padmd, eng, I.pad.data)}});
  I.strm.wait();
}

} // namespace attn::bench
