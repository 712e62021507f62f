// Under native bf16 a norm's output is stored in bf16: a matmul reads it next, and the
// backward passes read x, not the output; its gradient may come back in bf16 too.
import { native } from "../../backend/native.ts";
import { bf16Native } from "../precision.ts";
import { needsGrad, record } from "../tape.ts";
import { Tensor } from "../tensor.ts";

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
  const out = bf16Native() ? Tensor.emptyHalf(x.shape) : Tensor.empty(x.shape);
  const mean = new Float32Array(N);
  const rstd = new Float32Array(N);
  native.layerNormForward(out.stored, mean, rstd, x.data, w.data, b?.data ?? null, N, C, eps);
  if (needsGrad(x, w, b)) {
    out.halfGradOk = bf16Native();
    record(out, () => {
      const g = out.storedGrad;
      if (!g) return;
      const dx = inputGrad(x);
      const dw = w.requiresGrad ? w.ensureGrad() : null;
      const db = b?.requiresGrad ? b.ensureGrad() : null;
      native.layerNormBackward(dx.grad, dw, db, g, x.data, w.data, mean, rstd, N, C, dx.accumulate);
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
    out.halfGradOk = bf16Native();
    record(out, () => {
      const g = out.storedGrad;
      if (!g) return;
      const dx = inputGrad(x);
      const dw = w.requiresGrad ? w.ensureGrad() : null;
      native.rmsNormBackward(dx.grad, dw, g, x.data, w.data, rstd, N, C, dx.accumulate);
    });
  }
  return out;
}
