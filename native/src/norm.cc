// LayerNorm and RMSNorm over the last dimension. The forward pass saves the per-row
// statistics (mean, 1/std) that the backward pass needs. Weight gradients are summed
// per thread and then reduced in thread order, so results are deterministic.
#include <omp.h>

#include <cmath>
#include <vector>

#include "kernels.h"

namespace llmfab {

namespace {
// Adds per-thread partial sums (rows of `parts`) into dst in a fixed order.
void reduce_parts(float* dst, const std::vector<float>& parts, int64_t nt, int64_t C) {
  for (int64_t t = 0; t < nt; t++)
    for (int64_t c = 0; c < C; c++) dst[c] += parts[t * C + c];
}
}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* w,
                       const float* b, int64_t N, int64_t C, float eps) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < N; r++) {
    const float* xr = x + r * C;
    float s = 0.f;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < C; c++) s += xr[c];
    const float mu = s / C;
    float v = 0.f;
#pragma omp simd reduction(+ : v)
    for (int64_t c = 0; c < C; c++) v += (xr[c] - mu) * (xr[c] - mu);
    const float rs = 1.f / std::sqrt(v / C + eps);
    float* o = out + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) o[c] = (xr[c] - mu) * rs * w[c] + (b ? b[c] : 0.f);
    mean[r] = mu;
    rstd[r] = rs;
  }
}

void layernorm_backward(float* dx, float* dw, float* db, const float* dout, const float* x,
                        const float* w, const float* mean, const float* rstd, int64_t N, int64_t C) {
  const int64_t nt = num_threads();
  std::vector<float> dwp(nt * C, 0.f), dbp(nt * C, 0.f);
#pragma omp parallel num_threads(nt)
  {
    float* dwt = &dwp[omp_get_thread_num() * C];
    float* dbt = &dbp[omp_get_thread_num() * C];
#pragma omp for schedule(static)
    for (int64_t r = 0; r < N; r++) {
      const float* xr = x + r * C;
      const float* g = dout + r * C;
      const float mu = mean[r], rs = rstd[r];
      float sumG = 0.f, sumGX = 0.f;
#pragma omp simd reduction(+ : sumG, sumGX)
      for (int64_t c = 0; c < C; c++) {
        const float xhat = (xr[c] - mu) * rs;
        const float gw = g[c] * w[c];
        sumG += gw;
        sumGX += gw * xhat;
        dwt[c] += g[c] * xhat;
        dbt[c] += g[c];
      }
      const float mG = sumG / C, mGX = sumGX / C;
      float* d = dx + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; c++) {
        const float xhat = (xr[c] - mu) * rs;
        d[c] += (g[c] * w[c] - mG - xhat * mGX) * rs;
      }
    }
  }
  if (dw) reduce_parts(dw, dwp, nt, C);
  if (db) reduce_parts(db, dbp, nt, C);
}

void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t N, int64_t C,
                     float eps) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < N; r++) {
    const float* xr = x + r * C;
    float ss = 0.f;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; c++) ss += xr[c] * xr[c];
    const float rs = 1.f / std::sqrt(ss / C + eps);
    float* o = out + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) o[c] = xr[c] * rs * w[c];
    rstd[r] = rs;
  }
}

void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                      const float* rstd, int64_t N, int64_t C) {
  const int64_t nt = num_threads();
  std::vector<float> dwp(nt * C, 0.f);
#pragma omp parallel num_threads(nt)
  {
    float* dwt = &dwp[omp_get_thread_num() * C];
#pragma omp for schedule(static)
    for (int64_t r = 0; r < N; r++) {
      const float* xr = x + r * C;
      const float* g = dout + r * C;
      const float rs = rstd[r];
      float sumGX = 0.f;
#pragma omp simd reduction(+ : sumGX)
      for (int64_t c = 0; c < C; c++) {
        const float xhat = xr[c] * rs;
        sumGX += g[c] * w[c] * xhat;
        dwt[c] += g[c] * xhat;
      }
      const float mGX = sumGX / C;
      float* d = dx + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; c++) d[c] += (g[c] * w[c] - xr[c] * rs * mGX) * rs;
    }
  }
  if (dw) reduce_parts(dw, dwp, nt, C);
}

}  // namespace llmfab
