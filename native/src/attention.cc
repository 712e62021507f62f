// Self-attention (causal, or bidirectional for a vision encoder), flash style: 64 x 64 tiles of queries and keys with an online
// softmax, so no B x H x T x T score tensor ever exists. The forward pass keeps only
// each query row's log-sum-exp; the backward pass recomputes the probabilities from it
// (FlashAttention-2's algorithm). Tile products run on the register-blocked tile_gemm.
//
// Layout: q is [B, T, Hq, D] with qStride floats between tokens, k and v are
// [B, T, Hkv, D] with kvStride between tokens (so q, k, v can be views into one fused
// qkv buffer). Grouped-query attention: query head h reads key/value head h / (Hq / Hkv).
#include <algorithm>
#ifdef __AVX2__
#include <immintrin.h>
#endif
#include <cmath>
#include <vector>

#include "kernels.h"
#include "tile_gemm.h"
#include "attention_rows.h"
#include "vecmath.h"

namespace llmfab {

namespace {
using namespace attention_rows;

#ifdef __AVX2__
// An 8 x 8 block of floats transposed in registers: rows of src (stride apart) become rows
// of dst (dstStride apart).
inline void transpose8(float* dst, const float* src, int64_t stride, int64_t dstStride) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * stride);
  for (int i = 0; i < 4; i++) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; i++)
    for (int h = 0; h < 2; h++) {
      r[4 * i + h] = _mm256_shuffle_ps(t[4 * i + h], t[4 * i + 2 + h], 0x44);
      r[4 * i + 2 + h] = _mm256_shuffle_ps(t[4 * i + h], t[4 * i + 2 + h], 0xEE);
    }
  // r[0..3] hold columns 0, 1, 4, 5 ... of rows 0-3 in their 128-bit halves; pair the halves.
  constexpr int order[4] = {0, 2, 1, 3};
  for (int c = 0; c < 4; c++) {
    _mm256_storeu_ps(dst + c * dstStride, _mm256_permute2f128_ps(r[order[c]], r[4 + order[c]], 0x20));
    _mm256_storeu_ps(dst + (c + 4) * dstStride, _mm256_permute2f128_ps(r[order[c]], r[4 + order[c]], 0x31));
  }
}
#endif

// Copies the T rows of a head (stride apart) transposed into dst [D][ld], ld at least T
// rounded up to whole tiles, the padding zero: a key tile is then the columns j0 .. j0 + BT.
// In blocks (8 x 8 in registers where AVX2 has them), so that reads and writes both stay
// within a few cache lines.
void transpose_rows(float* dst, const float* src, int64_t T, int64_t ld, int64_t stride, int64_t D) {
  constexpr int64_t S = 16;
  for (int64_t d = 0; d < D; d++) std::fill(dst + d * ld + T, dst + (d + 1) * ld, 0.f);
  int64_t whole = 0;  // rows done in registers
#ifdef __AVX2__
  whole = D % 8 == 0 ? T - T % 8 : 0;
  for (int64_t r0 = 0; r0 < whole; r0 += 8)
    for (int64_t d0 = 0; d0 < D; d0 += 8) transpose8(dst + d0 * ld + r0, src + r0 * stride + d0, stride, ld);
#endif
  for (int64_t r0 = whole; r0 < T; r0 += S)
    for (int64_t d0 = 0; d0 < D; d0 += S) {
      const int64_t r1 = std::min(T, r0 + S), d1 = std::min(D, d0 + S);
      for (int64_t d = d0; d < d1; d++)
        for (int64_t r = r0; r < r1; r++) dst[d * ld + r] = src[r * stride + d];
    }
}

// The row stride of a transposed head: whole tiles and one cache line more. A stride of a
// power of two (256 floats at T = 256) put the 64 rows a tile product reads into 4 of the 64
// sets of a 32 KiB 8-way L1, which then held 32 of them.
inline int64_t transposed_stride(int64_t T) { return padded(T) + 16; }

}  // namespace

