// Attention (causal or not) with bf16 tile products, the same flash-style algorithm and tiling as
// attention.cc: operands are rounded to bf16, every sum is fp32, the online softmax and the
// log-sum-exp stay fp32. The products run on AMX tiles where the CPU has them, else on
// avx512_bf16's vdpbf16ps (on Sapphire Rapids that is no faster than fp32 FMAs; AMX is
// what pays). Used when matmuls run in bf16 natively and D is a multiple of 16;
// attention.cc is the fp32 path and reference.
//
// vdpbf16ps reads its operands in pairs along the summed dimension k: A row r gives the
// pair (A[r][k], A[r][k+1]) as one 32-bit word (bf16 rows laid out as usual), and B gives,
// for 16 columns j, the words (B[k][j], B[k+1][j]): "pairs of rows". Each head's Q, K, V
// (and dO) are laid out once in the forms its products need.
#include "kernels.h"

#include <stdexcept>

#ifdef __AVX512BF16__
#include <immintrin.h>

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "attention_rows.h"
#include "vecmath.h"

namespace llmfab {

namespace {
using namespace attention_rows;

// C[M x N] += A[M x 2*K2] B[2*K2 x N]: A bf16 rows (lda in 32-bit pairs), B pairs of rows
// (ldb words between pair rows), C fp32 (ldc floats). N is a multiple of 16.
template <int MR, int NV>
inline void dp_block(float* C, const uint32_t* A, const uint32_t* B, int64_t K2, int64_t lda, int64_t ldb,
                     int64_t ldc) {
  __m512 acc[MR][NV];
  for (int r = 0; r < MR; r++)
    for (int v = 0; v < NV; v++) acc[r][v] = _mm512_loadu_ps(C + r * ldc + 16 * v);
  for (int64_t k = 0; k < K2; k++) {
    __m512bh b[NV];
    for (int v = 0; v < NV; v++) b[v] = (__m512bh)_mm512_loadu_si512(B + k * ldb + 16 * v);
    for (int r = 0; r < MR; r++) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(static_cast<int>(A[r * lda + k]));
      for (int v = 0; v < NV; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], a, b[v]);
    }
  }
  for (int r = 0; r < MR; r++)
    for (int v = 0; v < NV; v++) _mm512_storeu_ps(C + r * ldc + 16 * v, acc[r][v]);
}

template <int MR>
inline void dp_row_block(float* C, const uint32_t* A, const uint32_t* B, int64_t N, int64_t K2, int64_t lda,
                         int64_t ldb, int64_t ldc) {
  int64_t j = 0;
  for (; j + 32 <= N; j += 32) dp_block<MR, 2>(C + j, A, B + j, K2, lda, ldb, ldc);
  if (j < N) dp_block<MR, 1>(C + j, A, B + j, K2, lda, ldb, ldc);
}

#ifdef __AMX_BF16__
// AMX: the tile unit multiplies 16 x 32 bf16 by 32 x 16 bf16 into 16 x 16 fp32 in one
// instruction. Linux hands out the tile registers only after the process asks for them.
bool amx_usable() {
  static const bool ok = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
  return ok;
}

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t startRow = 0;
  uint8_t reserved[14] = {};
  uint16_t bytesPerRow[16] = {};
  uint8_t rows[16] = {};
};

// Every tile 16 rows of 64 bytes: C tiles 16 x 16 fp32, A and B tiles 16 x 16 words.
// Loaded before each product: oneDNN's kernels release the tiles after they run.
void amx_configure() {
  static const TileConfig config = [] {
    TileConfig c;
    for (int t = 0; t < 8; t++) {
      c.bytesPerRow[t] = 64;
      c.rows[t] = 16;
    }
    return c;
  }();
  _tile_loadconfig(&config);
}

