// The language model's head and its loss in one op: the mean cross-entropy of the logits
// x W^T against the targets, computed a block of rows at a time, so the [N, vocab] logits
// and their gradient never exist whole (at a 150k vocabulary and 2,048 tokens they are
// 1.2 GB in fp32, the gradient 0.6 GB more). Each block's logits stay fp32, as the
// unfused head's do, and are used while they are in cache: the loss, the logits' gradient
// and from it the gradients of x and W, all in the forward pass, for a loss gradient of 1;
// the backward pass only scales them by the gradient that arrives (Liger's fused linear
// cross-entropy does the same on GPUs).
import { gemm, native } from "../../backend/native.ts";
import { give, giveBf16, take, takeBf16 } from "../pool.ts";
import { bf16Native } from "../precision.ts";
import { needsGrad, record } from "../tape.ts";
import { Tensor } from "../tensor.ts";
import { bf16, converted, layerShape, operand, release } from "./linear.ts";
import { checkTargets, IGNORE_INDEX } from "./loss.ts";

/**
 * Rows a block holds: logits of about 32 MiB, but at least 64 rows (a matmul needs some
 * height). Smaller blocks cost more than they save: at 8 MiB (256 rows of an 8,192 vocabulary)
 * oneDNN's head matmul ran at two thirds of its speed at 1,024 rows and the weight gradient
 * was read and written back 16 times a step (Zen 3: 800 against 660 ms for config C's head).
 */
export function headBlockRows(vocab: number): number {
  return Math.max(64, Math.floor((32 << 20) / (4 * vocab)));
}

export interface HeadLossOptions {
  ignoreIndex?: number;
  /** rows per block (default headBlockRows(vocab)); tests set it to force several blocks */
  blockRows?: number;
}

/**
 * Mean cross-entropy of x W^T (x [N, C], W [vocab, C] as nn.Linear stores it) against
 * targets [N]; targets equal to the ignore index do not count. The same value and gradients
 * as crossEntropy(linear(x, W, null), targets), without the logits.
 */
export function linearCrossEntropy(x: Tensor, w: Tensor, targets: Int32Array, opts: HeadLossOptions = {}): Tensor {
  const ignoreIndex = opts.ignoreIndex ?? IGNORE_INDEX;
  const { M: N, N: V, K: C } = layerShape("linearCrossEntropy", x, w, "out-in");
  checkTargets("linearCrossEntropy", targets, N, V, ignoreIndex);
  const count = targets.reduce((n, t) => n + (t === ignoreIndex ? 0 : 1), 0);
  const training = needsGrad(x, w) && count > 0;
  const inBf16 = bf16();
  const xOperand = operand(x);
  const wData = converted(w.data);
  const R = Math.min(N, opts.blockRows ?? headBlockRows(V));
  const logits = take(R * V, false);
  // The logits' gradient is rounded to bf16 for the matmuls that read it, as the unfused head's is.
  const dlogits = training ? (bf16Native() ? takeBf16(R * V) : take(R * V, false)) : null;
  const dx = training && x.requiresGrad ? take(N * C, false) : null;
  const dw = training && w.requiresGrad ? take(V * C, false) : null;
  const losses = new Float32Array(R);
  const lse = new Float32Array(R);
  let sum = 0;
  for (let r0 = 0; r0 < N; r0 += R) {
    const n = Math.min(R, N - r0);
    const xRows = xOperand.data.subarray(r0 * C, (r0 + n) * C);
    const rowTargets = targets.subarray(r0, r0 + n);
    gemm({ out: logits, a: xRows, b: wData, M: n, N: V, K: C, transB: true, bf16: inBf16 });
    native.crossEntropyForward(losses, lse, logits, rowTargets, n, V, ignoreIndex);
    for (let i = 0; i < n; i++) sum += losses[i] as number;
    if (!dlogits) continue;
    const g = dlogits.subarray(0, n * V);
    native.crossEntropyBackward(g, logits, lse, rowTargets, n, V, ignoreIndex, 1 / count, false);
    if (dx) gemm({ out: dx.subarray(r0 * C, (r0 + n) * C), a: g, b: wData, M: n, N: C, K: V, bf16: inBf16 });
    if (dw) gemm({ out: dw, a: g, b: xRows, M: V, N: C, K: n, transA: true, accumulate: r0 > 0, bf16: inBf16 });
  }
  give(logits);
  if (dlogits instanceof Uint16Array) giveBf16(dlogits);
  else if (dlogits) give(dlogits);
  if (xOperand.owned) release(xOperand.data);
  release(wData);
  const out = Tensor.from([count > 0 ? sum / count : 0], [1]);
  if (training) {
    record(out, () => {
      const g = out.grad?.[0];
      if (g === undefined) return;
      if (dx) x.addGrad(dx, g);
      if (dw) w.addGrad(dw, g);
      if (dx) give(dx);
      if (dw) give(dw);
    });
  }
  return out;
}
