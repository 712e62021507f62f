// Causal self-attention, flash style: keys are visited in tiles with an online softmax,
// so no B x H x T x T score tensor ever exists. The forward pass keeps only each query
// row's log-sum-exp; the backward pass recomputes the probabilities from it.
//
// Layout: q is [B, T, Hq, D] with qStride floats between tokens, k and v are
// [B, T, Hkv, D] with kvStride between tokens (so q, k, v can be views into one fused
// qkv buffer). Grouped-query attention: query head h reads key/value head h / (Hq / Hkv).
//
// Each key tile is copied transposed ([D][TK]), so a query row's scores against the
// whole tile are TK-wide vector operations instead of TK horizontal dot products.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"
#include "vecmath.h"

namespace llmfab {

namespace {
constexpr int64_t TK = 32;  // keys per tile

// dst[d * TK + j] = src[(j0 + j) * stride + d], zero-padded past nk.
void load_transposed(float* dst, const float* src, int64_t j0, int64_t nk, int64_t stride, int64_t D) {
  std::fill(dst, dst + D * TK, 0.f);
  for (int64_t j = 0; j < nk; j++)
    for (int64_t d = 0; d < D; d++) dst[d * TK + j] = src[(j0 + j) * stride + d];
}

// out[j] = sum_d row[d] * tile[d][j] for the TK keys of a transposed tile.
inline void row_times_tile(float* out, const float* row, const float* tile, int64_t D) {
  float acc[TK] = {0};
  for (int64_t d = 0; d < D; d++) {
    const float r = row[d];
    const float* t = tile + d * TK;
#pragma omp simd
    for (int64_t j = 0; j < TK; j++) acc[j] += r * t[j];
  }
  for (int64_t j = 0; j < TK; j++) out[j] = acc[j];
}

inline void axpy(float* y, float a, const float* x, int64_t D) {
#pragma omp simd
  for (int64_t d = 0; d < D; d++) y[d] += a * x[d];
}

inline float dot(const float* a, const float* b, int64_t D) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (int64_t d = 0; d < D; d++) s += a[d] * b[d];
  return s;
}
}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t D, int64_t qStride,
                       int64_t kvStride, float scale) {
  const int64_t group = Hq / Hkv;
#pragma omp parallel
  {
    std::vector<float> kt(D * TK), m(T), l(T);
    float s[TK];
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++) {
      for (int64_t h = 0; h < Hq; h++) {
        const int64_t kh = h / group;
        const float* qb = q + b * T * qStride + h * D;
        const float* kb = k + b * T * kvStride + kh * D;
        const float* vb = v + b * T * kvStride + kh * D;
        float* ob = out + b * T * Hq * D + h * D;
        std::fill(m.begin(), m.end(), -INFINITY);
        std::fill(l.begin(), l.end(), 0.f);
        for (int64_t i = 0; i < T; i++) std::fill(ob + i * Hq * D, ob + i * Hq * D + D, 0.f);
        for (int64_t j0 = 0; j0 < T; j0 += TK) {
          const int64_t nk = std::min(TK, T - j0);
          load_transposed(kt.data(), kb, j0, nk, kvStride, D);
          for (int64_t i = j0; i < T; i++) {
            const int64_t jmax = std::min(nk, i - j0 + 1);  // causal: keys j <= i
            row_times_tile(s, qb + i * qStride, kt.data(), D);
            float rowMax = m[i];
            for (int64_t j = 0; j < jmax; j++) {
              s[j] *= scale;
              rowMax = std::max(rowMax, s[j]);
            }
            float sum = 0.f;
#pragma omp simd reduction(+ : sum)
            for (int64_t j = 0; j < TK; j++) {
              s[j] = j < jmax ? fast_exp(s[j] - rowMax) : 0.f;
              sum += s[j];
            }
            const float corr = fast_exp(m[i] - rowMax);
            float* orow = ob + i * Hq * D;
            if (corr != 1.f)
              for (int64_t d = 0; d < D; d++) orow[d] *= corr;
            for (int64_t j = 0; j < jmax; j++) axpy(orow, s[j], vb + (j0 + j) * kvStride, D);
            l[i] = l[i] * corr + sum;
            m[i] = rowMax;
          }
        }
        for (int64_t i = 0; i < T; i++) {
          const float inv = 1.f / l[i];
          float* orow = ob + i * Hq * D;
          for (int64_t d = 0; d < D; d++) orow[d] *= inv;
          lse[(b * Hq + h) * T + i] = m[i] + std::log(l[i]);
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
    std::vector<float> Drow(T), kt(D * TK), vt(D * TK), dkt(TK * D), dvt(TK * D);
    float p[TK], ds[TK];
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
          const float* dob = dout + b * T * Hq * D + h * D;
          const float* obase = out + b * T * Hq * D + h * D;
          for (int64_t i = 0; i < T; i++) Drow[i] = dot(dob + i * Hq * D, obase + i * Hq * D, D);
          for (int64_t j0 = 0; j0 < T; j0 += TK) {
            const int64_t nk = std::min(TK, T - j0);
            load_transposed(kt.data(), kb, j0, nk, kvStride, D);
            load_transposed(vt.data(), vb, j0, nk, kvStride, D);
            std::fill(dkt.begin(), dkt.end(), 0.f);
            std::fill(dvt.begin(), dvt.end(), 0.f);
            for (int64_t i = j0; i < T; i++) {
              const float* qrow = qb + i * qStride;
              const float* dorow = dob + i * Hq * D;
              const int64_t jmax = std::min(nk, i - j0 + 1);
              row_times_tile(p, qrow, kt.data(), D);
              row_times_tile(ds, dorow, vt.data(), D);
              const float Li = L[i], Di = Drow[i];
#pragma omp simd
              for (int64_t j = 0; j < TK; j++) {
                p[j] = j < jmax ? fast_exp(p[j] * scale - Li) : 0.f;
                ds[j] = p[j] * (ds[j] - Di) * scale;
              }
              float* dqrow = dqb + i * qStride;
              for (int64_t j = 0; j < jmax; j++) {
                axpy(&dvt[j * D], p[j], dorow, D);
                axpy(&dkt[j * D], ds[j], qrow, D);
                axpy(dqrow, ds[j], kb + (j0 + j) * kvStride, D);
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
