// Mean next-token loss over a token stream, in non-overlapping windows of the block size.
import type { Model } from "../model/model.ts";
import { noGrad, recyclingBuffers } from "../tensor/index.ts";

export interface LossReport {
  loss: number;
  /** exp(loss): the model is as unsure as a uniform choice among this many tokens */
  perplexity: number;
  tokens: number;
}

export function evaluateLoss(model: Model, tokens: Int32Array, batchSize = 8): LossReport {
  const T = model.config.blockSize;
  // Windows of T inputs and T targets; the last partial window is evaluated at its length.
  const starts: number[] = [];
  for (let s = 0; s + 1 < tokens.length; s += T) starts.push(s);
  if (starts.length === 0) throw new Error(`need at least 2 tokens to evaluate, got ${tokens.length}`);
  let sum = 0;
  let count = 0;
  noGrad(() => {
    const full = starts.filter((s) => s + T + 1 <= tokens.length);
    for (let i = 0; i < full.length; i += batchSize) {
      const batch = full.slice(i, i + batchSize);
      const [x, y] = windows(tokens, batch, T);
      const loss = recyclingBuffers(() => model.loss(x, y, batch.length, T).item());
      sum += loss * batch.length * T;
      count += batch.length * T;
    }
    const rest = starts.find((s) => s + T + 1 > tokens.length);
    if (rest !== undefined) {
      const len = tokens.length - 1 - rest;
      const [x, y] = windows(tokens, [rest], len);
      sum += model.loss(x, y, 1, len).item() * len;
      count += len;
    }
  });
  return { loss: sum / count, perplexity: Math.exp(sum / count), tokens: count };
}

function windows(tokens: Int32Array, starts: number[], T: number): [Int32Array, Int32Array] {
  const x = new Int32Array(starts.length * T);
  const y = new Int32Array(starts.length * T);
  starts.forEach((s, b) => {
    x.set(tokens.subarray(s, s + T), b * T);
    y.set(tokens.subarray(s + 1, s + T + 1), b * T);
  });
  return [x, y];
}
