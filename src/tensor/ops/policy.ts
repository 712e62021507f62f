// The policy loss of GRPO (Shao et al., 2024) in its token-level form (DAPO, Dr. GRPO),
// with PPO's clipped ratio and an optional KL penalty against a frozen reference:
//   (1 / tokens) * sum over answer tokens t of
//     -min(r_t * A_t, clip(r_t, 1 - eps, 1 + eps) * A_t) + beta * KL_t,
//   r_t = exp(log pi(t) - log pi_old(t)),
//   KL_t = exp(ref_t - log pi(t)) - (ref_t - log pi(t)) - 1   (Schulman's k3, always >= 0),
// A_t the advantage of t's answer and `tokens` the answer tokens of the whole batch, so
// every token weighs the same whatever its answer's length. On the first update of a
// batch pi_old is pi, r_t = 1 and the loss is the plain policy gradient.
import { needsGrad, record } from "../tape.ts";
import { Tensor } from "../tensor.ts";

export interface PolicyTerms {
  /** each token's log-probability when it was sampled (pi_old); only answer tokens count */
  old: ArrayLike<number>;
  /** each token's advantage (its answer's); 0 outside answers */
  advantages: ArrayLike<number>;
  /** which positions are answer tokens */
  mask: Uint8Array;
  /** answer tokens in the batch */
  tokens: number;
  /** PPO's clipping range: r is kept within [1 - clip, 1 + clip] */
  clip: number;
  /** the frozen reference's log-probabilities, for the KL penalty (with beta > 0) */
  reference?: ArrayLike<number>;
  beta: number;
}

export function policyLoss(logProbs: Tensor, t: PolicyTerms): Tensor {
  const n = logProbs.size;
  for (const [name, a] of [
    ["old", t.old],
    ["advantages", t.advantages],
    ["mask", t.mask],
  ] as const)
    if (a.length !== n) throw new Error(`policyLoss: ${a.length} ${name} for ${n} tokens`);
  if (t.beta > 0 && t.reference?.length !== n)
    throw new Error("policyLoss: a KL penalty needs the reference's log-probabilities");
  if (!(t.tokens > 0)) throw new Error(`policyLoss: the batch has ${t.tokens} answer tokens`);
  const lp = logProbs.data;
  let sum = 0;
  const grad = new Float64Array(n); // d loss / d log pi(t), times tokens
  for (let i = 0; i < n; i++) {
    if (!t.mask[i]) continue;
    const a = t.advantages[i] as number;
    const r = Math.exp((lp[i] as number) - (t.old[i] as number));
    const clipped = Math.min(Math.max(r, 1 - t.clip), 1 + t.clip);
    // min(r A, clip(r) A): the unclipped term carries the gradient when it is the smaller.
    if (r * a <= clipped * a) {
      sum -= r * a;
      grad[i] = -r * a;
    } else sum -= clipped * a;
    if (t.beta > 0) {
      const d = (t.reference?.[i] as number) - (lp[i] as number);
      sum += t.beta * (Math.exp(d) - d - 1);
      grad[i] += t.beta * (1 - Math.exp(d));
    }
  }
  const out = Tensor.from([sum / t.tokens], [1]);
  if (needsGrad(logProbs)) {
    record(out, () => {
      const g = out.grad;
      if (!g) return;
      const d = logProbs.ensureGrad();
      for (let i = 0; i < n; i++) d[i] += ((grad[i] as number) / t.tokens) * (g[0] as number);
    });
  }
  return out;
}
