// Under native bf16 a norm's output is stored in bf16: a matmul reads it next, and the
// backward passes read x, not the output.
import { native } from "../../backend/native.ts";
import { bf16Native } from "../precision.ts";
import { needsGrad, record } from "../tape.ts";
import { Tensor } from "../tensor.ts";

function rowsOf(x: Tensor): [number, number] {
  const C = x.shape[x.shape.length - 1] as number;
  return [x.size / C, C];
}

/** LayerNorm over the last dimension, with optional bias. */
export function layerNorm(x: Tensor, w: Tensor, b: Tensor | null, eps = 1e-5): Tensor {
  const [N, C] = rowsOf(x);
  const out = bf16Native() ? Tensor.emptyHalf(x.shape) : Tensor.empty(x.shape);
  const mean = new Float32Array(N);
  const rstd = new Float32Array(N);
  native.layerNormForward(out.stored, mean, rstd, x.data, w.data, b?.data ?? null, N, C, eps);
  if (needsGrad(x, w, b)) {
    record(out, () => {
      const g = out.grad;
      if (!g) return;
      // The kernel always produces dx; a scratch buffer takes it when x needs none.
      const dx = x.requiresGrad ? x.ensureGrad() : new Float32Array(x.size);
      const dw = w.requiresGrad ? w.ensureGrad() : null;
      const db = b?.requiresGrad ? b.ensureGrad() : null;
      native.layerNormBackward(dx, dw, db, g, x.data, w.data, mean, rstd, N, C);
    });
  }
  return out;
}

/** RMSNorm over the last dimension (Llama). */
export function rmsNorm(x: Tensor, w: Tensor, eps = 1e-6): Tensor {
  const [N, C] = rowsOf(x);
  const out = bf16Native() ? Tensor.emptyHalf(x.shape) : Tensor.empty(x.shape);
  const rstd = new Float32Array(N);
  native.rmsNormForward(out.stored, rstd, x.data, w.data, N, C, eps);
  if (needsGrad(x, w)) {
    record(out, () => {
      const g = out.grad;
      if (!g) return;
      const dx = x.requiresGrad ? x.ensureGrad() : new Float32Array(x.size);
      native.rmsNormBackward(dx, w.requiresGrad ? w.ensureGrad() : null, g, x.data, w.data, rstd, N, C);
    });
  }
  return out;
}
