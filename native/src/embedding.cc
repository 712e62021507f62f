// Token (+ learned position) embedding: out[b, t] = wte[idx[b, t]] + wpe[t].
#include <omp.h>

#include <algorithm>

#include "kernels.h"

namespace llmfab {

void embedding_forward(float* out, const int32_t* idx, const float* wte, const float* wpe,
                       int64_t B, int64_t T, int64_t C) {
#pragma omp parallel for schedule(static)
  for (int64_t bt = 0; bt < B * T; bt++) {
    const float* e = wte + static_cast<int64_t>(idx[bt]) * C;
    float* o = out + bt * C;
    if (wpe) {
      const float* p = wpe + (bt % T) * C;
#pragma omp simd
      for (int64_t c = 0; c < C; c++) o[c] = e[c] + p[c];
    } else {
      std::copy(e, e + C, o);
    }
  }
}

void embedding_forward_at(float* out, const int32_t* idx, const int32_t* positions, const float* wte,
                          const float* wpe, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C > (1 << 15))
  for (int64_t i = 0; i < N; i++) {
    const float* e = wte + static_cast<int64_t>(idx[i]) * C;
    float* o = out + i * C;
    if (wpe) {
      const float* p = wpe + static_cast<int64_t>(positions[i]) * C;
#pragma omp simd
      for (int64_t c = 0; c < C; c++) o[c] = e[c] + p[c];
    } else {
      std::copy(e, e + C, o);
    }
  }
}

// Each thread owns a slice of channels and walks every token in order, so the scatter
// into shared rows of dwte needs no atomics and sums in the same order on every run.
void embedding_backward(const float* dout, const int32_t* idx, float* dwte, float* dwpe, int64_t B,
                        int64_t T, int64_t C) {
#pragma omp parallel
  {
    const int64_t nt = omp_get_num_threads(), tid = omp_get_thread_num();
    const int64_t c0 = C * tid / nt, c1 = C * (tid + 1) / nt;
    for (int64_t bt = 0; bt < B * T; bt++) {
      const float* g = dout + bt * C;
      float* e = dwte + static_cast<int64_t>(idx[bt]) * C;
      float* p = dwpe ? dwpe + (bt % T) * C : nullptr;
      for (int64_t c = c0; c < c1; c++) {
        e[c] += g[c];
        if (p) p[c] += g[c];
      }
    }
  }
}

}  // namespace llmfab