// dp_gemm for M, N, K2 multiples of 16: C in 16 x 16 blocks, A and B in 16 x 16-word
// tiles. Where M and N allow, four C blocks (32 x 32) stay in tmm0-3 while two A tiles
// (tmm4-5) and two B tiles (tmm6-7) feed them: each tile loaded serves two products, not one.
// zero: C = A B (the C tiles start at zero and C is not read); else C += A B.
// The tiles are configured by amx_begin at the start of each thread's work.
void amx_gemm(float* C, const uint32_t* A, const uint32_t* B, int64_t M, int64_t N, int64_t K2, int64_t lda,
              int64_t ldb, int64_t ldc, bool zero) {
  const int64_t sc = ldc * 4, sa = lda * 4, sb = ldb * 4;
  if (M % 32 == 0 && N % 32 == 0) {
    for (int64_t i = 0; i < M; i += 32)
      for (int64_t j = 0; j < N; j += 32) {
        float* c = C + i * ldc + j;
        if (zero) {
          _tile_zero(0);
          _tile_zero(1);
          _tile_zero(2);
          _tile_zero(3);
        } else {
          _tile_loadd(0, c, sc);
          _tile_loadd(1, c + 16, sc);
          _tile_loadd(2, c + 16 * ldc, sc);
          _tile_loadd(3, c + 16 * ldc + 16, sc);
        }
        for (int64_t k = 0; k < K2; k += 16) {
          _tile_loadd(4, A + i * lda + k, sa);
          _tile_loadd(5, A + (i + 16) * lda + k, sa);
          _tile_loadd(6, B + k * ldb + j, sb);
          _tile_loadd(7, B + k * ldb + j + 16, sb);
          _tile_dpbf16ps(0, 4, 6);
          _tile_dpbf16ps(1, 4, 7);
          _tile_dpbf16ps(2, 5, 6);
          _tile_dpbf16ps(3, 5, 7);
        }
        _tile_stored(0, c, sc);
        _tile_stored(1, c + 16, sc);
        _tile_stored(2, c + 16 * ldc, sc);
        _tile_stored(3, c + 16 * ldc + 16, sc);
      }
    return;
  }
  for (int64_t i = 0; i < M; i += 16)
    for (int64_t j = 0; j < N; j += 16) {
      if (zero) _tile_zero(0);
      else _tile_loadd(0, C + i * ldc + j, sc);
      for (int64_t k = 0; k < K2; k += 16) {
        _tile_loadd(4, A + i * lda + k, sa);
        _tile_loadd(6, B + k * ldb + j, sb);
        _tile_dpbf16ps(0, 4, 6);
      }
      _tile_stored(0, C + i * ldc + j, sc);
    }
}
#endif

// Called by each thread before its products: configures the AMX tiles where they are used
// (oneDNN's kernels release them after they run, so every kernel call configures again).
void amx_begin() {
#ifdef __AMX_BF16__
  if (amx_usable()) amx_configure();
#endif
}

// C (M x N, ldc floats a row) = A B when zero, else C += A B.
void dp_gemm(float* C, const uint32_t* A, const uint32_t* B, int64_t M, int64_t N, int64_t K2, int64_t lda,
             int64_t ldb, int64_t ldc, bool zero = false) {
#ifdef __AMX_BF16__
  if (M % 16 == 0 && N % 16 == 0 && K2 % 16 == 0 && amx_usable())
    return amx_gemm(C, A, B, M, N, K2, lda, ldb, ldc, zero);
#endif
  if (zero)
    for (int64_t i = 0; i < M; i++) std::fill(C + i * ldc, C + i * ldc + N, 0.f);
  int64_t i = 0;
  for (; i + 4 <= M; i += 4) dp_row_block<4>(C + i * ldc, A + i * lda, B, N, K2, lda, ldb, ldc);
  for (; i < M; i++) dp_row_block<1>(C + i * ldc, A + i * lda, B, N, K2, lda, ldb, ldc);
}

// n floats (a multiple of 16) as n / 2 words of bf16 pairs: (src[0], src[1]), (src[2], src[3]), ...
inline void cvt_row(uint32_t* dst, const float* src, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
    _mm512_storeu_si512(dst + i / 2, (__m512i)v);
  }
  if (i < n) _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i / 2), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + i)));
}

// n floats of two rows (n a multiple of 16) as words (r0[j], r1[j]) for j = 0 .. n - 1.
inline void interleave_rows(uint32_t* dst, const float* r0, const float* r1, int64_t n) {
  alignas(64) static const int16_t order[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                                8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i idx = _mm512_load_si512(order);
  for (int64_t j = 0; j < n; j += 16) {
    const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(r1 + j), _mm512_loadu_ps(r0 + j));
    _mm512_storeu_si512(dst + j, _mm512_permutexvar_epi16(idx, both));
  }
}

// Two bf16 rows of n values as words (r0[j], r1[j]).
inline void interleave_rows(uint32_t* dst, const uint16_t* r0, const uint16_t* r1, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; j++) dst[j] = static_cast<uint32_t>(r0[j]) | (static_cast<uint32_t>(r1[j]) << 16);
}

