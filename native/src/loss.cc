// Fused softmax + cross-entropy. The forward pass keeps each row's log-sum-exp; the
// backward pass rebuilds the softmax from it instead of storing N x V probabilities.
#include <cmath>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "bf16.h"
#include "kernels.h"
#include "vecmath.h"

namespace llmfab {

namespace {
// The row's largest logit, 16 running maxima at a time: GCC leaves a plain max loop scalar
// (NaN and signed-zero rules), and that loop was half of the forward's time.
float row_max(const float* z, int64_t V) {
  float lanes[16];
  std::fill(lanes, lanes + 16, -INFINITY);
  int64_t j = 0;
  for (; j + 16 <= V; j += 16)
    for (int k = 0; k < 16; k++) lanes[k] = z[j + k] > lanes[k] ? z[j + k] : lanes[k];
  float mx = -INFINITY;
  for (float lane : lanes) mx = lane > mx ? lane : mx;
  for (; j < V; j++) mx = z[j] > mx ? z[j] : mx;
  return mx;
}

template <typename Z>
void ce_forward_rows(float* losses, float* lse, const Z* logits, const int32_t* targets, int64_t N, int64_t V,
                     int32_t ignoreIndex) {
#pragma omp parallel
  {
    std::vector<float> buf(std::is_same_v<Z, float> ? 0 : V);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < N; r++) {
      const float* z = widened_row(logits, r, V, buf.data());
      const float mx = row_max(z, V);
      float s = 0.f;
#pragma omp simd reduction(+ : s)
      for (int64_t j = 0; j < V; j++) s += fast_exp(z[j] - mx);
      lse[r] = mx + std::log(s);
      losses[r] = targets[r] == ignoreIndex ? 0.f : lse[r] - z[targets[r]];
    }
  }
}
}  // namespace

// logits may be bf16: each row is widened once, then as fp32.
int64_t cross_entropy_forward(float* losses, float* lse, Buf logits, const int32_t* targets, int64_t N, int64_t V,
                              int32_t ignoreIndex) {
  typed(logits, [&](auto* z) { ce_forward_rows(losses, lse, z, targets, N, V, ignoreIndex); });
  int64_t count = 0;
  for (int64_t r = 0; r < N; r++) count += targets[r] != ignoreIndex;
  return count;
}

namespace {
// dlogits rows in fp32: written over (accumulate false: a fresh buffer, ignored rows zeroed)
// or added to; the two loops each vectorize.
template <typename Z>
void ce_rows_fp32(float* dlogits, const Z* logits, const float* lse, const int32_t* targets, int64_t N, int64_t V,
                  int32_t ignoreIndex, float scale, bool accumulate) {
#pragma omp parallel
  {
    std::vector<float> buf(std::is_same_v<Z, float> ? 0 : V);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < N; r++) {
      float* d = dlogits + r * V;
      if (targets[r] == ignoreIndex) {
        if (!accumulate) std::fill(d, d + V, 0.f);
        continue;
      }
      const float* z = widened_row(logits, r, V, buf.data());
      const float l = lse[r];
      if (accumulate) {
#pragma omp simd
        for (int64_t j = 0; j < V; j++) d[j] += scale * fast_exp(z[j] - l);
      } else {
#pragma omp simd
        for (int64_t j = 0; j < V; j++) d[j] = scale * fast_exp(z[j] - l);
      }
      d[targets[r]] -= scale;
    }
  }
}

// dlogits rows in bf16, written over: 1024 columns at a time in fp32 on the stack, then stored.
template <typename Z>
void ce_rows_bf16(uint16_t* dlogits, const Z* logits, const float* lse, const int32_t* targets, int64_t N, int64_t V,
                  int32_t ignoreIndex, float scale) {
  constexpr int64_t kChunk = 1024;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < N; r++) {
    const bool ignored = targets[r] == ignoreIndex;
    const Z* z = logits + r * V;
    const float l = lse[r];
    for (int64_t c0 = 0; c0 < V; c0 += kChunk) {
      alignas(64) float d[kChunk];
      const int64_t len = std::min(kChunk, V - c0);
      if (ignored) {
        std::fill(d, d + len, 0.f);
      } else {
#pragma omp simd
        for (int64_t j = 0; j < len; j++) d[j] = scale * fast_exp(ld(z, c0 + j) - l);
        const int64_t t = targets[r] - c0;
        if (t >= 0 && t < len) d[t] -= scale;
      }
      store_bf16(dlogits + r * V + c0, d, len);
    }
  }
}
}  // namespace

void cross_entropy_backward(Buf dlogits, Buf logits, const float* lse, const int32_t* targets, int64_t N, int64_t V,
                            int32_t ignoreIndex, float scale, bool accumulate) {
  typed(logits, [&](auto* z) {
    if (dlogits.isBf16)
      ce_rows_bf16(static_cast<uint16_t*>(dlogits.data), z, lse, targets, N, V, ignoreIndex, scale);
    else
      ce_rows_fp32(static_cast<float*>(dlogits.data), z, lse, targets, N, V, ignoreIndex, scale, accumulate);
  });
}

}  // namespace llmfab
