import { native } from "../../backend/native.ts";
import { needsGrad, record } from "../tape.ts";
import { Tensor } from "../tensor.ts";

export const IGNORE_INDEX = -1;

/** Mean cross-entropy of logits [N, V] against targets; targets equal to ignoreIndex do not count. */
export function crossEntropy(logits: Tensor, targets: Int32Array, ignoreIndex = IGNORE_INDEX): Tensor {
  const V = logits.shape[logits.shape.length - 1] as number;
  const N = logits.size / V;
  if (targets.length !== N) throw new Error(`crossEntropy: ${targets.length} targets for ${N} rows of logits`);
  for (const t of targets) {
    if (t !== ignoreIndex && (t < 0 || t >= V))
      throw new Error(`crossEntropy: target ${t} outside the vocabulary of ${V}`);
  }
  const losses = new Float32Array(N);
  const lse = new Float32Array(N);
  const count = native.crossEntropyForward(losses, lse, logits.data, targets, N, V, ignoreIndex);
  let sum = 0;
  for (let i = 0; i < N; i++) sum += losses[i] as number;
  const out = Tensor.from([count > 0 ? sum / count : 0], [1]);
  if (needsGrad(logits) && count > 0) {
    record(out, () => {
      const g = out.grad;
      if (!g) return;
      const dlogits = logits.gradTarget();
      native.crossEntropyBackward(
        dlogits.grad,
        logits.data,
        lse,
        targets,
        N,
        V,
        ignoreIndex,
        (g[0] as number) / count,
        dlogits.accumulate,
      );
    });
  }
  return out;
}