alignas(64) const float kZeros[1024] = {};
alignas(64) const uint16_t kZeros16[1024] = {};
inline const float* zeros(const float*) { return kZeros; }
inline const uint16_t* zeros(const uint16_t*) { return kZeros16; }

// A row of D values as D / 2 words of bf16 pairs: converted from fp32, copied from bf16.
inline void pairs_row(uint32_t* dst, const float* src, int64_t D) { cvt_row(dst, src, D); }
inline void pairs_row(uint32_t* dst, const uint16_t* src, int64_t D) { std::memcpy(dst, src, D * 2); }

// One head's T x D rows (stride values apart, fp32 or bf16) as bf16 rows [Tp][D/2 words],
// rows past T zero.
template <typename S>
void rows_bf16(uint32_t* dst, const S* src, int64_t T, int64_t Tp, int64_t stride, int64_t D) {
  for (int64_t t = 0; t < Tp; t++) pairs_row(dst + t * (D / 2), t < T ? src + t * stride : zeros(src), D);
}

// The same rows as the B operand of a product summed over d (X^T): [D/2][Tp] words.
// In blocks of 16 rows, so that each destination row gets a whole cache line at a time (row
// by row, every word went to another line, 4 KiB apart on a 256-row head: 12% of backward).
void transposed_pairs(uint32_t* dst, const uint32_t* rows, int64_t Tp, int64_t D) {
  for (int64_t t0 = 0; t0 < Tp; t0 += 16)
    for (int64_t d2 = 0; d2 < D / 2; d2++)
      for (int64_t t = t0; t < t0 + 16; t++) dst[d2 * Tp + t] = rows[t * (D / 2) + d2];
}

// The rows as the B operand of a product summed over t: pairs of rows [Tp/2][D] words.
template <typename S>
void row_pairs(uint32_t* dst, const S* src, int64_t T, int64_t Tp, int64_t stride, int64_t D) {
  for (int64_t t = 0; t < Tp; t += 2)
    interleave_rows(dst + (t / 2) * D, t < T ? src + t * stride : zeros(src),
                    t + 1 < T ? src + (t + 1) * stride : zeros(src), D);
}

// b advanced by n values.
inline Buf at(Buf b, int64_t n) { return {static_cast<char*>(b.data) + n * (b.isBf16 ? 2 : 4), b.isBf16}; }

// rows_bf16 and row_pairs of a Buf.
void rows_bf16(uint32_t* dst, Buf src, int64_t T, int64_t Tp, int64_t stride, int64_t D) {
  typed(src, [&](auto* p) { rows_bf16(dst, p, T, Tp, stride, D); });
}
void row_pairs(uint32_t* dst, Buf src, int64_t T, int64_t Tp, int64_t stride, int64_t D) {
  typed(src, [&](auto* p) { row_pairs(dst, p, T, Tp, stride, D); });
}

// 16 x 16 32-bit words: r[i] holds row i before, column i after (unpacks of words, then of
// word pairs, then two rounds of 128-bit lane shuffles).
inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; i++) {
    r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 4; k++) {
      t[8 * i + k] = _mm512_shuffle_i32x4(r[8 * i + k], r[8 * i + 4 + k], 0x88);
      t[8 * i + 4 + k] = _mm512_shuffle_i32x4(r[8 * i + k], r[8 * i + 4 + k], 0xdd);
    }
  for (int k = 0; k < 8; k++) {
    r[k] = _mm512_shuffle_i32x4(t[k], t[8 + k], 0x88);
    r[8 + k] = _mm512_shuffle_i32x4(t[k], t[8 + k], 0xdd);
  }
}

// A BT x BT fp32 tile as bf16 rows ([BT][BT/2] words), or transposed (dst row j = column j).
void tile_rows(uint32_t* dst, const float* tile) {
  for (int64_t i = 0; i < BT; i++) cvt_row(dst + i * (BT / 2), tile + i * BT, BT);
}
// Rows i and i + 1 are interleaved into words (pair p = i / 2), then the [pairs][columns]
// words are transposed 16 x 16 at a time in registers: word by word, the scattered stores
// took a sixth of the backward pass.
void tile_transposed(uint32_t* dst, const float* tile) {
  alignas(64) uint32_t w[BT / 2][BT];
  for (int64_t p = 0; p < BT / 2; p++) interleave_rows(w[p], tile + 2 * p * BT, tile + (2 * p + 1) * BT, BT);
  for (int64_t p0 = 0; p0 < BT / 2; p0 += 16)
    for (int64_t j0 = 0; j0 < BT; j0 += 16) {
      __m512i r[16];
      for (int k = 0; k < 16; k++) r[k] = _mm512_load_si512(&w[p0 + k][j0]);
      transpose16(r);
      for (int k = 0; k < 16; k++) _mm512_storeu_si512(dst + (j0 + k) * (BT / 2) + p0, r[k]);
    }
}


