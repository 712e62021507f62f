// Under native bf16 a norm's output is stored in bf16: a matmul reads it next, and the
// backward passes read x, not the output; its gradient may come back in bf16 too.
import { native } from "../../backend/native.ts";
import { bf16Native } from "../precision.ts";
import { needsGrad, record } from "../tape.ts";
import { type Shape, Tensor } from "../tensor.ts";
import { recordAdd, sameShape } from "./elementwise.ts";

/** Where the kernel puts x's gradient (it always produces one): a scratch buffer when x needs none. */
function inputGrad(x: Tensor): { grad: Float32Array; accumulate: boolean } {
  return x.requiresGrad ? x.gradTarget() : { grad: new Float32Array(x.size), accumulate: false };
}

function rowsOf(x: Tensor): [number, number] {
  const C = x.shape[x.shape.length - 1] as number;
  return [x.size / C, C];
}

/** LayerNorm over the last dimension, with optional bias. */
export function layerNorm(x: Tensor, w: Tensor, b: Tensor | null, eps = 1e-5): Tensor {
  const [N, C] = rowsOf(x);
  const { out, mean, rstd } = normOutputs(x.shape, N);
  native.layerNormForward(out.stored, mean, rstd, x.data, w.data, b?.data ?? null, N, C, eps);
  recordLayerNorm(out, x, w, b, mean, rstd);
  return out;
}

/**
 * The residual add and the LayerNorm that reads its sum, in one pass over the rows:
 * sum = x + y (the residual stream, fp32) and normed = LayerNorm(sum). The same values and
 * gradients as add then layerNorm; the sum is not read back from memory for the norm.
 */
export function addLayerNorm(
  x: Tensor,
  y: Tensor,
  w: Tensor,
  b: Tensor | null,
  eps = 1e-5,
): { sum: Tensor; normed: Tensor } {
  sameShape("addLayerNorm", x, y);
  const [N, C] = rowsOf(x);
  const sum = Tensor.empty(x.shape);
  const { out, mean, rstd } = normOutputs(x.shape, N);
  native.layerNormForward(out.stored, mean, rstd, x.data, w.data, b?.data ?? null, N, C, eps, sum.data, y.stored);
  recordAdd(sum, x, y);
  recordLayerNorm(out, sum, w, b, mean, rstd);
  return { sum, normed: out };
}

/** A norm's output (bf16 under native bf16: a matmul reads it next) and its per-row statistics. */
function normOutputs(shape: Shape, N: number): { out: Tensor; mean: Float32Array; rstd: Float32Array } {
  const out = bf16Native() ? Tensor.emptyHalf(shape) : Tensor.empty(shape);
  return { out, mean: new Float32Array(N), rstd: new Float32Array(N) };
}

function recordLayerNorm(
  out: Tensor,
  x: Tensor,
  w: Tensor,
  b: Tensor | null,
  mean: Float32Array,
  rstd: Float32Array,
): void {
  const [N, C] = rowsOf(x);
  recordNorm(out, x, [w, b], (g, dx) => {
    const dw = w.requiresGrad ? w.ensureGrad() : null;
    const db = b?.requiresGrad ? b.ensureGrad() : null;
    native.layerNormBackward(dx.grad, dw, db, g, x.data, w.data, mean, rstd, N, C, dx.accumulate);
  });
}

/** A norm's backward: `kernel` writes x's gradient (where inputGrad says) and adds the weights' from out's. */
function recordNorm(
  out: Tensor,
  x: Tensor,
  weights: (Tensor | null)[],
  kernel: (g: Float32Array | Uint16Array, dx: { grad: Float32Array; accumulate: boolean }) => void,
): void {
  if (!needsGrad(x, ...weights)) return;
  out.halfGradOk = bf16Native();
  record(out, () => {
    const g = out.storedGrad;
    if (g) kernel(g, inputGrad(x));
  });
}

/** RMSNorm over the last dimension (Llama). */
export function rmsNorm(x: Tensor, w: Tensor, eps = 1e-6): Tensor {
  const [N, C] = rowsOf(x);
  const { out, rstd } = normOutputs(x.shape, N);
  native.rmsNormForward(out.stored, rstd, x.data, w.data, N, C, eps);
  recordRmsNorm(out, x, w, rstd);
  return out;
}

/** The residual add and the RMSNorm that reads its sum, in one pass (as addLayerNorm). */
export function addRmsNorm(x: Tensor, y: Tensor, w: Tensor, eps = 1e-6): { sum: Tensor; normed: Tensor } {
  sameShape("addRmsNorm", x, y);
  const [N, C] = rowsOf(x);
  const sum = Tensor.empty(x.shape);
  const { out, rstd } = normOutputs(x.shape, N);
  native.rmsNormForward(out.stored, rstd, x.data, w.data, N, C, eps, sum.data, y.stored);
  recordAdd(sum, x, y);
  recordRmsNorm(out, sum, w, rstd);
  return { sum, normed: out };
}

function recordRmsNorm(out: Tensor, x: Tensor, w: Tensor, rstd: Float32Array): void {
  const [N, C] = rowsOf(x);
  recordNorm(out, x, [w], (g, dx) => {
    const dw = w.requiresGrad ? w.ensureGrad() : null;
    native.rmsNormBackward(dx.grad, dw, g, x.data, w.data, rstd, N, C, dx.accumulate);
  });
}
