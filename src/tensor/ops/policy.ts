// The policy-gradient loss of GRPO (Shao et al., 2024) in its token-level form (DAPO,
// Dr. GRPO): -(1 / tokens) * sum_i A_i * log pi(answer_i), with each answer's advantage
// A_i and `tokens` the answer tokens of the whole batch, so every token weighs the same
// whatever its answer's length. One update per batch of samples: the PPO ratio is 1 and
// its clipping never acts, so it is left out.
import { needsGrad, record } from "../tape.ts";
import { Tensor } from "../tensor.ts";

export function policyGradientLoss(logProbs: Tensor, advantages: ArrayLike<number>, tokens: number): Tensor {
  const n = logProbs.size;
  if (advantages.length !== n) throw new Error(`policyGradientLoss: ${advantages.length} advantages for ${n} answers`);
  if (!(tokens > 0)) throw new Error(`policyGradientLoss: the batch has ${tokens} answer tokens`);
  let sum = 0;
  for (let i = 0; i < n; i++) sum -= (advantages[i] as number) * (logProbs.data[i] as number);
  const out = Tensor.from([sum / tokens], [1]);
  if (needsGrad(logProbs)) {
    record(out, () => {
      const g = out.grad;
      if (!g) return;
      const d = logProbs.ensureGrad();
      for (let i = 0; i < n; i++) d[i] += (-(advantages[i] as number) / tokens) * (g[0] as number);
    });
  }
  return out;
}
