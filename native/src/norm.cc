// LayerNorm and RMSNorm over the last dimension. The forward pass saves the per-row
// statistics (mean, 1/std) that the backward pass needs. Weight gradients are summed
// per thread and then reduced in thread order, so results are deterministic.
#include <omp.h>

#include <cmath>
#include <vector>

#include "bf16.h"
#include "kernels.h"

namespace llmfab {

namespace {
// Adds per-thread partial sums (rows of `parts`) into dst in a fixed order.
void reduce_parts(float* dst, const std::vector<float>& parts, int64_t nt, int64_t C) {
  for (int64_t t = 0; t < nt; t++)
    for (int64_t c = 0; c < C; c++) dst[c] += parts[t * C + c];
}

// A row of a norm's output: straight into an fp32 output, or through the thread's fp32 row
// buffer into a bf16 one (for a matmul that reads it next: no fp32 copy goes to memory).
template <typename Out>
struct RowWriter;

template <>
struct RowWriter<float> {
  float* out;
  int64_t C;
  float* row(int64_t r) { return out + r * C; }
  void done(int64_t) {}
};

template <>
struct RowWriter<uint16_t> {
  uint16_t* out;
  int64_t C;
  std::vector<float> buf = std::vector<float>(C);
  float* row(int64_t) { return buf.data(); }
  void done(int64_t r) { store_bf16(out + r * C, buf.data(), C); }
};

// Row r of the norm's input: x's row, or with a residual its row of sum = x + y, written
// first and then read while it is still in cache (one pass over the residual stream, not two).
template <typename Y>
inline const float* input_row(const float* x, Residual res, const Y* y, int64_t r, int64_t C) {
  const float* xr = x + r * C;
  if (!res.sum) return xr;
  float* s = res.sum + r * C;
#pragma omp simd
  for (int64_t c = 0; c < C; c++) s[c] = xr[c] + ld(y, r * C + c);
  return s;
}

template <typename Out, typename Y>
void layernorm_rows(Out* out, float* mean, float* rstd, const float* x, Residual res, const Y* y, const float* w,
                    const float* b, int64_t N, int64_t C, float eps) {
#pragma omp parallel
  {
    RowWriter<Out> writer{out, C};
#pragma omp for schedule(static)
    for (int64_t r = 0; r < N; r++) {
      const float* xr = input_row(x, res, y, r, C);
      float s = 0.f;
#pragma omp simd reduction(+ : s)
      for (int64_t c = 0; c < C; c++) s += xr[c];
      const float mu = s / C;
      float v = 0.f;
#pragma omp simd reduction(+ : v)
      for (int64_t c = 0; c < C; c++) v += (xr[c] - mu) * (xr[c] - mu);
      const float rs = 1.f / std::sqrt(v / C + eps);
      float* o = writer.row(r);
#pragma omp simd
      for (int64_t c = 0; c < C; c++) o[c] = (xr[c] - mu) * rs * w[c] + (b ? b[c] : 0.f);
      writer.done(r);
      mean[r] = mu;
      rstd[r] = rs;
    }
  }
}

template <typename Out, typename Y>
void rmsnorm_rows(Out* out, float* rstd, const float* x, Residual res, const Y* y, const float* w, int64_t N,
                  int64_t C, float eps) {
#pragma omp parallel
  {
    RowWriter<Out> writer{out, C};
#pragma omp for schedule(static)
    for (int64_t r = 0; r < N; r++) {
      const float* xr = input_row(x, res, y, r, C);
      float ss = 0.f;
#pragma omp simd reduction(+ : ss)
      for (int64_t c = 0; c < C; c++) ss += xr[c] * xr[c];
      const float rs = 1.f / std::sqrt(ss / C + eps);
      float* o = writer.row(r);
#pragma omp simd
      for (int64_t c = 0; c < C; c++) o[c] = xr[c] * rs * w[c];
      writer.done(r);
      rstd[r] = rs;
    }
  }
}
}  // namespace

void layernorm_forward(Buf out, float* mean, float* rstd, const float* x, Residual res, const float* w,
                       const float* b, int64_t N, int64_t C, float eps) {
  typed(out, [&](auto* o) {
    typed(res.y, [&](auto* y) { layernorm_rows(o, mean, rstd, x, res, y, w, b, N, C, eps); });
  });
}

namespace {
template <typename G>
void layernorm_grad(float* dx, float* dw, float* db, const G* dout, const float* x, const float* w, const float* mean,
                    const float* rstd, int64_t N, int64_t C, bool accumulate) {
  const int64_t nt = num_threads();
  std::vector<float> dwp(nt * C, 0.f), dbp(nt * C, 0.f);
#pragma omp parallel num_threads(nt)
  {
    float* dwt = &dwp[omp_get_thread_num() * C];
    float* dbt = &dbp[omp_get_thread_num() * C];
    std::vector<float> grow(C);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < N; r++) {
      const float* xr = x + r * C;
      const float* g = widened_row(dout, r, C, grow.data());
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
      if (accumulate) {
#pragma omp simd
        for (int64_t c = 0; c < C; c++) d[c] += (g[c] * w[c] - mG - (xr[c] - mu) * rs * mGX) * rs;
      } else {
#pragma omp simd
        for (int64_t c = 0; c < C; c++) d[c] = (g[c] * w[c] - mG - (xr[c] - mu) * rs * mGX) * rs;
      }
    }
  }
  if (dw) reduce_parts(dw, dwp, nt, C);
  if (db) reduce_parts(db, dbp, nt, C);
}

template <typename G>
void rmsnorm_grad(float* dx, float* dw, const G* dout, const float* x, const float* w, const float* rstd, int64_t N,
                  int64_t C, bool accumulate) {
  const int64_t nt = num_threads();
  std::vector<float> dwp(nt * C, 0.f);
#pragma omp parallel num_threads(nt)
  {
    float* dwt = &dwp[omp_get_thread_num() * C];
    std::vector<float> grow(C);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < N; r++) {
      const float* xr = x + r * C;
      const float* g = widened_row(dout, r, C, grow.data());
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
      if (accumulate) {
#pragma omp simd
        for (int64_t c = 0; c < C; c++) d[c] += (g[c] * w[c] - xr[c] * rs * mGX) * rs;
      } else {
#pragma omp simd
        for (int64_t c = 0; c < C; c++) d[c] = (g[c] * w[c] - xr[c] * rs * mGX) * rs;
      }
    }
  }
  if (dw) reduce_parts(dw, dwp, nt, C);
}
}  // namespace

// The row's gradient is widened once into a buffer; both passes over it read fp32.
void layernorm_backward(float* dx, float* dw, float* db, Buf dout, const float* x, const float* w,
                        const float* mean, const float* rstd, int64_t N, int64_t C, bool accumulate) {
  typed(dout, [&](auto* g) { layernorm_grad(dx, dw, db, g, x, w, mean, rstd, N, C, accumulate); });
}

void rmsnorm_backward(float* dx, float* dw, Buf dout, const float* x, const float* w, const float* rstd,
                      int64_t N, int64_t C, bool accumulate) {
  typed(dout, [&](auto* g) { rmsnorm_grad(dx, dw, g, x, w, rstd, N, C, accumulate); });
}

void rmsnorm_forward(Buf out, float* rstd, const float* x, Residual res, const float* w, int64_t N, int64_t C,
                     float eps) {
  typed(out, [&](auto* o) { typed(res.y, [&](auto* y) { rmsnorm_rows(o, rstd, x, res, y, w, N, C, eps); }); });
}

}  // namespace llmfab
