// Autoregressive sampling by full recomputation over the last block of tokens: the plain
// reference that the KV-cache engine (infer/, what every command uses) is tested against.
import { Rng } from "../nn/random.ts";
import { noGrad } from "../tensor/index.ts";
import type { Model } from "./model.ts";

export interface SampleOptions {
  maxTokens: number;
  temperature: number;
  /** keep only the k most likely tokens (0: all) */
  topK: number;
  seed: number;
}

/** Picks a token id from logits with temperature and top-k (temperature 0: greedy). */
export function sampleToken(logits: Float32Array, temperature: number, topK: number, rng: Rng): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if ((logits[i] as number) > (logits[best] as number)) best = i;
  if (temperature <= 0) return best;
  let threshold = -Infinity;
  if (topK > 0 && topK < logits.length) threshold = [...logits].sort((a, b) => b - a)[topK - 1] as number;
  const max = logits[best] as number;
  const probs = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const z = logits[i] as number;
    if (z < threshold) continue;
    probs[i] = Math.exp((z - max) / temperature);
    sum += probs[i] as number;
  }
  let u = rng.next() * sum;
  for (let i = 0; i < probs.length; i++) {
    u -= probs[i] as number;
    if (u <= 0 && (probs[i] as number) > 0) return i;
  }
  return best;
}

export function generate(model: Model, prompt: Int32Array, opts: SampleOptions): Int32Array {
  const rng = new Rng(opts.seed);
  const V = model.config.vocabSize;
  const tokens = [...prompt];
  return noGrad(() => {
    for (let n = 0; n < opts.maxTokens; n++) {
      const ctx = Int32Array.from(tokens.slice(-model.config.blockSize));
      const logits = model.forward(ctx, 1, ctx.length);
      const last = logits.data.subarray((ctx.length - 1) * V, ctx.length * V);
      tokens.push(sampleToken(last, opts.temperature, opts.topK, rng));
    }
    return Int32Array.from(tokens.slice(prompt.length));
  });
}
