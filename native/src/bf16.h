// float -> bfloat16 with round-to-nearest-even (NaN kept a NaN), shared by the kernels.
#pragma once
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

}  // namespace llmfab
