// Matrix products, all on oneDNN. linear() is the layer op; matmul() the general one.
import { gemm, native } from "../../backend/native.ts";
import { giveBf16, takeBf16 } from "../pool.ts";
import { bf16Native, frozenBf16, precision } from "../precision.ts";
import { needsGrad, record } from "../tape.ts";
import { Tensor } from "../tensor.ts";

/** How a weight matrix is stored: PyTorch nn.Linear [out, in] or GPT-2 Conv1D [in, out]. */
export type WeightLayout = "out-in" | "in-out";

export function bf16(): boolean {
  return precision() === "bf16";
}

/**
 * With native bf16 matmuls, an operand used twice (an input in the forward and again for
 * the weight gradient, an output gradient for both input and weight gradients) is
 * converted to bf16 once; elsewhere the fp32 data is passed and the matmul rounds it.
 */
export function converted(data: Float32Array): Float32Array | Uint16Array {
  if (!bf16Native()) return data;
  const out = takeBf16(data.length);
  native.toBf16(data, out, data.length);
  return out;
}

export function release(operand: Float32Array | Uint16Array): void {
  if (operand instanceof Uint16Array) giveBf16(operand);
}

const ones = new Map<number, Float32Array>();
function onesOf(n: number): Float32Array {
  let o = ones.get(n);
  if (!o) {
    o = new Float32Array(n).fill(1);
    ones.set(n, o);
  }
  return o;
}

interface LayerShape {
  /** rows (tokens) */
  M: number;
  /** output features */
  N: number;
  /** input features */
  K: number;
  /** the weight is stored [out, in] and enters the product transposed */
  transW: boolean;
}

export function layerShape(op: string, x: Tensor, w: Tensor, layout: WeightLayout): LayerShape {
  const K = x.shape[x.shape.length - 1] as number;
  const transW = layout === "out-in";
  const [N, wK] = (transW ? [w.shape[0], w.shape[1]] : [w.shape[1], w.shape[0]]) as [number, number];
  if (wK !== K) throw new Error(`${op}: input has ${K} features but the weight [${w.shape.join(", ")}] expects ${wK}`);
  return { M: x.size / K, N, K, transW };
}

/** An operand for a bf16 matmul: the tensor's own bf16 values when it holds them, else a converted copy. */
export function operand(x: Tensor): { data: Float32Array | Uint16Array; owned: boolean } {
  const half = bf16Native() ? x.half : null;
  return half ? { data: half, owned: false } : { data: converted(x.data), owned: true };
}

/**
 * Adds the gradients of y = x W^T + b, given dy (fp32, or bf16 as a bf16 matmul takes it),
 * into x, W and b (those that need them); xData and wData: x and W as the forward used them
 * (perhaps already in bf16).
 */
function linearBackward(
  grad: Float32Array | Uint16Array,
  x: Tensor,
  xData: Float32Array | Uint16Array,
  w: Tensor,
  wData: Float32Array | Uint16Array,
  b: Tensor | null,
  s: LayerShape,
): void {
  const { M, N, K, transW } = s;
  const g = grad instanceof Uint16Array ? grad : converted(grad);
  // dx[M,K] = dy[M,N] . W[N,K], in bf16 where every reader of x's gradient takes it so
  if (x.requiresGrad) {
    const dx = x.storedGradTarget();
    gemm({ out: dx.grad, a: g, b: wData, M, N: K, K: N, transB: !transW, accumulate: dx.accumulate, bf16: bf16() });
  }
  if (w.requiresGrad) {
    // dW[N,K] = dy^T x  (or dW[K,N] = x^T dy for the Conv1D layout)
    const target = w.gradTarget();
    const dw = { out: target.grad, transA: true, accumulate: target.accumulate, bf16: bf16() };
    if (transW) gemm({ ...dw, a: g, b: xData, M: N, N: K, K: M });
    else gemm({ ...dw, a: xData, b: g, M: K, N, K: M });
  }
  if (b?.requiresGrad) {
    const db = b.gradTarget();
    const half = grad instanceof Uint16Array;
    gemm({ out: db.grad, a: onesOf(M), b: grad, M: 1, N, K: M, accumulate: db.accumulate, bf16: half });
  }
  if (g !== grad) release(g);
}

export interface LinearOptions {
  /**
   * Store the output in bf16 under native bf16 (as autocast does), for consumers that read
   * bf16 as it is (GELU, attention, a residual add, a loss): half the memory traffic.
   */
  half?: boolean;
}

