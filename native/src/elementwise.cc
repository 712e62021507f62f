// Elementwise kernels: activations, RoPE, residual adds, dropout. Backward kernels
// add into their gradient buffers (+=), so a tensor used twice sums both gradients.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "bf16.h"
#include "kernels.h"
#include "vecmath.h"

namespace llmfab {

int num_threads() { return omp_get_max_threads(); }
void set_num_threads(int n) { omp_set_num_threads(n); }

namespace {
constexpr int64_t kParallelMin = 1 << 15;
constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2 / pi)

inline float gelu(float v) { return 0.5f * v * (1.f + fast_tanh(kGeluC * (v + 0.044715f * v * v * v))); }

inline float gelu_grad(float v) {
  const float t = fast_tanh(kGeluC * (v + 0.044715f * v * v * v));
  const float du = kGeluC * (1.f + 3.f * 0.044715f * v * v);
  return 0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * du;
}

// n outputs, 1024 at a time: compute(o, i0, len) writes outputs i0 .. i0 + len in fp32 to o,
// which is the output itself when it is fp32, else a stack buffer then stored as bf16 (the
// fp32 values never go to memory).
constexpr int64_t kChunk = 1024;

template <typename Out, typename F>
void produce(Out* out, int64_t n, F compute) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t c = 0; c < chunks; c++) {
    const int64_t i0 = c * kChunk, len = std::min(kChunk, n - i0);
    if constexpr (std::is_same_v<Out, float>) {
      compute(out + i0, i0, len);
    } else {
      alignas(64) float tmp[kChunk];
      compute(tmp, i0, len);
      store_bf16(out + i0, tmp, len);
    }
  }
}
}  // namespace

void gelu_forward(Buf out, Buf x, int64_t n) {
  typed(out, [&](auto* o) {
    typed(x, [&](auto* xs) {
      produce(o, n, [xs](float* r, int64_t i0, int64_t len) {
#pragma omp simd
        for (int64_t i = 0; i < len; i++) r[i] = gelu(ld(xs, i0 + i));
      });
    });
  });
}

// A fresh dx (accumulate false) is written, not added to: it then needs no zero fill and
// one read less.
void gelu_backward(Buf dx, Buf dout, Buf x, int64_t n, bool accumulate) {
  if (accumulate && dx.isBf16) throw std::invalid_argument("gelu_backward: a bf16 gradient cannot be added to");
  typed(dx, [&](auto* d) {
    typed(dout, [&](auto* g) {
      typed(x, [&](auto* xs) {
        produce(d, n, [g, xs, accumulate](float* r, int64_t i0, int64_t len) {
          if (accumulate) {
#pragma omp simd
            for (int64_t i = 0; i < len; i++) r[i] += ld(g, i0 + i) * gelu_grad(ld(xs, i0 + i));
          } else {
#pragma omp simd
            for (int64_t i = 0; i < len; i++) r[i] = ld(g, i0 + i) * gelu_grad(ld(xs, i0 + i));
          }
        });
      });
    });
  });
}

void swiglu_forward(Buf out, Buf gate, Buf up, int64_t n) {
  typed(out, [&](auto* o) {
    typed(gate, [&](auto* gs) {
      typed(up, [&](auto* us) {
        produce(o, n, [gs, us](float* r, int64_t i0, int64_t len) {
#pragma omp simd
          for (int64_t i = 0; i < len; i++) {
            const float g = ld(gs, i0 + i);
            r[i] = g * fast_sigmoid(g) * ld(us, i0 + i);
          }
        });
      });
    });
  });
}

void from_bf16(const uint16_t* src, float* dst, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const float g = gate[i];
    const float s = fast_sigmoid(g);
    dgate[i] += dout[i] * up[i] * s * (1.f + g * (1.f - s));
    dup[i] += dout[i] * g * s;
  }
}

// Rotary embedding, Hugging Face Llama convention: dimension i pairs with i + D/2.
// With `inverse` it rotates by the negative angle, which is the backward pass.
// inv_freq[i] is the angle per position of pair i (D/2 of them, scaling already applied).
void rope_forward(float* out, const float* x, int64_t B, int64_t T, int64_t H, int64_t D,
                  const float* inv_freq, int64_t pos0, bool inverse) {
  const int64_t half = D / 2;
  std::vector<float> cosT(T * half), sinT(T * half);
  for (int64_t t = 0; t < T; t++)
    for (int64_t i = 0; i < half; i++) {
      const double a = static_cast<double>(pos0 + t) * inv_freq[i];
      cosT[t * half + i] = static_cast<float>(std::cos(a));
      sinT[t * half + i] = static_cast<float>(inverse ? -std::sin(a) : std::sin(a));
    }
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++) {
      const float* c = &cosT[t * half];
      const float* s = &sinT[t * half];
      for (int64_t h = 0; h < H; h++) {
        const float* xr = x + ((b * T + t) * H + h) * D;
        float* o = out + ((b * T + t) * H + h) * D;
        for (int64_t i = 0; i < half; i++) {
          const float x1 = xr[i], x2 = xr[i + half];
          const float y1 = x1 * c[i] - x2 * s[i];
          const float y2 = x2 * c[i] + x1 * s[i];
          if (inverse) {  // gradient pass: accumulate
            o[i] += y1;
            o[i + half] += y2;
          } else {
            o[i] = y1;
            o[i + half] = y2;
          }
        }
      }
    }
}

void rope_at(float* out, const float* x, const int32_t* positions, int64_t N, int64_t H, int64_t D,
             const float* inv_freq) {
  const int64_t half = D / 2;
#pragma omp parallel for schedule(static) if (N > 64)
  for (int64_t r = 0; r < N; r++) {
    for (int64_t i = 0; i < half; i++) {
      const double a = static_cast<double>(positions[r]) * inv_freq[i];
      const float c = static_cast<float>(std::cos(a)), s = static_cast<float>(std::sin(a));
      for (int64_t h = 0; h < H; h++) {
        const float* xr = x + (r * H + h) * D;
        float* o = out + (r * H + h) * D;
        const float x1 = xr[i], x2 = xr[i + half];
        o[i] = x1 * c - x2 * s;
        o[i + half] = x2 * c + x1 * s;
      }
    }
  }
}

void add(float* out, const float* a, Buf b, int64_t n) {
  typed(b, [&](auto* bs) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + ld(bs, i);
  });
}

void accumulate(float* dst, const float* src, float scale, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) dst[i] += scale * src[i];
}

void fill(float* x, float value, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) x[i] = value;
}

void copy(float* dst, const float* src, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) dst[i] = src[i];
}

void scale_inplace(float* x, float s, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) x[i] *= s;
}

namespace {
// A counter-based random number: the same (seed, index) always gives the same value, so
// the backward pass regenerates the dropout mask instead of storing it.
inline float uniform(uint64_t seed, uint64_t i) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (i + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
}
}  // namespace

// out = x * mask / (1 - p). The backward pass calls it on dout with accumulate set.
void dropout(float* out, const float* x, int64_t n, float p, uint64_t seed, bool accumulate) {
  const float keep = 1.f / (1.f - p);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float y = uniform(seed, i) < p ? 0.f : x[i] * keep;
    out[i] = accumulate ? out[i] + y : y;
  }
}

}  // namespace llmfab
