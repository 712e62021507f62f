// N-API bindings. Every tensor argument is a JavaScript Float32Array (or Int32Array for
// indices) whose memory the kernel reads and writes in place: nothing is copied.
#include <fcntl.h>
#include <napi.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "kernels.h"

namespace {

using namespace llmfab;

float* F(const Napi::CallbackInfo& info, size_t i) {
  if (info[i].IsNull() || info[i].IsUndefined()) return nullptr;
  if (!info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a Float32Array");
  return info[i].As<Napi::Float32Array>().Data();
}

// A buffer of fp32 (a Float32Array) or bf16 values (a Uint16Array).
Buf Op(const Napi::CallbackInfo& info, size_t i) {
  if (info[i].IsTypedArray() && info[i].As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array)
    return {info[i].As<Napi::Uint16Array>().Data(), true};
  return {F(info, i), false};
}

uint16_t* H(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint16_array)
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a Uint16Array");
  return info[i].As<Napi::Uint16Array>().Data();
}

int32_t* I(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be an Int32Array");
  return info[i].As<Napi::Int32Array>().Data();
}

int64_t N(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<int64_t>(info[i].As<Napi::Number>().DoubleValue());
}
float R(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().FloatValue(); }
bool B(const Napi::CallbackInfo& info, size_t i) { return info[i].ToBoolean().Value(); }

Napi::Value Undefined(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  set_num_threads(static_cast<int>(N(info, 0)));
  return Undefined(info);
}
Napi::Value GetThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), num_threads());
}
Napi::Value Bf16Native(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), bf16_native_supported());
}

// matmul(A, B, C, bias, batch, M, N, K, transA, transB, accumulate, bf16, broadcastB)
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  try {
    matmul(Op(info, 0), Op(info, 1), Op(info, 2), F(info, 3), N(info, 4), N(info, 5), N(info, 6),
           N(info, 7), B(info, 8), B(info, 9), B(info, 10), B(info, 11), B(info, 12));
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string("oneDNN matmul failed: ") + e.what());
  }
  return Undefined(info);
}
// toBf16(src, dst: Uint16Array, n)
Napi::Value ToBf16(const Napi::CallbackInfo& info) {
  to_bf16(F(info, 0), H(info, 1), N(info, 2));
  return Undefined(info);
}
// fromBf16(src: Uint16Array, dst, n)
Napi::Value FromBf16(const Napi::CallbackInfo& info) {
  from_bf16(H(info, 0), F(info, 1), N(info, 2));
  return Undefined(info);
}
Napi::Value RoundBf16(const Napi::CallbackInfo& info) {
  round_to_bf16(F(info, 0), F(info, 1), N(info, 2));
  return Undefined(info);
}

Napi::Value EmbeddingForward(const Napi::CallbackInfo& info) {
  embedding_forward(F(info, 0), I(info, 1), F(info, 2), F(info, 3), N(info, 4), N(info, 5), N(info, 6));
  return Undefined(info);
}
Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info) {
  embedding_backward(F(info, 0), I(info, 1), F(info, 2), F(info, 3), N(info, 4), N(info, 5), N(info, 6));
  return Undefined(info);
}

// The optional (sum, y) pair at arguments i, i + 1 of a norm's forward: both or neither.
Residual ResidualArgs(const Napi::CallbackInfo& info, size_t i) {
  const Residual res{F(info, i), Op(info, i + 1)};
  if ((res.sum == nullptr) != (res.y.data == nullptr))
    throw Napi::TypeError::New(info.Env(), "a norm's residual needs both sum and y");
  return res;
}

