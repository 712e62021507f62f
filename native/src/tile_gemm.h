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
#include <algorithm>
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
inline vec zero() { return _mm512_setzero_ps(); }
#define LLMFAB_TILE_VECTORS 1
#elif defined(__AVX2__) && defined(__FMA__)
using vec = __m256;
constexpr int64_t VL = 8;
inline vec load(const float* p) { return _mm256_loadu_ps(p); }
inline void store(float* p, vec v) { _mm256_storeu_ps(p, v); }
inline vec broadcast(const float* p) { return _mm256_broadcast_ss(p); }
inline vec fma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
inline vec zero() { return _mm256_setzero_ps(); }
#define LLMFAB_TILE_VECTORS 1
#endif

// One A value of row r at step k.
template <bool TransA>
inline const float* a_at(const float* A, int64_t r, int64_t k, int64_t lda) {
  return TransA ? A + k * lda + r : A + r * lda + k;
}

}  // namespace tile

// What a causal tile on the diagonal (queries i0.. against keys j0 = i0..) lets a product
// skip; the skipped work is all zeros or entries the caller never reads.
enum class Skip {
  none,
  // C = Q K^T, scores: query row r reads keys up to r, so the column strips wholly past a
  // row block's last row are not computed (their entries are left as they were).
  scores_past_diagonal,
  // C += P X with P zero past the diagonal (P V, dS K): row r sums over k <= r only.
  a_past_diagonal,
  // C += P^T X with P zero past the diagonal (P^T dO, dS^T Q): key row r sums over the
  // queries k >= r only.
  at_before_diagonal,
};

namespace tile {

#ifdef LLMFAB_TILE_VECTORS
constexpr int MR = 6;  // rows per block

// C[Rows x NV vectors] (+)= A[Rows rows, k0..k1) B[k0..k1, NV vectors], the block's C in
// registers; with Overwrite, C's old values are not read.
template <bool TransA, bool Overwrite, int Rows, int NV>
inline void block(float* C, const float* A, const float* B, int64_t k0, int64_t k1, int64_t lda, int64_t ldb,
                  int64_t ldc) {
  // One flat array, every loop unrolled: GCC then keeps the accumulators in registers
  // (with acc[Rows][NV] it stored each one back to the stack after every FMA).
  vec acc[Rows * NV];
#pragma GCC unroll 16
  for (int r = 0; r < Rows; r++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[r * NV + v] = Overwrite ? zero() : load(C + r * ldc + v * VL);
  for (int64_t k = k0; k < k1; k++) {
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

// One row block of Rows rows (starting at row i) of the column strip starting at column j:
// the k range (or nothing) that skip leaves.
template <bool TransA, bool Overwrite, int Rows, int NV>
inline void row_block(float* C, const float* A, const float* B, int64_t i, int64_t j, int64_t K, int64_t lda,
                      int64_t ldb, int64_t ldc, Skip skip) {
  if (skip == Skip::scores_past_diagonal && j >= i + Rows) return;
  const int64_t k0 = skip == Skip::at_before_diagonal ? std::min(i, K) : 0;
  const int64_t k1 = skip == Skip::a_past_diagonal ? std::min(i + Rows, K) : K;
  const int64_t rowStep = TransA ? 1 : lda;  // from one row of A to the next
  block<TransA, Overwrite, Rows, NV>(C + i * ldc + j, A + i * rowStep, B + j, k0, k1, lda, ldb, ldc);
}

// The columns j .. j + NV vectors of every row: MR rows at a time, then the rest as one block.
template <bool TransA, bool Overwrite, int NV>
inline void column_strip(float* C, const float* A, const float* B, int64_t M, int64_t j, int64_t K, int64_t lda,
                         int64_t ldb, int64_t ldc, Skip skip) {
  int64_t i = 0;
  for (; i + MR <= M; i += MR) row_block<TransA, Overwrite, MR, NV>(C, A, B, i, j, K, lda, ldb, ldc, skip);
  switch (M - i) {
    case 5: return row_block<TransA, Overwrite, 5, NV>(C, A, B, i, j, K, lda, ldb, ldc, skip);
    case 4: return row_block<TransA, Overwrite, 4, NV>(C, A, B, i, j, K, lda, ldb, ldc, skip);
    case 3: return row_block<TransA, Overwrite, 3, NV>(C, A, B, i, j, K, lda, ldb, ldc, skip);
    case 2: return row_block<TransA, Overwrite, 2, NV>(C, A, B, i, j, K, lda, ldb, ldc, skip);
    case 1: return row_block<TransA, Overwrite, 1, NV>(C, A, B, i, j, K, lda, ldb, ldc, skip);
    default: return;
  }
}

// Every whole vector of columns; returns the first column left for the scalar loop.
template <bool TransA, bool Overwrite>
inline int64_t vector_columns(float* C, const float* A, const float* B, int64_t M, int64_t N, int64_t K,
                              int64_t lda, int64_t ldb, int64_t ldc, Skip skip) {
  int64_t j = 0;
  for (; j + 2 * VL <= N; j += 2 * VL) column_strip<TransA, Overwrite, 2>(C, A, B, M, j, K, lda, ldb, ldc, skip);
  for (; j + VL <= N; j += VL) column_strip<TransA, Overwrite, 1>(C, A, B, M, j, K, lda, ldb, ldc, skip);
  return j;
}
#endif

}  // namespace tile

// C (+)= op(A) B: added to C, or written over it (C's old values never read) with overwrite.
// skip: the work a causal diagonal tile lets the product leave out (see Skip).
template <bool TransA = false>
inline void tile_gemm(float* C, const float* A, const float* B, int64_t M, int64_t N, int64_t K, int64_t lda,
                      int64_t ldb, int64_t ldc, bool overwrite = false, Skip skip = Skip::none) {
  int64_t j = 0;
#ifdef LLMFAB_TILE_VECTORS
  j = overwrite ? tile::vector_columns<TransA, true>(C, A, B, M, N, K, lda, ldb, ldc, skip)
                : tile::vector_columns<TransA, false>(C, A, B, M, N, K, lda, ldb, ldc, skip);
#endif
  if (j == N) return;
  // The columns no vector covers, every product (skip only saves work).
  for (int64_t r = 0; r < M; r++) {
    if (overwrite) std::fill(C + r * ldc + j, C + r * ldc + N, 0.f);
    for (int64_t k = 0; k < K; k++) {
      const float a = *tile::a_at<TransA>(A, r, k, lda);
      for (int64_t c = j; c < N; c++) C[r * ldc + c] += a * B[k * ldb + c];
    }
  }
}

}  // namespace llmfab