// Rows past the end of a partial tile are zero in every operand, so products may run on
// whole blocks of 16 rows (what the AMX tiles take).
inline int64_t up16(int64_t n) { return (n + 15) / 16 * 16; }

}  // namespace

bool attention_bf16_supported(int64_t D) { return D % 16 == 0 && D <= 1024; }

void attention_forward_bf16(Buf out, float* lse, Buf q, Buf k, Buf v, int64_t B, int64_t T, int64_t Hq,
                            int64_t Hkv, int64_t D, int64_t qStride, int64_t kvStride, float scale, bool causal) {
  const int64_t group = Hq / Hkv;
  const int64_t Tp = padded(T);
  const int64_t D2 = D / 2;
#pragma omp parallel
  {
    std::vector<uint32_t> q16(Tp * D2), k16(Tp * D2), kp(D2 * Tp), v2(Tp / 2 * D), p16(BT * BT / 2);
    std::vector<float> s(BT * BT), o(BT * D), m(BT), l(BT);
    amx_begin();
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++) {
      for (int64_t h = 0; h < Hq; h++) {
        const int64_t kh = h / group;
        rows_bf16(q16.data(), at(q, b * T * qStride + h * D), T, Tp, qStride, D);
        rows_bf16(k16.data(), at(k, b * T * kvStride + kh * D), T, Tp, kvStride, D);
        transposed_pairs(kp.data(), k16.data(), Tp, D);
        row_pairs(v2.data(), at(v, b * T * kvStride + kh * D), T, Tp, kvStride, D);
        for (int64_t i0 = 0; i0 < T; i0 += BT) {
          const int64_t nq = std::min(BT, T - i0);
          std::fill(o.begin(), o.end(), 0.f);
          std::fill(m.begin(), m.end(), -INFINITY);
          std::fill(l.begin(), l.end(), 0.f);
          for (int64_t j0 = 0; j0 < keys_end(causal, i0, nq, T); j0 += BT) {
            const int64_t nk = std::min(BT, T - j0);
            dp_gemm(s.data(), q16.data() + i0 * D2, kp.data() + j0, up16(nq), BT, D2, D2, Tp, BT, true);  // S = Q K^T
            online_softmax(s.data(), o.data(), m.data(), l.data(), causal, nq, i0, j0, nk, D, scale);
            tile_rows(p16.data(), s.data());
            dp_gemm(o.data(), p16.data(), v2.data() + (j0 / 2) * D, up16(nq), D, BT / 2, BT / 2, D, D);  // O += P V
          }
          typed(at(out, ((b * T + i0) * Hq + h) * D), [&](auto* rows) {
            write_rows(rows, lse + (b * Hq + h) * T + i0, o.data(), m.data(), l.data(), nq, Hq * D, D);
          });
        }
      }
    }
  }
}