// layerNormForward(out, mean, rstd, x, w, b, n, c, eps[, sum, y]): with sum and y, the
// residual add runs in the same pass: sum = x + y, out = LayerNorm(sum).
Napi::Value LayerNormForward(const Napi::CallbackInfo& info) {
  layernorm_forward(Op(info, 0), F(info, 1), F(info, 2), F(info, 3), ResidualArgs(info, 9), F(info, 4),
                    F(info, 5), N(info, 6), N(info, 7), R(info, 8));
  return Undefined(info);
}
Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  layernorm_backward(F(info, 0), F(info, 1), F(info, 2), Op(info, 3), F(info, 4), F(info, 5),
                     F(info, 6), F(info, 7), N(info, 8), N(info, 9), B(info, 10));
  return Undefined(info);
}
// rmsNormForward(out, rstd, x, w, n, c, eps[, sum, y]): as layerNormForward.
Napi::Value RmsNormForward(const Napi::CallbackInfo& info) {
  rmsnorm_forward(Op(info, 0), F(info, 1), F(info, 2), ResidualArgs(info, 7), F(info, 3), N(info, 4),
                  N(info, 5), R(info, 6));
  return Undefined(info);
}
Napi::Value RmsNormBackward(const Napi::CallbackInfo& info) {
  rmsnorm_backward(F(info, 0), F(info, 1), Op(info, 2), F(info, 3), F(info, 4), F(info, 5),
                   N(info, 6), N(info, 7), B(info, 8));
  return Undefined(info);
}

Napi::Value GeluForward(const Napi::CallbackInfo& info) {
  gelu_forward(Op(info, 0), Op(info, 1), N(info, 2));
  return Undefined(info);
}
Napi::Value GeluBackward(const Napi::CallbackInfo& info) {
  try {
    gelu_backward(Op(info, 0), Op(info, 1), Op(info, 2), N(info, 3), B(info, 4));
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
  return Undefined(info);
}
Napi::Value SwigluForward(const Napi::CallbackInfo& info) {
  swiglu_forward(Op(info, 0), Op(info, 1), Op(info, 2), N(info, 3));
  return Undefined(info);
}
Napi::Value SwigluBackward(const Napi::CallbackInfo& info) {
  swiglu_backward(F(info, 0), F(info, 1), F(info, 2), F(info, 3), F(info, 4), N(info, 5));
  return Undefined(info);
}
// rope(out, x, B, T, H, D, invFreq, pos0, inverse)
Napi::Value Rope(const Napi::CallbackInfo& info) {
  rope_forward(F(info, 0), F(info, 1), N(info, 2), N(info, 3), N(info, 4), N(info, 5), F(info, 6),
               N(info, 7), B(info, 8));
  return Undefined(info);
}
Napi::Value Add(const Napi::CallbackInfo& info) {
  add(F(info, 0), F(info, 1), Op(info, 2), N(info, 3));
  return Undefined(info);
}
Napi::Value Accumulate(const Napi::CallbackInfo& info) {
  accumulate(F(info, 0), F(info, 1), R(info, 2), N(info, 3));
  return Undefined(info);
}
// fill(x, value, n)
Napi::Value Fill(const Napi::CallbackInfo& info) {
  fill(F(info, 0), R(info, 1), N(info, 2));
  return info.Env().Undefined();
}
// copy(dst, src, n)
Napi::Value Copy(const Napi::CallbackInfo& info) {
  copy(F(info, 0), F(info, 1), N(info, 2));
  return Undefined(info);
}

Napi::Value Scale(const Napi::CallbackInfo& info) {
  scale_inplace(F(info, 0), R(info, 1), N(info, 2));
  return Undefined(info);
}
Napi::Value Dropout(const Napi::CallbackInfo& info) {
  dropout(F(info, 0), F(info, 1), N(info, 2), R(info, 3), static_cast<uint64_t>(N(info, 4)), B(info, 5));
  return Undefined(info);
}

// The fp32 kernels take fp32 buffers only.
float* Fp32(const Napi::CallbackInfo& info, size_t i) {
  const Buf b = Op(info, i);
  if (b.isBf16) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + ": bf16 needs the bf16 attention kernel");
  return static_cast<float*>(b.data);
}

