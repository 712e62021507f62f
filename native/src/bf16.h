// float <-> bfloat16 with round-to-nearest-even (NaN kept a NaN), shared by the kernels.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace llmfab {

inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN
  u += 0x7fff + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

inline float bf16_to_f32(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// n floats stored as bf16 on the calling thread: how a kernel that computes in fp32 writes
// an output whose consumer wants bf16 (vcvtne2ps2bf16, 32 at a time, where the CPU has it).
inline void store_bf16(uint16_t* dst, const float* src, int64_t n) {
  int64_t i = 0;
#ifdef __AVX512BF16__
  for (; i + 32 <= n; i += 32) {
    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
    _mm512_storeu_si512(dst + i, reinterpret_cast<__m512i>(v));
  }
#endif
  for (; i < n; i++) dst[i] = f32_to_bf16(src[i]);
}

// A value of an fp32 or a bf16 buffer, widened to fp32.
inline float ld(const float* p, int64_t i) { return p[i]; }
inline float ld(const uint16_t* p, int64_t i) { return bf16_to_f32(p[i]); }

// Row r of a [rows, n] matrix in fp32: the row itself, or widened from bf16 into buf.
inline const float* widened_row(const float* m, int64_t r, int64_t n, float*) { return m + r * n; }
inline const float* widened_row(const uint16_t* m, int64_t r, int64_t n, float* buf) {
  const uint16_t* row = m + r * n;
#pragma omp simd
  for (int64_t i = 0; i < n; i++) buf[i] = bf16_to_f32(row[i]);
  return buf;
}

}  // namespace llmfab
