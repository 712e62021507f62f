// A small register-blocked matrix multiply for the tiles inside fused kernels
// (attention), where a oneDNN call per 64 x 64 tile would cost more than the work.
// C[M x N] += A[M x K] * B[K x N], all row-major with leading dimensions lda, ldb, ldc.
#pragma once
#include <cstdint>

namespace llmfab {

namespace tile {
constexpr int64_t NR = 16;  // columns per register block (two AVX2 / one AVX-512 vector)

template <int MR>
inline void block(float* C, const float* A, const float* B, int64_t K, int64_t lda, int64_t ldb,
                  int64_t ldc) {
  float acc[MR][NR];
  for (int r = 0; r < MR; r++)
#pragma omp simd
    for (int64_t j = 0; j < NR; j++) acc[r][j] = C[r * ldc + j];
  for (int64_t k = 0; k < K; k++) {
    const float* b = B + k * ldb;
    for (int r = 0; r < MR; r++) {
      const float a = A[r * lda + k];
#pragma omp simd
      for (int64_t j = 0; j < NR; j++) acc[r][j] += a * b[j];
    }
  }
  for (int r = 0; r < MR; r++)
#pragma omp simd
    for (int64_t j = 0; j < NR; j++) C[r * ldc + j] = acc[r][j];
}
}  // namespace tile

inline void tile_gemm(float* C, const float* A, const float* B, int64_t M, int64_t N, int64_t K,
                      int64_t lda, int64_t ldb, int64_t ldc) {
  const int64_t nFull = N - N % tile::NR;
  int64_t i = 0;
  for (; i + 4 <= M; i += 4)
    for (int64_t j = 0; j < nFull; j += tile::NR)
      tile::block<4>(C + i * ldc + j, A + i * lda, B + j, K, lda, ldb, ldc);
  for (; i < M; i++)
    for (int64_t j = 0; j < nFull; j += tile::NR)
      tile::block<1>(C + i * ldc + j, A + i * lda, B + j, K, lda, ldb, ldc);
  if (nFull == N) return;
  for (int64_t r = 0; r < M; r++)
    for (int64_t k = 0; k < K; k++) {
      const float a = A[r * lda + k];
      for (int64_t j = nFull; j < N; j++) C[r * ldc + j] += a * B[k * ldb + j];
    }
}

}  // namespace llmfab
