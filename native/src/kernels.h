// Declarations of every native kernel. Each kernel works on raw float32 buffers
// owned by JavaScript typed arrays; none allocates tensors or copies inputs.
#pragma once
#include <cstdint>

namespace llmfab {

int num_threads();
void set_num_threads(int n);

// ---- matmul (oneDNN) ----
// C[b] (+)= op(A[b]) * op(B[b]) (+ bias), op = transpose when the flag is set.
// A is [batch, M, K] (or [batch, K, M] when transA), B is [batch, K, N] (or [batch, N, K]).
// bStride0 = 0 broadcasts one B over the batch.
// A buffer that holds fp32 or bf16 values (a Float32Array or a Uint16Array on the JS side):
// matmul operands and outputs, and the inputs and outputs of the kernels that take either.
struct Buf {
  void* data;
  bool isBf16;
};

// Runs f with b's data as a float* or a uint16_t*, as b holds.
template <typename F>
void typed(Buf b, F f) {
  if (b.isBf16) f(static_cast<uint16_t*>(b.data));
  else f(static_cast<float*>(b.data));
}
// C may be bf16 (rounded once as stored; not with accumulate).
void matmul(Buf A, Buf B, Buf C, const float* bias, int64_t batch, int64_t M, int64_t N,
            int64_t K, bool transA, bool transB, bool accumulate, bool bf16, bool broadcastB);
void to_bf16(const float* src, uint16_t* dst, int64_t n);
bool bf16_native_supported();
void round_to_bf16(const float* src, float* dst, int64_t n);

// ---- embedding ----
void embedding_forward(float* out, const int32_t* idx, const float* wte, const float* wpe,
                       int64_t B, int64_t T, int64_t C);
// Inference variant: token i takes position row positions[i] (sequences at any offset).
void embedding_forward_at(float* out, const int32_t* idx, const int32_t* positions, const float* wte,
                          const float* wpe, int64_t N, int64_t C);
void embedding_backward(const float* dout, const int32_t* idx, float* dwte, float* dwpe, int64_t B,
                        int64_t T, int64_t C);

// ---- norms ----
// A residual add fused into the norm that reads its sum: with sum set, the input is
// x + y (y fp32 or bf16), written to sum; without, x itself (y unused).
struct Residual {
  float* sum;
  Buf y;
};
// out may be bf16 (for a matmul to read; the backward passes read x, not out).
void layernorm_forward(Buf out, float* mean, float* rstd, const float* x, Residual res, const float* w,
                       const float* b, int64_t N, int64_t C, float eps);
// dout may be bf16; dx is added to when accumulate, else written over (a fresh buffer).
void layernorm_backward(float* dx, float* dw, float* db, Buf dout, const float* x, const float* w,
                        const float* mean, const float* rstd, int64_t N, int64_t C, bool accumulate);
void rmsnorm_forward(Buf out, float* rstd, const float* x, Residual res, const float* w, int64_t N, int64_t C,
                     float eps);
void rmsnorm_backward(float* dx, float* dw, Buf dout, const float* x, const float* w, const float* rstd,
                      int64_t N, int64_t C, bool accumulate);

// ---- elementwise ----
// Every Buf may be bf16: computed in fp32, read widened, written rounded once (accumulate
// only into an fp32 dx).
void gelu_forward(Buf out, Buf x, int64_t n);
void gelu_backward(Buf dx, Buf dout, Buf x, int64_t n, bool accumulate);
void from_bf16(const uint16_t* src, float* dst, int64_t n);
void swiglu_forward(Buf out, Buf gate, Buf up, int64_t n);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n);
void rope_forward(float* out, const float* x, int64_t B, int64_t T, int64_t H, int64_t D,
                  const float* inv_freq, int64_t pos0, bool inverse);
// Inference variant of RoPE on [N, H, D] rows, row i at position positions[i].
void rope_at(float* out, const float* x, const int32_t* positions, int64_t N, int64_t H, int64_t D,
             const float* inv_freq);
// b may be bf16 (a projection's output added to the fp32 residual stream).
void add(float* out, const float* a, Buf b, int64_t n);
void accumulate(float* dst, const float* src, float scale, int64_t n);
void scale_inplace(float* x, float s, int64_t n);
void fill(float* x, float value, int64_t n);
void copy(float* dst, const float* src, int64_t n);

// Which of dq, dk and dv the attention backward adds into; the others it writes over
// (fresh gradient buffers, so nothing zero-fills them first).
struct GradWrites {
  bool addQ, addK, addV;
};

// The same attention with bf16 tile products (attention_bf16.cc), where the CPU has
// avx512_bf16 and D is a multiple of 16 (attention_bf16_supported). Every Buf may be fp32 or
// bf16 (q, k and v the product's operands, out and dout the output and its gradient, dq, dk
// and dv gradients written over, not added to, when bf16).
bool attention_bf16_supported(int64_t D);
void attention_forward_bf16(Buf out, float* lse, Buf q, Buf k, Buf v, int64_t B, int64_t T, int64_t Hq,
                            int64_t Hkv, int64_t D, int64_t qStride, int64_t kvStride, float scale, bool causal);
void attention_backward_bf16(Buf dq, Buf dk, Buf dv, Buf dout, Buf out, const float* lse, Buf q, Buf k, Buf v,
                             int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t D, int64_t qStride,
                             int64_t kvStride, float scale, bool causal, GradWrites writes);
void dropout(float* out, const float* x, int64_t n, float p, uint64_t seed, bool accumulate);

// ---- attention ----
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t D, int64_t qStride,
                       int64_t kvStride, float scale, bool causal);
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out,
                        const float* lse, const float* q, const float* k, const float* v, int64_t B,
                        int64_t T, int64_t Hq, int64_t Hkv, int64_t D, int64_t qStride,
                        int64_t kvStride, float scale, bool causal, GradWrites writes);

void attention_cached(float* out, const float* q, const float* kcache, const float* vcache,
                      int64_t B, int64_t Tn, int64_t Hq, int64_t Hkv, int64_t D,
                      const int32_t* slots, const int32_t* pos, int64_t capacity, float scale);

// ---- loss ----
// Returns the number of rows whose target is not ignoreIndex; losses[r] is 0 for ignored rows.
// logits may be bf16 (a linear layer's output stored so).
int64_t cross_entropy_forward(float* losses, float* lse, Buf logits, const int32_t* targets, int64_t N, int64_t V,
                              int32_t ignoreIndex);
// dlogits may be bf16 (written over, not added to).
void cross_entropy_backward(Buf dlogits, Buf logits, const float* lse, const int32_t* targets, int64_t N,
                            int64_t V, int32_t ignoreIndex, float scale, bool accumulate);

// ---- optimizer ----
double sum_squares(const float* x, int64_t n);
void adamw_step(float* param, const float* grad, float* m, float* v, int64_t n, float lr,
                float beta1, float beta2, float eps, float weightDecay, int64_t step,
                float gradScale);

}  // namespace llmfab
