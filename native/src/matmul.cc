// Every matmul goes to oneDNN's matmul primitive. Primitives are cached per shape,
// layout and precision, since creating one costs far more than running a small one.
#include <omp.h>

#include <immintrin.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <map>
#include <mutex>
#include <stdexcept>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "bf16.h"
#include "kernels.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace llmfab {

namespace {

using dt = dnnl::memory::data_type;
using dims = dnnl::memory::dims;

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// Streams, cached primitives and scratch buffers are per thread: the addon may run on
// the main thread and on worker threads (the inference server) at the same time.
dnnl::stream& cpu_stream() {
  thread_local dnnl::stream s(cpu_engine());
  return s;
}

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, bool, bool, bool, bool, bool, bool, bool, int>;

struct Cached {
  dnnl::matmul prim;
  dnnl::memory::desc a, b, c, bias;
};

std::map<Key, Cached>& cache() {
  thread_local std::map<Key, Cached> c;
  return c;
}

dnnl::memory::desc src_desc(int64_t batch, int64_t M, int64_t K, bool trans, dt type) {
  return trans ? dnnl::memory::desc(dims{batch, M, K}, type, dims{M * K, 1, M})
               : dnnl::memory::desc(dims{batch, M, K}, type, dims{M * K, K, 1});
}

dnnl::memory::desc weights_desc(int64_t batch, int64_t K, int64_t N, bool trans, bool broadcast,
                                dt type) {
  const int64_t bs = broadcast ? 0 : K * N;
  const int64_t bdim = broadcast ? 1 : batch;
  return trans ? dnnl::memory::desc(dims{bdim, K, N}, type, dims{bs, 1, K})
               : dnnl::memory::desc(dims{bdim, K, N}, type, dims{bs, N, 1});
}

Cached make(int64_t batch, int64_t M, int64_t N, int64_t K, bool transA, bool transB, bool acc,
            bool hasBias, bool broadcastB, dt inType, dt outType) {
  Cached c;
  c.a = src_desc(batch, M, K, transA, inType);
  c.b = weights_desc(batch, K, N, transB, broadcastB, inType);
  c.c = dnnl::memory::desc(dims{batch, M, N}, outType, dims{M * N, N, 1});
  c.bias = dnnl::memory::desc(dims{1, 1, N}, dt::f32, dims{N, N, 1});
  dnnl::primitive_attr attr;
  if (acc) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  auto desc = hasBias ? dnnl::matmul::desc(c.a, c.b, c.bias, c.c) : dnnl::matmul::desc(c.a, c.b, c.c);
  dnnl::matmul::primitive_desc pd(desc, attr, cpu_engine());
  c.prim = dnnl::matmul(pd);
  return c;
}

// Scratch buffers for operands, reused between calls; growing one does not zero it
// (std::vector::resize would write every new element before the conversion does).
template <typename T>
struct Scratch {
  std::unique_ptr<T[]> data;
  int64_t size = 0;
  T* get(int64_t n) {
    if (n > size) {
      data.reset(new T[n]);
      size = n;
    }
    return data.get();
  }
};
thread_local Scratch<uint16_t> scratchA, scratchB;
thread_local Scratch<float> roundA, roundB;

int bf16_mode() {
  // 1: oneDNN runs bf16 natively; 0: emulate by rounding operands to bf16 and running fp32.
  static std::atomic<int> mode{-1};
  if (mode < 0) {
    try {
      make(1, 16, 16, 16, false, false, false, false, false, dt::bf16, dt::f32);
      mode = 1;
    } catch (const dnnl::error&) {
      mode = 0;
    }
  }
  return mode;
}

}  // namespace

bool bf16_native_supported() { return bf16_mode() == 1; }

void to_bf16(const float* src, uint16_t* dst, int64_t n) {
#ifdef __AVX512BF16__
  // vcvtne2ps2bf16: 32 floats per instruction, round to nearest even (NaN stays NaN).
  const int64_t full = n - n % 32;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < full; i += 32) {
    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
    _mm512_storeu_si512(dst + i, reinterpret_cast<__m512i>(v));
  }
  for (int64_t i = full; i < n; i++) dst[i] = f32_to_bf16(src[i]);
#else
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) dst[i] = f32_to_bf16(src[i]);
#endif
}


void round_to_bf16(const float* src, float* dst, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    uint32_t u = static_cast<uint32_t>(f32_to_bf16(src[i])) << 16;
    std::memcpy(&dst[i], &u, 4);
  }
}

void matmul(Buf A, Buf B, Buf C, const float* bias, int64_t batch, int64_t M, int64_t N,
            int64_t K, bool transA, bool transB, bool accumulate, bool bf16, bool broadcastB) {
  const int64_t nA = batch * M * K;
  const int64_t nB = (broadcastB ? 1 : batch) * K * N;
  const void* a = A.data;
  const void* b = B.data;
  bool native = false;
  if ((A.isBf16 || B.isBf16 || C.isBf16) && !(bf16 && bf16_mode() == 1))
    throw std::invalid_argument("bf16 operands need native bf16 matmuls");
  if (C.isBf16 && accumulate) throw std::invalid_argument("a bf16 output cannot be added to");
  if (bf16) {
    if (bf16_mode() == 1) {
      native = true;
      if (!A.isBf16) {
        uint16_t* a16 = scratchA.get(nA);
        to_bf16(static_cast<const float*>(A.data), a16, nA);
        a = a16;
      }
      if (!B.isBf16) {
        uint16_t* b16 = scratchB.get(nB);
        to_bf16(static_cast<const float*>(B.data), b16, nB);
        b = b16;
      }
    } else {
      float* ar = roundA.get(nA);
      float* br = roundB.get(nB);
      round_to_bf16(static_cast<const float*>(A.data), ar, nA);
      round_to_bf16(static_cast<const float*>(B.data), br, nB);
      a = ar;
      b = br;
    }
  }
  Key key{batch, M, N, K, transA, transB, accumulate, bias != nullptr, broadcastB, native, C.isBf16,
          omp_get_max_threads()};
  auto it = cache().find(key);
  if (it == cache().end()) {
    it = cache()
             .emplace(key, make(batch, M, N, K, transA, transB, accumulate, bias != nullptr,
                                broadcastB, native ? dt::bf16 : dt::f32, C.isBf16 ? dt::bf16 : dt::f32))
             .first;
  }
  Cached& c = it->second;
  auto& eng = cpu_engine();
  dnnl::memory ma(c.a, eng, const_cast<void*>(a));
  dnnl::memory mb(c.b, eng, const_cast<void*>(b));
  dnnl::memory mc(c.c, eng, C.data);
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
  if (bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(c.bias, eng, const_cast<float*>(bias)));
  c.prim.execute(cpu_stream(), args);
  cpu_stream().wait();
}

}  // namespace llmfab