// Tiles are read in place: queries straight from q (lda = qStride), values from v, keys
// from one transposed copy per head; no per-tile copies.
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t D, int64_t qStride,
                       int64_t kvStride, float scale, bool causal) {
  const int64_t group = Hq / Hkv;
  const int64_t ld = transposed_stride(T);  // row stride of the transposed key (and value) heads
#pragma omp parallel
  {
    std::vector<float> kt(D * ld), s(BT * BT), o(BT * D), m(BT), l(BT);
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++) {
      for (int64_t h = 0; h < Hq; h++) {
        const int64_t kh = h / group;
        const float* qb = q + b * T * qStride + h * D;
        const float* kb = k + b * T * kvStride + kh * D;
        const float* vb = v + b * T * kvStride + kh * D;
        transpose_rows(kt.data(), kb, T, ld, kvStride, D);
        for (int64_t i0 = 0; i0 < T; i0 += BT) {
          const int64_t nq = std::min(BT, T - i0);
          std::fill(o.begin(), o.end(), 0.f);
          std::fill(m.begin(), m.end(), -INFINITY);
          std::fill(l.begin(), l.end(), 0.f);
          for (int64_t j0 = 0; j0 < keys_end(causal, i0, nq, T); j0 += BT) {
            const int64_t nk = std::min(BT, T - j0);
            const bool diagonal = causal && j0 == i0;
            tile_gemm(s.data(), qb + i0 * qStride, kt.data() + j0, nq, BT, D, qStride, ld, BT, true,
                      diagonal ? Skip::scores_past_diagonal : Skip::none);
            online_softmax(s.data(), o.data(), m.data(), l.data(), causal, nq, i0, j0, nk, D, scale);
            tile_gemm(o.data(), s.data(), vb + j0 * kvStride, nq, D, nk, BT, kvStride, D, false,
                      diagonal ? Skip::a_past_diagonal : Skip::none);
          }
          write_rows(out + ((b * T + i0) * Hq + h) * D, lse + (b * Hq + h) * T + i0, o.data(), m.data(), l.data(),
                     nq, Hq * D, D);
        }
      }
    }
  }
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out,
                        const float* lse, const float* q, const float* k, const float* v, int64_t B,
                        int64_t T, int64_t Hq, int64_t Hkv, int64_t D, int64_t qStride,
                        int64_t kvStride, float scale, bool causal, GradWrites writes) {
  const int64_t group = Hq / Hkv;
  const int64_t rowStride = Hq * D;  // between tokens of out and dout
  const int64_t ld = transposed_stride(T);  // row stride of the transposed key (and value) heads
  // One work item per (batch, kv head): the query heads of its group all add into the
  // same dk/dv rows, so they run inside the item and no two threads write one row.
#pragma omp parallel
  {
    std::vector<float> Drow(T), dqAcc(T * D), kt(D * ld), vt(D * ld), s(BT * BT), dp(BT * BT),
        dkt(BT * D), dvt(BT * D);
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++) {
      for (int64_t kh = 0; kh < Hkv; kh++) {
        const float* kb = k + b * T * kvStride + kh * D;
        const float* vb = v + b * T * kvStride + kh * D;
        transpose_rows(kt.data(), kb, T, ld, kvStride, D);
        transpose_rows(vt.data(), vb, T, ld, kvStride, D);
        for (int64_t h = kh * group; h < (kh + 1) * group; h++) {
          const float* qb = q + b * T * qStride + h * D;
          const float* dob = dout + b * T * rowStride + h * D;
          const float* ob = out + b * T * rowStride + h * D;
          const float* L = lse + (b * Hq + h) * T;
          output_dots(Drow.data(), dob, ob, T, rowStride, D);
          for (int64_t j0 = 0; j0 < T; j0 += BT) {
            const int64_t nk = std::min(BT, T - j0);
            // causal: earlier queries cannot see these keys
            for (int64_t i0 = first_query(causal, j0); i0 < T; i0 += BT) {
              const int64_t nq = std::min(BT, T - i0);
              const float* qi = qb + i0 * qStride;
              const float* doi = dob + i0 * rowStride;
              const bool diagonal = causal && j0 == i0;
              const Skip scores = diagonal ? Skip::scores_past_diagonal : Skip::none;
              tile_gemm(s.data(), qi, kt.data() + j0, nq, BT, D, qStride, ld, BT, true, scores);     // S = Q K^T
              tile_gemm(dp.data(), doi, vt.data() + j0, nq, BT, D, rowStride, ld, BT, true, scores);  // dP = dO V^T
              probabilities_and_ds(s.data(), dp.data(), L, Drow.data(), causal, nq, i0, j0, nk, scale);
              // Only the nq rows of P and dS are read: the rest of the tile never contributes.
              // The first query tile a key tile meets writes its dK and dV tiles; j0 = 0 writes dQ.
              const bool firstQueries = i0 == first_query(causal, j0);
              const Skip transposed = diagonal ? Skip::at_before_diagonal : Skip::none;
              tile_gemm<true>(dvt.data(), s.data(), doi, nk, D, nq, BT, rowStride, D, firstQueries,
                              transposed);  // dV += P^T dO
              tile_gemm<true>(dkt.data(), dp.data(), qi, nk, D, nq, BT, qStride, D, firstQueries,
                              transposed);  // dK += dS^T Q
              tile_gemm(&dqAcc[i0 * D], dp.data(), kb + j0 * kvStride, nq, D, nk, BT, kvStride, D, j0 == 0,
                        diagonal ? Skip::a_past_diagonal : Skip::none);  // dQ += dS K
            }
            put_rows(dk + b * T * kvStride + kh * D + j0 * kvStride, dkt.data(), nk, kvStride, D, writes.addK || h > kh * group);
            put_rows(dv + b * T * kvStride + kh * D + j0 * kvStride, dvt.data(), nk, kvStride, D, writes.addV || h > kh * group);
          }
          put_rows(dq + b * T * qStride + h * D, dqAcc.data(), T, qStride, D, writes.addQ);
        }
      }
    }
  }
}

}  // namespace llmfab

