import { native } from "../../backend/native.ts";
import { needsGrad, record } from "../tape.ts";
import { Tensor } from "../tensor.ts";

export const IGNORE_INDEX = -1;

/** Mean cross-entropy of logits [N, V] against targets; targets equal to ignoreIndex do not count. */
export function crossEntropy(logits: Tensor, targets: Int32Array, ignoreIndex = IGNORE_INDEX): Tensor {
  const { V, N, losses, lse, count } = rowLosses("crossEntropy", logits, targets, ignoreIndex);
  let sum = 0;
  for (let i = 0; i < N; i++) sum += losses[i] as number;
  const out = Tensor.from([count > 0 ? sum / count : 0], [1]);
  if (needsGrad(logits) && count > 0) {
    record(out, () => {
      const g = out.grad;
      if (!g) return;
      // In bf16 when the logits are a linear layer's output (its backward takes bf16).
      const dlogits = logits.storedGradTarget();
      native.crossEntropyBackward(
        dlogits.grad,
        logits.stored,
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

/**
 * Each sequence's log-probability of its targets: logits [B * T, V], targets [B * T]
 * (ignoreIndex where a position does not count) -> [B], the sum of log p(target) over the
 * sequence's counted positions. What preference and RL losses compare.
 */
export function sequenceLogProbs(logits: Tensor, targets: Int32Array, B: number, ignoreIndex = IGNORE_INDEX): Tensor {
  const { N, losses, lse } = rowLosses("sequenceLogProbs", logits, targets, ignoreIndex);
  if (N % B !== 0) throw new Error(`sequenceLogProbs: ${N} rows of logits do not split into ${B} sequences`);
  const T = N / B;
  const out = Tensor.zeros([B]);
  for (let r = 0; r < N; r++) if (targets[r] !== ignoreIndex) out.data[Math.floor(r / T)] -= losses[r] as number;
  if (needsGrad(logits)) {
    record(out, () => {
      const g = out.grad;
      if (g) addLogProbGradient(logits, lse, targets, ignoreIndex, (r) => g[Math.floor(r / T)] as number);
    });
  }
  return out;
}

/**
 * DPO's loss (Rafailov et al., 2023; TRL's "sigmoid" loss): the mean over pairs of
 * -log sigmoid(beta * ((chosen - refChosen) - (rejected - refRejected))), from the policy's
 * sequence log-probabilities [P] and the frozen reference's (constants).
 */
export function dpoLoss(
  chosen: Tensor,
  rejected: Tensor,
  refChosen: ArrayLike<number>,
  refRejected: ArrayLike<number>,
  beta: number,
): Tensor {
  const P = chosen.size;
  if (rejected.size !== P || refChosen.length !== P || refRejected.length !== P)
    throw new Error(
      `dpoLoss: ${P} chosen but ${rejected.size} rejected, ${refChosen.length}/${refRejected.length} reference`,
    );
  const margin = (i: number) =>
    beta *
    ((chosen.data[i] as number) -
      (refChosen[i] as number) -
      ((rejected.data[i] as number) - (refRejected[i] as number)));
  // -log sigmoid(z) = softplus(-z), computed without overflow.
  const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
  let sum = 0;
  for (let i = 0; i < P; i++) sum += softplus(-margin(i));
  const out = Tensor.from([sum / P], [1]);
  if (needsGrad(chosen, rejected)) {
    record(out, () => {
      const g = out.grad;
      if (!g) return;
      for (let i = 0; i < P; i++) {
        // d softplus(-z) / dz = -sigmoid(-z)
        const d = ((g[0] as number) / P) * -beta * (1 / (1 + Math.exp(margin(i))));
        if (chosen.requiresGrad) chosen.ensureGrad()[i] += d;
        if (rejected.requiresGrad) rejected.ensureGrad()[i] -= d;
      }
    });
  }
  return out;
}

/**
 * Each position's log-probability of its target: logits [N, V], targets [N] -> [N]
 * (0 where the target is ignoreIndex). What token-level RL losses (PPO's ratio, a KL
 * penalty) work on.
 */
export function tokenLogProbs(logits: Tensor, targets: Int32Array, ignoreIndex = IGNORE_INDEX): Tensor {
  const { N, losses, lse } = rowLosses("tokenLogProbs", logits, targets, ignoreIndex);
  const out = Tensor.zeros([N]);
  for (let r = 0; r < N; r++) if (targets[r] !== ignoreIndex) out.data[r] = -(losses[r] as number);
  if (needsGrad(logits)) {
    record(out, () => {
      const g = out.grad;
      if (g) addLogProbGradient(logits, lse, targets, ignoreIndex, (r) => g[r] as number);
    });
  }
  return out;
}

/** Throws unless there is one target per row, each ignoreIndex or within the vocabulary of V. */
export function checkTargets(op: string, targets: Int32Array, N: number, V: number, ignoreIndex: number): void {
  if (targets.length !== N) throw new Error(`${op}: ${targets.length} targets for ${N} rows of logits`);
  for (const t of targets) {
    if (t !== ignoreIndex && (t < 0 || t >= V)) throw new Error(`${op}: target ${t} outside the vocabulary of ${V}`);
  }
}

/** Checks targets against logits [N, V]; each row's cross-entropy and log-sum-exp, and how many rows count. */
function rowLosses(op: string, logits: Tensor, targets: Int32Array, ignoreIndex: number) {
  const V = logits.shape[logits.shape.length - 1] as number;
  const N = logits.size / V;
  checkTargets(op, targets, N, V, ignoreIndex);
  const losses = new Float32Array(N);
  const lse = new Float32Array(N);
  const count = native.crossEntropyForward(losses, lse, logits.stored, targets, N, V, ignoreIndex);
  return { V, N, losses, lse, count };
}

/**
 * Adds the gradient of sum_r scale(r) * log p(target_r) to the logits' gradient:
 * scale(r) * (onehot - softmax) per row, the cross-entropy kernel negated, called once per
 * run of rows that share a scale (a sequence, or an answer whose tokens share an advantage).
 */
function addLogProbGradient(
  logits: Tensor,
  lse: Float32Array,
  targets: Int32Array,
  ignoreIndex: number,
  scale: (row: number) => number,
): void {
  const V = logits.shape[logits.shape.length - 1] as number;
  const N = targets.length;
  const dlogits = logits.ensureGrad();
  for (let start = 0, end = 0; start < N; start = end) {
    const s = scale(start);
    for (end = start + 1; end < N && scale(end) === s; end++);
    if (s === 0) continue;
    native.crossEntropyBackward(
      dlogits.subarray(start * V, end * V),
      logits.stored.subarray(start * V, end * V),
      lse.subarray(start, end),
      targets.subarray(start, end),
      end - start,
      V,
      ignoreIndex,
      -s,
      true,
    );
  }
}
