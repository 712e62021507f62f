// Optimizer kernels: global gradient norm and the AdamW update.
#include <omp.h>

#include <cmath>
#include <vector>

#include "kernels.h"

namespace llmfab {

// Per-thread partial sums in double, combined in thread order: deterministic. Each thread
// keeps 16 running sums (element i into sum i % 16), so the loop vectorizes without
// reordering any sum; one running sum waited on the latency of every add (4x slower).
double sum_squares(const float* x, int64_t n) {
  constexpr int64_t kLanes = 16;
  const int nt = num_threads();
  const int64_t blocks = n / kLanes;
  std::vector<double> parts(nt, 0.0);
#pragma omp parallel num_threads(nt)
  {
    double lanes[kLanes] = {};
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
      const float* xb = x + b * kLanes;
      for (int64_t j = 0; j < kLanes; j++) lanes[j] += static_cast<double>(xb[j]) * xb[j];
    }
    double s = 0.0;
    for (double lane : lanes) s += lane;
    parts[omp_get_thread_num()] = s;
  }
  double total = 0.0;
  for (double p : parts) total += p;
  for (int64_t i = blocks * kLanes; i < n; i++) total += static_cast<double>(x[i]) * x[i];
  return total;
}

// Decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW: the parameter
// shrinks by lr * wd before the Adam step. gradScale folds in gradient clipping.
void adamw_step(float* param, const float* grad, float* m, float* v, int64_t n, float lr,
                float beta1, float beta2, float eps, float weightDecay, int64_t step,
                float gradScale) {
  const float bc1 = 1.f - std::pow(beta1, static_cast<float>(step));
  const float bc2 = 1.f - std::pow(beta2, static_cast<float>(step));
  const float decay = 1.f - lr * weightDecay;
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float g = grad[i] * gradScale;
    m[i] = beta1 * m[i] + (1.f - beta1) * g;
    v[i] = beta2 * v[i] + (1.f - beta2) * g * g;
    const float mhat = m[i] / bc1;
    const float vhat = v[i] / bc2;
    param[i] = param[i] * decay - lr * mhat / (std::sqrt(vhat) + eps);
  }
}

}  // namespace llmfab