/** y = x W^T + b over the last dimension of x. */
export function linear(
  x: Tensor,
  w: Tensor,
  b: Tensor | null,
  layout: WeightLayout = "out-in",
  opts: LinearOptions = {},
): Tensor {
  const s = layerShape("linear", x, w, layout);
  const shape = [...x.shape.slice(0, -1), s.N];
  const out = opts.half && bf16Native() ? Tensor.emptyHalf(shape) : Tensor.empty(shape);
  const training = needsGrad(x, w, b);
  const xOperand = operand(x);
  const xData = xOperand.data;
  // The weight changes only at the optimizer step: one conversion serves the forward and dx;
  // in an inference engine it does not change at all (one conversion for the engine's life).
  const wData = training ? (x.requiresGrad ? converted(w.data) : w.data) : (frozenBf16(w.data) ?? w.data);
  gemm({ out: out.stored, a: xData, b: wData, bias: b?.data, M: s.M, N: s.N, K: s.K, transB: s.transW, bf16: bf16() });
  if (!training) {
    if (xOperand.owned) release(xData);
    return out;
  }
  // Only this layer's backward reads out's gradient, and it takes bf16.
  out.halfGradOk = bf16Native();
  record(out, () => {
    const grad = out.storedGrad;
    if (grad) linearBackward(grad, x, xData, w, wData, b, s);
    if (xOperand.owned) release(xData);
    release(wData);
  });
  return out;
}

/**
 * y = x W^T + b + h U^T in one output: a layer plus a low-rank term (LoRA: h = s x A^T,
 * U = B [out, r]). Fused so that the wide output exists once, not three times.
 */
export function linearPlusLowRank(
  x: Tensor,
  w: Tensor,
  b: Tensor | null,
  layout: WeightLayout,
  h: Tensor,
  u: Tensor,
): Tensor {
  const s = layerShape("linearPlusLowRank", x, w, layout);
  const { M, N } = s;
  const r = u.shape[1] as number;
  if (u.shape[0] !== N || h.size !== M * r) {
    throw new Error(
      `linearPlusLowRank: low-rank factors [${h.shape}] and [${u.shape}] do not fit a [${M}, ${N}] output`,
    );
  }
  const out = Tensor.empty([...x.shape.slice(0, -1), N]);
  gemm({ out: out.data, a: x.data, b: w.data, bias: b?.data, M, N, K: s.K, transB: s.transW, bf16: bf16() });
  gemm({ out: out.data, a: h.data, b: u.data, M, N, K: r, transB: true, accumulate: true, bf16: bf16() });
  if (needsGrad(x, w, b, h, u)) {
    record(out, () => {
      const g = out.grad;
      if (!g) return;
      linearBackward(g, x, x.data, w, w.data, b, s);
      const acc = { accumulate: true, bf16: bf16() };
      if (u.requiresGrad) gemm({ ...acc, out: u.ensureGrad(), a: g, b: h.data, M: N, N: r, K: M, transA: true });
      if (h.requiresGrad) gemm({ ...acc, out: h.ensureGrad(), a: g, b: u.data, M, N: r, K: N });
    });
  }
  return out;
}

/** Batched C = op(A) op(B) for [batch, rows, cols] tensors (2-D tensors are batch 1). */
export function matmul(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
  const dims = (t: Tensor): [number, number, number] =>
    t.shape.length === 2
      ? [1, t.shape[0] as number, t.shape[1] as number]
      : [t.shape[0] as number, t.shape[1] as number, t.shape[2] as number];
  const [batch, ar, ac] = dims(a);
  const [bb, br, bc] = dims(b);
  const [M, K] = transA ? [ac, ar] : [ar, ac];
  const [K2, N] = transB ? [bc, br] : [br, bc];
  if (K !== K2 || bb !== batch) {
    throw new Error(`matmul: shapes [${a.shape.join(", ")}] and [${b.shape.join(", ")}] do not multiply`);
  }
  const out = Tensor.empty(a.shape.length === 2 ? [M, N] : [batch, M, N]);
  gemm({ out: out.data, a: a.data, b: b.data, batch, M, N, K, transA, transB, bf16: bf16() });
  if (needsGrad(a, b)) {
    record(out, () => {
      const g = out.grad;
      if (!g) return;
      if (a.requiresGrad) {
        // dA = dC op(B)^T, laid out as A is.
        const da = { out: a.ensureGrad(), batch, accumulate: true, bf16: bf16() };
        if (transA) gemm({ ...da, a: b.data, b: g, M: K, N: M, K: N, transA: transB, transB: true });
        else gemm({ ...da, a: g, b: b.data, M, N: K, K: N, transB: !transB });
      }
      if (b.requiresGrad) {
        const db = { out: b.ensureGrad(), batch, accumulate: true, bf16: bf16() };
        if (transB) gemm({ ...db, a: g, b: a.data, M: N, N: K, K: M, transA: true, transB: transA });
        else gemm({ ...db, a: a.data, b: g, M: K, N, K: M, transA: !transA });
      }
    });
  }
  return out;
}