namespace llmfab {

// Attention for inference against a key/value cache. The cache holds `capacity` token
// rows per slot ([slots, capacity, Hkv, D]); sequence b lives in slot slots[b] and its
// Tn new queries sit at positions pos[b] .. pos[b] + Tn - 1, whose keys and values are
// already in the cache. Query t of sequence b attends to cache rows 0 .. pos[b] + t.
void attention_cached(float* out, const float* q, const float* kcache, const float* vcache,
                      int64_t B, int64_t Tn, int64_t Hq, int64_t Hkv, int64_t D,
                      const int32_t* slots, const int32_t* pos, int64_t capacity, float scale) {
  const int64_t group = Hq / Hkv;
  const int64_t rowStride = Hkv * D;
#pragma omp parallel
  {
    std::vector<float> s(capacity);
#pragma omp for collapse(3) schedule(static)
    for (int64_t b = 0; b < B; b++)
      for (int64_t t = 0; t < Tn; t++)
        for (int64_t h = 0; h < Hq; h++) {
          const int64_t kh = h / group;
          const float* qrow = q + ((b * Tn + t) * Hq + h) * D;
          const float* kb = kcache + static_cast<int64_t>(slots[b]) * capacity * rowStride + kh * D;
          const float* vb = vcache + static_cast<int64_t>(slots[b]) * capacity * rowStride + kh * D;
          const int64_t n = pos[b] + t + 1;
          float mx = -INFINITY;
          for (int64_t j = 0; j < n; j++) {
            float acc = 0.f;
#pragma omp simd reduction(+ : acc)
            for (int64_t d = 0; d < D; d++) acc += qrow[d] * kb[j * rowStride + d];
            s[j] = acc * scale;
            mx = std::max(mx, s[j]);
          }
          float sum = 0.f;
          for (int64_t j = 0; j < n; j++) {
            s[j] = fast_exp(s[j] - mx);
            sum += s[j];
          }
          float* orow = out + ((b * Tn + t) * Hq + h) * D;
          std::fill(orow, orow + D, 0.f);
          const float inv = 1.f / sum;
          for (int64_t j = 0; j < n; j++) {
            const float p = s[j] * inv;
            const float* vrow = vb + j * rowStride;
#pragma omp simd
            for (int64_t d = 0; d < D; d++) orow[d] += p * vrow[d];
          }
        }
  }
}

}  // namespace llmfab
