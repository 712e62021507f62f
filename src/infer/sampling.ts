// Choosing the next token from logits: penalties on tokens already seen, temperature,
// then top-k, top-p (nucleus) and min-p filtering, then a draw from what is left.
import type { Rng } from "../nn/random.ts";

export interface SamplingParams {
  /** 0: greedy */
  temperature: number;
  /** keep the k most likely tokens (0: off) */
  topK: number;
  /** keep the smallest set of tokens whose probability reaches p (1: off) */
  topP: number;
  /** drop tokens less likely than minP x the most likely one (0: off) */
  minP: number;
  /** divide positive logits of seen tokens by this, multiply negative ones (1: off), as in CTRL / HF */
  repetitionPenalty: number;
  /** subtract count x this from a seen token's logit (OpenAI) */
  frequencyPenalty: number;
  /** subtract this once from a seen token's logit (OpenAI) */
  presencePenalty: number;
}

export const DEFAULT_SAMPLING: SamplingParams = {
  temperature: 0.8,
  topK: 0,
  topP: 1,
  minP: 0,
  repetitionPenalty: 1,
  frequencyPenalty: 0,
  presencePenalty: 0,
};

export interface Choice {
  id: number;
  /** natural log of the chosen token's probability under the model (before filtering) */
  logprob: number;
}

/** counts: how often each token occurred so far (prompt and output). */
export function sampleNext(logits: Float32Array, p: SamplingParams, counts: Map<number, number>, rng: Rng): Choice {
  const logprobOf = logSoftmaxAt(logits);
  const z = penalized(logits, p, counts);
  let best = 0;
  for (let i = 1; i < z.length; i++) if ((z[i] as number) > (z[best] as number)) best = i;
  if (p.temperature <= 0) return { id: best, logprob: logprobOf(best) };

  const max = z[best] as number;
  const prob = new Float64Array(z.length);
  let sum = 0;
  for (let i = 0; i < z.length; i++) {
    prob[i] = Math.exp(((z[i] as number) - max) / p.temperature);
    sum += prob[i] as number;
  }
  // Unfiltered (the common case): a draw straight from the weights, no token order to build.
  if (p.topK <= 0 && p.topP >= 1 && p.minP <= 0) return drawFrom(prob, sum, rng, logprobOf);
  for (let i = 0; i < z.length; i++) prob[i] = (prob[i] as number) / sum;
  let order = Array.from(prob.keys());
  if (p.topK > 0 || p.topP < 1) order.sort((a, b) => (prob[b] as number) - (prob[a] as number));
  if (p.topK > 0) order = order.slice(0, p.topK);
  if (p.topP < 1) {
    let acc = 0;
    const kept: number[] = [];
    for (const i of order) {
      kept.push(i);
      acc += prob[i] as number;
      if (acc >= p.topP) break;
    }
    order = kept;
  }
  if (p.minP > 0) {
    const floor = p.minP * (prob[best] as number);
    order = order.filter((i) => (prob[i] as number) >= floor);
  }
  let total = 0;
  for (const i of order) total += prob[i] as number;
  return drawFrom(prob, total, rng, logprobOf, order);
}

/** The logits after the repetition, frequency and presence penalties: the logits themselves when none applies. */
function penalized(logits: Float32Array, p: SamplingParams, counts: Map<number, number>): ArrayLike<number> {
  if (p.repetitionPenalty === 1 && p.frequencyPenalty === 0 && p.presencePenalty === 0) return logits;
  const z = Float64Array.from(logits);
  for (const [id, n] of counts) {
    let v = z[id] as number;
    if (p.repetitionPenalty !== 1) v = v > 0 ? v / p.repetitionPenalty : v * p.repetitionPenalty;
    v -= n * p.frequencyPenalty + (n > 0 ? p.presencePenalty : 0);
    z[id] = v;
  }
  return z;
}

/** A token drawn with probability weight / total, from `order` (every token when absent). */
function drawFrom(
  weight: Float64Array,
  total: number,
  rng: Rng,
  logprobOf: (i: number) => number,
  order?: number[],
): Choice {
  const n = order ? order.length : weight.length;
  let u = rng.next() * total;
  for (let k = 0; k < n; k++) {
    const i = order ? (order[k] as number) : k;
    u -= weight[i] as number;
    if (u <= 0) return { id: i, logprob: logprobOf(i) };
  }
  // Rounding left a sliver of u: the last candidate.
  const last = order ? (order[n - 1] as number) : n - 1;
  return { id: last, logprob: logprobOf(last) };
}

function logSoftmaxAt(z: Float32Array): (i: number) => number {
  let max = -Infinity;
  for (const v of z) max = Math.max(max, v);
  let sum = 0;
  for (const v of z) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return (i) => (z[i] as number) - lse;
}
