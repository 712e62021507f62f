// The per-row steps that the fp32 and bf16 attention kernels share (the tile products
// differ; the softmax bookkeeping does not).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "bf16.h"
#include "vecmath.h"

namespace llmfab::attention_rows {

constexpr int64_t BT = 64;  // rows per query tile and per key tile

// T rounded up to whole tiles.
inline int64_t padded(int64_t T) { return (T + BT - 1) / BT * BT; }

// Number of keys j0 + j that query i0 + i may see within a key tile of nk keys: those up
// to itself when causal, all of them when not (a vision encoder's patches see each other).
inline int64_t visible(bool causal, int64_t i0, int64_t i, int64_t j0, int64_t nk) {
  return causal ? std::max<int64_t>(0, std::min(nk, i0 + i - j0 + 1)) : nk;
}

// The key tiles a query tile starting at i0 (nq rows) reads end before this key.
inline int64_t keys_end(bool causal, int64_t i0, int64_t nq, int64_t T) { return causal ? i0 + nq : T; }

// The first query tile that can see the key tile starting at j0.
inline int64_t first_query(bool causal, int64_t j0) { return causal ? j0 : 0; }

// Online softmax over one more key tile, for the query tile's nq rows: the scores in s
// (BT x BT) become unnormalised probabilities (0 past what each query may see), the
// running max m and sum l are updated, and the output accumulator o (BT x D) is rescaled.
inline void online_softmax(float* s, float* o, float* m, float* l, bool causal, int64_t nq, int64_t i0,
                           int64_t j0, int64_t nk, int64_t D, float scale) {
  for (int64_t i = 0; i < nq; i++) {
    float* srow = s + i * BT;
    const int64_t n = visible(causal, i0, i, j0, nk);
    float rowMax = m[i];
#pragma omp simd reduction(max : rowMax)
    for (int64_t j = 0; j < n; j++) rowMax = std::max(rowMax, srow[j] * scale);
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < BT; j++) {
      srow[j] = j < n ? fast_exp(srow[j] * scale - rowMax) : 0.f;
      sum += srow[j];
    }
    const float corr = fast_exp(m[i] - rowMax);
#pragma omp simd
    for (int64_t d = 0; d < D; d++) o[i * D + d] *= corr;
    l[i] = l[i] * corr + sum;
    m[i] = rowMax;
  }
}

// The query tile's output rows (o / l) and log-sum-exps, written to out and lse.
inline void write_rows(float* out, float* lse, const float* o, const float* m, const float* l, int64_t nq,
                       int64_t rowStride, int64_t D) {
  for (int64_t i = 0; i < nq; i++) {
    const float inv = 1.f / l[i];
    for (int64_t d = 0; d < D; d++) out[i * rowStride + d] = o[i * D + d] * inv;
    lse[i] = m[i] + std::log(l[i]);
  }
}

// The same into bf16 rows (D <= 1024, as the bf16 kernels take).
inline void write_rows(uint16_t* out, float* lse, const float* o, const float* m, const float* l, int64_t nq,
                       int64_t rowStride, int64_t D) {
  float row[1024];
  for (int64_t i = 0; i < nq; i++) {
    const float inv = 1.f / l[i];
    for (int64_t d = 0; d < D; d++) row[d] = o[i * D + d] * inv;
    store_bf16(out + i * rowStride, row, D);
    lse[i] = m[i] + std::log(l[i]);
  }
}

// Backward, one tile pair: s (scores) becomes P from the saved log-sum-exps L, and dp
// (dO V^T) becomes dS = P (dP - D) scale; rows past nq are zeroed so they add nothing.
inline void probabilities_and_ds(float* s, float* dp, const float* L, const float* Drow, bool causal, int64_t nq,
                                 int64_t i0, int64_t j0, int64_t nk, float scale) {
  for (int64_t i = 0; i < BT; i++) {
    float* srow = s + i * BT;
    float* dprow = dp + i * BT;
    if (i >= nq) {
      std::fill(srow, srow + BT, 0.f);
      std::fill(dprow, dprow + BT, 0.f);
      continue;
    }
    const int64_t n = visible(causal, i0, i, j0, nk);
    const float Li = L[i0 + i], Di = Drow[i0 + i];
#pragma omp simd
    for (int64_t j = 0; j < BT; j++) {
      // Entries past what the query sees may hold anything (a skipped product): never read.
      const bool seen = j < n;
      const float p = seen ? fast_exp(srow[j] * scale - Li) : 0.f;
      srow[j] = p;
      dprow[j] = seen ? p * (dprow[j] - Di) * scale : 0.f;
    }
  }
}

// D[i] = dO[i] . O[i] for every query row (the softmax backward's row term); dO and O fp32 or bf16.
template <typename G, typename O>
inline void output_dots(float* Drow, const G* dob, const O* ob, int64_t T, int64_t rowStride, int64_t D) {
  for (int64_t i = 0; i < T; i++) {
    float acc = 0.f;
#pragma omp simd reduction(+ : acc)
    for (int64_t d = 0; d < D; d++) acc += ld(dob, i * rowStride + d) * ld(ob, i * rowStride + d);
    Drow[i] = acc;
  }
}

// n rows of a gradient tile into strided rows: added, or written over a buffer nothing has
// written yet (which then needs no zero fill before the kernel runs); a bf16 one only so.
inline void put_rows(float* dst, const float* src, int64_t n, int64_t stride, int64_t D, bool add) {
  for (int64_t r = 0; r < n; r++) {
    if (add) {
#pragma omp simd
      for (int64_t d = 0; d < D; d++) dst[r * stride + d] += src[r * D + d];
    } else {
      std::copy(src + r * D, src + (r + 1) * D, dst + r * stride);
    }
  }
}
inline void put_rows(uint16_t* dst, const float* src, int64_t n, int64_t stride, int64_t D, bool) {
  for (int64_t r = 0; r < n; r++) store_bf16(dst + r * stride, src + r * D, D);
}

}  // namespace llmfab::attention_rows