// attentionForward(out, lse, q, k, v, B, T, Hq, Hkv, D, qStride, kvStride, scale, bf16, causal): the bf16
// kernel where asked and supported (attentionBf16(D)); then out, q, k and v may be bf16.
Napi::Value AttentionForward(const Napi::CallbackInfo& info) {
  const bool bf16 = info[13].As<Napi::Boolean>().Value() && attention_bf16_supported(N(info, 9));
  if (bf16)
    attention_forward_bf16(Op(info, 0), F(info, 1), Op(info, 2), Op(info, 3), Op(info, 4), N(info, 5), N(info, 6),
                           N(info, 7), N(info, 8), N(info, 9), N(info, 10), N(info, 11), R(info, 12), B(info, 14));
  else
    attention_forward(Fp32(info, 0), F(info, 1), Fp32(info, 2), Fp32(info, 3), Fp32(info, 4), N(info, 5), N(info, 6),
                      N(info, 7), N(info, 8), N(info, 9), N(info, 10), N(info, 11), R(info, 12), B(info, 14));
  return Undefined(info);
}
// attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, B, T, Hq, Hkv, D, qStride, kvStride, scale, bf16, causal,
//                   addQ, addK, addV)
Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  const bool bf16 = info[17].As<Napi::Boolean>().Value() && attention_bf16_supported(N(info, 13));
  const GradWrites writes{B(info, 19), B(info, 20), B(info, 21)};
  if (bf16) {
    const Buf dq = Op(info, 0), dk = Op(info, 1), dv = Op(info, 2);
    if ((dq.isBf16 && writes.addQ) || (dk.isBf16 && (writes.addK || N(info, 11) != N(info, 12))) ||
        (dv.isBf16 && (writes.addV || N(info, 11) != N(info, 12))))
      throw Napi::TypeError::New(info.Env(), "attentionBackward: a bf16 gradient cannot be added to");
    attention_backward_bf16(dq, dk, dv, Op(info, 3), Op(info, 4), F(info, 5), Op(info, 6), Op(info, 7), Op(info, 8),
                            N(info, 9), N(info, 10), N(info, 11), N(info, 12), N(info, 13), N(info, 14), N(info, 15),
                            R(info, 16), B(info, 18), writes);
  } else {
    attention_backward(Fp32(info, 0), Fp32(info, 1), Fp32(info, 2), Fp32(info, 3), Fp32(info, 4), F(info, 5),
                       Fp32(info, 6), Fp32(info, 7), Fp32(info, 8), N(info, 9), N(info, 10), N(info, 11), N(info, 12),
                       N(info, 13), N(info, 14), N(info, 15), R(info, 16), B(info, 18), writes);
  }
  return Undefined(info);
}
Napi::Value AttentionBf16(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), attention_bf16_supported(N(info, 0)));
}

// attentionCached(out, q, kcache, vcache, B, Tn, Hq, Hkv, D, slots, pos, capacity, scale)
Napi::Value AttentionCached(const Napi::CallbackInfo& info) {
  attention_cached(F(info, 0), F(info, 1), F(info, 2), F(info, 3), N(info, 4), N(info, 5), N(info, 6),
                   N(info, 7), N(info, 8), I(info, 9), I(info, 10), N(info, 11), R(info, 12));
  return Undefined(info);
}
// embeddingForwardAt(out, idx, positions, wte, wpe, N, C)
Napi::Value EmbeddingForwardAt(const Napi::CallbackInfo& info) {
  embedding_forward_at(F(info, 0), I(info, 1), I(info, 2), F(info, 3), F(info, 4), N(info, 5), N(info, 6));
  return Undefined(info);
}
// ropeAt(out, x, positions, N, H, D, invFreq)
Napi::Value RopeAt(const Napi::CallbackInfo& info) {
  rope_at(F(info, 0), F(info, 1), I(info, 2), N(info, 3), N(info, 4), N(info, 5), F(info, 6));
  return Undefined(info);
}

