// Causal self-attention, flash style: queries and keys are visited in tiles with an
// online softmax, so no B x H x T x T score tensor ever exists. The forward pass keeps
// only the log-sum-exp of each query row; the backward pass recomputes the scores.
//
// Layout: q is [B, T, Hq, D] with qStride floats between tokens, k and v are
// [B, T, Hkv, D] with kvStride between tokens (so q, k, v can be views into one fused
// qkv buffer). Grouped-query attention: query head h reads key/value head h / (Hq / Hkv).
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"

namespace llmfab {

namespace {
constexpr int64_t TQ = 32;  // query rows per tile
constexpr int64_t TK = 32;  // key rows per tile

inline float dot(const float* a, const float* b, int64_t D) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (int64_t d = 0; d < D; d++) s += a[d] * b[d];
  return s;
}

inline void axpy(float* y, float a, const float* x, int64_t D) {
#pragma omp simd
  for (int64_t d = 0; d < D; d++) y[d] += a * x[d];
}
}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t D, int64_t qStride,
                       int64_t kvStride, float scale) {
  const int64_t group = Hq / Hkv;
#pragma omp parallel
  {
    std::vector<float> S(TQ * TK), acc(TQ * D), m(TQ), l(TQ);
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++) {
      for (int64_t h = 0; h < Hq; h++) {
        const int64_t kh = h / group;
        const float* qb = q + b * T * qStride + h * D;
        const float* kb = k + b * T * kvStride + kh * D;
        const float* vb = v + b * T * kvStride + kh * D;
        for (int64_t i0 = 0; i0 < T; i0 += TQ) {
          const int64_t nq = std::min(TQ, T - i0);
          std::fill(m.begin(), m.end(), -INFINITY);
          std::fill(l.begin(), l.end(), 0.f);
          std::fill(acc.begin(), acc.end(), 0.f);
          for (int64_t j0 = 0; j0 < i0 + nq; j0 += TK) {
            const int64_t nk = std::min(TK, T - j0);
            for (int64_t i = 0; i < nq; i++) {
              const int64_t qi = i0 + i;
              const float* qrow = qb + qi * qStride;
              float* srow = &S[i * TK];
              const int64_t jmax = std::min(nk, qi - j0 + 1);  // causal: keys j <= qi
              if (jmax <= 0) continue;
              float rowMax = m[i];
              for (int64_t j = 0; j < jmax; j++) {
                srow[j] = dot(qrow, kb + (j0 + j) * kvStride, D) * scale;
                rowMax = std::max(rowMax, srow[j]);
              }
              const float corr = std::exp(m[i] - rowMax);
              float* arow = &acc[i * D];
              if (corr != 1.f) {
#pragma omp simd
                for (int64_t d = 0; d < D; d++) arow[d] *= corr;
              }
              float sum = 0.f;
              for (int64_t j = 0; j < jmax; j++) {
                const float p = std::exp(srow[j] - rowMax);
                sum += p;
                axpy(arow, p, vb + (j0 + j) * kvStride, D);
              }
              l[i] = l[i] * corr + sum;
              m[i] = rowMax;
            }
          }
          for (int64_t i = 0; i < nq; i++) {
            const int64_t qi = i0 + i;
            float* orow = out + ((b * T + qi) * Hq + h) * D;
            const float inv = 1.f / l[i];
            for (int64_t d = 0; d < D; d++) orow[d] = acc[i * D + d] * inv;
            lse[(b * Hq + h) * T + qi] = m[i] + std::log(l[i]);
          }
        }
      }
    }
  }
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out,
                        const float* lse, const float* q, const float* k, const float* v, int64_t B,
                        int64_t T, int64_t Hq, int64_t Hkv, int64_t D, int64_t qStride,
                        int64_t kvStride, float scale) {
  const int64_t group = Hq / Hkv;
  // One work item per (batch, kv head): the query heads of its group all add into the
  // same dk/dv rows, so they run inside the item and no two threads write one row.
#pragma omp parallel
  {
    std::vector<float> Drow(T), dkt(TK * D), dvt(TK * D);
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++) {
      for (int64_t kh = 0; kh < Hkv; kh++) {
        const float* kb = k + b * T * kvStride + kh * D;
        const float* vb = v + b * T * kvStride + kh * D;
        float* dkb = dk + b * T * kvStride + kh * D;
        float* dvb = dv + b * T * kvStride + kh * D;
        for (int64_t h = kh * group; h < (kh + 1) * group; h++) {
          const float* qb = q + b * T * qStride + h * D;
          float* dqb = dq + b * T * qStride + h * D;
          const float* L = lse + (b * Hq + h) * T;
          for (int64_t i = 0; i < T; i++) {
            const int64_t off = ((b * T + i) * Hq + h) * D;
            Drow[i] = dot(dout + off, out + off, D);
          }
          for (int64_t j0 = 0; j0 < T; j0 += TK) {
            const int64_t nk = std::min(TK, T - j0);
            std::fill(dkt.begin(), dkt.end(), 0.f);
            std::fill(dvt.begin(), dvt.end(), 0.f);
            for (int64_t i = j0; i < T; i++) {
              const float* qrow = qb + i * qStride;
              const float* dorow = dout + ((b * T + i) * Hq + h) * D;
              float* dqrow = dqb + i * qStride;
              const int64_t jmax = std::min(nk, i - j0 + 1);
              for (int64_t j = 0; j < jmax; j++) {
                const float* krow = kb + (j0 + j) * kvStride;
                const float* vrow = vb + (j0 + j) * kvStride;
                const float p = std::exp(dot(qrow, krow, D) * scale - L[i]);
                axpy(&dvt[j * D], p, dorow, D);
                const float ds = p * (dot(dorow, vrow, D) - Drow[i]) * scale;
                axpy(dqrow, ds, krow, D);
                axpy(&dkt[j * D], ds, qrow, D);
              }
            }
            for (int64_t j = 0; j < nk; j++) {
              axpy(dkb + (j0 + j) * kvStride, 1.f, &dkt[j * D], D);
              axpy(dvb + (j0 + j) * kvStride, 1.f, &dvt[j * D], D);
            }
          }
        }
      }
    }
  }
}

}  // namespace llmfab