void attention_backward_bf16(Buf dq, Buf dk, Buf dv, Buf dout, Buf out, const float* lse, Buf q, Buf k, Buf v,
                             int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t D, int64_t qStride,
                             int64_t kvStride, float scale, bool causal, GradWrites writes) {
  const int64_t group = Hq / Hkv;
  const int64_t rowStride = Hq * D;
  const int64_t Tp = padded(T);
  const int64_t D2 = D / 2;
#pragma omp parallel
  {
    std::vector<uint32_t> k16(Tp * D2), kp(D2 * Tp), k2(Tp / 2 * D), v16(Tp * D2), vp(D2 * Tp), q16(Tp * D2),
        q2(Tp / 2 * D), do16(Tp * D2), do2(Tp / 2 * D), a16(BT * BT / 2);
    std::vector<float> Drow(T), dqAcc(Tp * D), s(BT * BT), dp(BT * BT), dkt(BT * D), dvt(BT * D);
    amx_begin();
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++) {
      for (int64_t kh = 0; kh < Hkv; kh++) {
        const Buf kb = at(k, b * T * kvStride + kh * D);
        const Buf vb = at(v, b * T * kvStride + kh * D);
        rows_bf16(k16.data(), kb, T, Tp, kvStride, D);
        transposed_pairs(kp.data(), k16.data(), Tp, D);
        row_pairs(k2.data(), kb, T, Tp, kvStride, D);
        rows_bf16(v16.data(), vb, T, Tp, kvStride, D);
        transposed_pairs(vp.data(), v16.data(), Tp, D);
        for (int64_t h = kh * group; h < (kh + 1) * group; h++) {
          const Buf qb = at(q, b * T * qStride + h * D);
          const Buf dob = at(dout, b * T * rowStride + h * D);
          const Buf ob = at(out, b * T * rowStride + h * D);
          const float* L = lse + (b * Hq + h) * T;
          rows_bf16(q16.data(), qb, T, Tp, qStride, D);
          row_pairs(q2.data(), qb, T, Tp, qStride, D);
          rows_bf16(do16.data(), dob, T, Tp, rowStride, D);
          row_pairs(do2.data(), dob, T, Tp, rowStride, D);
          typed(dob, [&](auto* g) {
            typed(ob, [&](auto* o) { output_dots(Drow.data(), g, o, T, rowStride, D); });
          });
          std::fill(dqAcc.begin(), dqAcc.end(), 0.f);
          for (int64_t j0 = 0; j0 < T; j0 += BT) {
            const int64_t nk = std::min(BT, T - j0);
            std::fill(dkt.begin(), dkt.end(), 0.f);
            std::fill(dvt.begin(), dvt.end(), 0.f);
            for (int64_t i0 = first_query(causal, j0); i0 < T; i0 += BT) {
              const int64_t nq = std::min(BT, T - i0);
              dp_gemm(s.data(), q16.data() + i0 * D2, kp.data() + j0, up16(nq), BT, D2, D2, Tp, BT, true);    // S = Q K^T
              dp_gemm(dp.data(), do16.data() + i0 * D2, vp.data() + j0, up16(nq), BT, D2, D2, Tp, BT, true);  // dP = dO V^T
              probabilities_and_ds(s.data(), dp.data(), L, Drow.data(), causal, nq, i0, j0, nk, scale);
              tile_transposed(a16.data(), s.data());
              dp_gemm(dvt.data(), a16.data(), do2.data() + (i0 / 2) * D, up16(nk), D, BT / 2, BT / 2, D, D);  // dV += P^T dO
              tile_transposed(a16.data(), dp.data());
              dp_gemm(dkt.data(), a16.data(), q2.data() + (i0 / 2) * D, up16(nk), D, BT / 2, BT / 2, D, D);  // dK += dS^T Q
              tile_rows(a16.data(), dp.data());
              dp_gemm(&dqAcc[i0 * D], a16.data(), k2.data() + (j0 / 2) * D, up16(nq), D, BT / 2, BT / 2, D, D);  // dQ += dS K
            }
            const int64_t kvAt = b * T * kvStride + kh * D + j0 * kvStride;
            typed(at(dk, kvAt), [&](auto* d) { put_rows(d, dkt.data(), nk, kvStride, D, writes.addK || h > kh * group); });
            typed(at(dv, kvAt), [&](auto* d) { put_rows(d, dvt.data(), nk, kvStride, D, writes.addV || h > kh * group); });
          }
          typed(at(dq, b * T * qStride + h * D), [&](auto* d) { put_rows(d, dqAcc.data(), T, qStride, D, writes.addQ); });
        }
      }
    }
  }
}

}  // namespace llmfab

#else  // no avx512_bf16: nothing calls these (attention_bf16_supported is false)

namespace llmfab {
bool attention_bf16_supported(int64_t) { return false; }
void attention_forward_bf16(Buf, float*, Buf, Buf, Buf, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                            float, bool) {
  throw std::logic_error("bf16 attention without avx512_bf16");
}
void attention_backward_bf16(Buf, Buf, Buf, Buf, Buf, const float*, Buf, Buf, Buf, int64_t, int64_t, int64_t, int64_t,
                             int64_t, int64_t, int64_t, float, bool, GradWrites) {
  throw std::logic_error("bf16 attention without avx512_bf16");
}
}  // namespace llmfab

#endif
