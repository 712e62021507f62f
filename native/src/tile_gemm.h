// A small register-blocked matrix multiply for the tiles inside fused kernels
// (attention), where a oneDNN call per 64 x 64 tile would cost more than the work.
// C[M x N] += A[M x K] * B[K x N], all row-major with leading dimensions lda, ldb, ldc;
// with TransA, A is stored [K x M] and C += A^T B (no transposed copy needed).
//
// A block keeps MR x NR of C in registers. FMA has a latency of ~4 cycles on two ports,
// so about eight independent accumulator vectors keep it busy: 4 rows x 2 vectors
// (NR = 32 floats with AVX-512, 16 with AVX2).
#pragma once
#include <cstdint>

namespace llmfab {

namespace tile {
#ifdef __AVX512F__
constexpr int64_t NR = 32;
#else
constexpr int64_t NR = 16;
#endif

template <bool TransA, int MR, int64_t W>
inline void block(float* C, const float* A, const float* B, int64_t K, int64_t lda, int64_t ldb,
                  int64_t ldc) {
  float acc[MR][W];
  for (int r = 0; r < MR; r++)
#pragma omp simd
    for (int64_t j = 0; j < W; j++) acc[r][j] = C[r * ldc + j];
  for (int64_t k = 0; k < K; k++) {
    const float* b = B + k * ldb;
    for (int r = 0; r < MR; r++) {
      const float a = TransA ? A[k * lda + r] : A[r * lda + k];
#pragma omp simd
      for (int64_t j = 0; j < W; j++) acc[r][j] += a * b[j];
    }
  }
  for (int r = 0; r < MR; r++)
#pragma omp simd
    for (int64_t j = 0; j < W; j++) C[r * ldc + j] = acc[r][j];
}

/** Columns [j0, j1) of every row, W columns at a time. */
template <bool TransA, int64_t W>
inline void columns(float* C, const float* A, const float* B, int64_t M, int64_t j0, int64_t j1,
                    int64_t K, int64_t lda, int64_t ldb, int64_t ldc) {
  const int64_t rowStep = TransA ? 1 : lda;  // from one row of A to the next
  int64_t i = 0;
  for (; i + 4 <= M; i += 4)
    for (int64_t j = j0; j < j1; j += W)
      block<TransA, 4, W>(C + i * ldc + j, A + i * rowStep, B + j, K, lda, ldb, ldc);
  for (; i < M; i++)
    for (int64_t j = j0; j < j1; j += W)
      block<TransA, 1, W>(C + i * ldc + j, A + i * rowStep, B + j, K, lda, ldb, ldc);
}
}  // namespace tile

template <bool TransA = false>
inline void tile_gemm(float* C, const float* A, const float* B, int64_t M, int64_t N, int64_t K,
                      int64_t lda, int64_t ldb, int64_t ldc) {
  const int64_t wide = N - N % tile::NR;
  const int64_t narrow = N - N % 16;
  tile::columns<TransA, tile::NR>(C, A, B, M, 0, wide, K, lda, ldb, ldc);
  if (narrow > wide) tile::columns<TransA, 16>(C, A, B, M, wide, narrow, K, lda, ldb, ldc);
  if (narrow == N) return;
  for (int64_t r = 0; r < M; r++)
    for (int64_t k = 0; k < K; k++) {
      const float a = TransA ? A[k * lda + r] : A[r * lda + k];
      for (int64_t j = narrow; j < N; j++) C[r * ldc + j] += a * B[k * ldb + j];
    }
}

}  // namespace llmfab