Napi::Value CrossEntropyForward(const Napi::CallbackInfo& info) {
  const int64_t count = cross_entropy_forward(F(info, 0), F(info, 1), Op(info, 2), I(info, 3),
                                              N(info, 4), N(info, 5), static_cast<int32_t>(N(info, 6)));
  return Napi::Number::New(info.Env(), static_cast<double>(count));
}
Napi::Value CrossEntropyBackward(const Napi::CallbackInfo& info) {
  const Buf dlogits = Op(info, 0);
  if (dlogits.isBf16 && B(info, 8))
    throw Napi::TypeError::New(info.Env(), "crossEntropyBackward: a bf16 gradient cannot be added to");
  cross_entropy_backward(dlogits, Op(info, 1), F(info, 2), I(info, 3), N(info, 4), N(info, 5),
                         static_cast<int32_t>(N(info, 6)), R(info, 7), B(info, 8));
  return Undefined(info);
}

Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), sum_squares(F(info, 0), N(info, 1)));
}
// adamwStep(param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step, gradScale)
Napi::Value AdamwStep(const Napi::CallbackInfo& info) {
  adamw_step(F(info, 0), F(info, 1), F(info, 2), F(info, 3), N(info, 4), R(info, 5), R(info, 6),
             R(info, 7), R(info, 8), R(info, 9), N(info, 10), R(info, 11));
  return Undefined(info);
}

// mapFile(path): the file's bytes as a read-only ArrayBuffer backed by mmap, unmapped
// when the buffer is garbage-collected. Token shards are read this way, so a corpus
// larger than memory costs only the pages a batch touches.
Napi::Value MapFile(const Napi::CallbackInfo& info) {
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Napi::Error::New(info.Env(), path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size == 0) {
    close(fd);
    throw Napi::Error::New(info.Env(), path + ": cannot map an empty or unreadable file");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* data = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (data == MAP_FAILED) throw Napi::Error::New(info.Env(), path + ": mmap failed (" + std::strerror(errno) + ")");
  return Napi::ArrayBuffer::New(info.Env(), data, size, [](Napi::Env, void* p, size_t* n) {
    munmap(p, *n);
    delete n;
  }, new size_t(size));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  const std::pair<const char*, Napi::Function::Callback> fns[] = {
      {"setThreads", SetThreads},
      {"getThreads", GetThreads},
      {"bf16Native", Bf16Native},
      {"attentionBf16", AttentionBf16},
      {"matmul", Matmul},
      {"roundBf16", RoundBf16},
      {"toBf16", ToBf16},
      {"fromBf16", FromBf16},
      {"embeddingForward", EmbeddingForward},
      {"embeddingBackward", EmbeddingBackward},
      {"layerNormForward", LayerNormForward},
      {"layerNormBackward", LayerNormBackward},
      {"rmsNormForward", RmsNormForward},
      {"rmsNormBackward", RmsNormBackward},
      {"geluForward", GeluForward},
      {"geluBackward", GeluBackward},
      {"swigluForward", SwigluForward},
      {"swigluBackward", SwigluBackward},
      {"rope", Rope},
      {"add", Add},
      {"accumulate", Accumulate},
      {"scale", Scale},
      {"fill", Fill},
      {"copy", Copy},
      {"dropout", Dropout},
      {"attentionForward", AttentionForward},
      {"attentionBackward", AttentionBackward},
      {"crossEntropyForward", CrossEntropyForward},
      {"crossEntropyBackward", CrossEntropyBackward},
      {"sumSquares", SumSquares},
      {"adamwStep", AdamwStep},
      {"mapFile", MapFile},
      {"attentionCached", AttentionCached},
      {"embeddingForwardAt", EmbeddingForwardAt},
      {"ropeAt", RopeAt},
  };
  for (const auto& [name, fn] : fns) exports.Set(name, Napi::Function::New(env, fn, name));
  return exports;
}

}  // namespace

NODE_API_MODULE(llmfab_native, Init)
