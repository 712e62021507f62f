// A small register-blocked matrix multiply for the tiles inside fused kernels
// (attention), where a oneDNN call per 64 x 64 tile would cost more than the work.
// C[M x N] += A[M x K] * B[K x N], all row-major with leading dimensions lda, ldb, ldc;
// with TransA, A is stored [K x M] and C += A^T B (no transposed copy needed).
//
// A block keeps MR x 2 vectors of C in registers and, per k, loads B's two vectors once
// and broadcasts one A value per row (BLIS's Haswell kernel shape: 6 x 16 floats on AVX2,
// twelve accumulators hide FMA's latency on two ports). Written with intrinsics: left to
// auto-vectorization the accumulators went through the stack and the tiles ran at a
// third of the FMA peak (30 against 75 GFLOP/s a core on Zen 3).
#pragma once
#include <cstdint>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace llmfab {

namespace tile {

#if defined(__AVX512F__)
using vec = __m512;
constexpr int64_t VL = 16;
inline vec load(const float* p) { return _mm512_loadu_ps(p); }
inline void store(float* p, vec v) { _mm512_storeu_ps(p, v); }
inline vec broadcast(const float* p) { return _mm512_set1_ps(*p); }
inline vec fma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
#define LLMFAB_TILE_VECTORS 1
#elif defined(__AVX2__) && defined(__FMA__)
using vec = __m256;
constexpr int64_t VL = 8;
inline vec load(const float* p) { return _mm256_loadu_ps(p); }
inline void store(float* p, vec v) { _mm256_storeu_ps(p, v); }
inline vec broadcast(const float* p) { return _mm256_broadcast_ss(p); }
inline vec fma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
#define LLMFAB_TILE_VECTORS 1
#endif

// One A value of row r at step k.
template <bool TransA>
inline const float* a_at(const float* A, int64_t r, int64_t k, int64_t lda) {
  return TransA ? A + k * lda + r : A + r * lda + k;
}

#ifdef LLMFAB_TILE_VECTORS
constexpr int MR = 6;  // rows per block

// C[MR x NV vectors] += A[MR rows] B[:, NV vectors], the block's C held in registers.
template <bool TransA, int Rows, int NV>
inline void block(float* C, const float* A, const float* B, int64_t K, int64_t lda, int64_t ldb,
                  int64_t ldc) {
  // One flat array, every loop unrolled: GCC then keeps the accumulators in registers
  // (with acc[Rows][NV] it stored each one back to the stack after every FMA).
  vec acc[Rows * NV];
#pragma GCC unroll 16
  for (int r = 0; r < Rows; r++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[r * NV + v] = load(C + r * ldc + v * VL);
  for (int64_t k = 0; k < K; k++) {
    vec b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) b[v] = load(B + k * ldb + v * VL);
#pragma GCC unroll 16
    for (int r = 0; r < Rows; r++) {
      const vec a = broadcast(a_at<TransA>(A, r, k, lda));
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[r * NV + v] = fma(a, b[v], acc[r * NV + v]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < Rows; r++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) store(C + r * ldc + v * VL, acc[r * NV + v]);
}

// Rows MR at a time, then the remainder (fewer than MR) as one block.
template <bool TransA, int NV>
inline void column_strip(float* C, const float* A, const float* B, int64_t M, int64_t K, int64_t lda,
                         int64_t ldb, int64_t ldc) {
  const int64_t rowStep = TransA ? 1 : lda;  // from one row of A to the next
  int64_t i = 0;
  for (; i + MR <= M; i += MR) block<TransA, MR, NV>(C + i * ldc, A + i * rowStep, B, K, lda, ldb, ldc);
  float* c = C + i * ldc;
  const float* a = A + i * rowStep;
  switch (M - i) {
    case 5: return block<TransA, 5, NV>(c, a, B, K, lda, ldb, ldc);
    case 4: return block<TransA, 4, NV>(c, a, B, K, lda, ldb, ldc);
    case 3: return block<TransA, 3, NV>(c, a, B, K, lda, ldb, ldc);
    case 2: return block<TransA, 2, NV>(c, a, B, K, lda, ldb, ldc);
    case 1: return block<TransA, 1, NV>(c, a, B, K, lda, ldb, ldc);
    default: return;
  }
}
#endif

}  // namespace tile

template <bool TransA = false>
inline void tile_gemm(float* C, const float* A, const float* B, int64_t M, int64_t N, int64_t K,
                      int64_t lda, int64_t ldb, int64_t ldc) {
  int64_t j = 0;
#ifdef LLMFAB_TILE_VECTORS
  using tile::VL;
  for (; j + 2 * VL <= N; j += 2 * VL) tile::column_strip<TransA, 2>(C + j, A, B + j, M, K, lda, ldb, ldc);
  for (; j + VL <= N; j += VL) tile::column_strip<TransA, 1>(C + j, A, B + j, M, K, lda, ldb, ldc);
#endif
  if (j == N) return;
  for (int64_t r = 0; r < M; r++)
    for (int64_t k = 0; k < K; k++) {
      const float a = *tile::a_at<TransA>(A, r, k, lda);
      for (int64_t c = j; c < N; c++) C[r * ldc + c] += a * B[k * ldb + c];
    }
}

}  // namespace llmfab
