// The copy probe: can a model look back and copy? Windows of real text are fed twice in a
// row; greedy next-token accuracy on the second copy against the first shows how much
// the model uses the earlier occurrence (an "induction head" lifts the second copy far
// above the first). Answering from a passage, a system prompt or the digits of a
// question all rest on this skill, and a small model trained briefly does not have it.
import type { Model } from "../model/model.ts";
import { Rng } from "../nn/random.ts";
import { noGrad } from "../tensor/index.ts";

export interface CopyScore {
  /** greedy next-token accuracy inside the first occurrence of each window */
  firstCopy: number;
  /** the same inside the repeat: equal to firstCopy when the model does not copy */
  secondCopy: number;
  windows: number;
  length: number;
}

/** Logits [positions x vocabulary] for one sequence. */
export type Predict = (idx: Int32Array) => Float32Array;

export function modelPredict(model: Model): Predict {
  return (idx) => noGrad(() => model.forward(idx, 1, idx.length)).data as Float32Array;
}

function argmax(logits: Float32Array, row: number, vocab: number): number {
  let best = 0;
  for (let v = 1; v < vocab; v++)
    if ((logits[row * vocab + v] as number) > (logits[row * vocab + best] as number)) best = v;
  return best;
}

export function copyProbe(
  predict: Predict,
  tokens: ArrayLike<number>,
  vocab: number,
  o: { windows?: number; length?: number; seed?: number } = {},
): CopyScore {
  const windows = o.windows ?? 30;
  const length = o.length ?? 40;
  if (tokens.length < length + 1) throw new Error(`the copy probe needs more than ${length} tokens of text`);
  const rng = new Rng(o.seed ?? 7);
  let first = 0;
  let second = 0;
  for (let w = 0; w < windows; w++) {
    const start = rng.int(tokens.length - length);
    const window = Array.from({ length }, (_, i) => tokens[start + i] as number);
    const idx = Int32Array.from([...window, ...window]);
    const logits = predict(idx);
    for (let t = 0; t < length - 1; t++) {
      if (argmax(logits, t, vocab) === idx[t + 1]) first++;
      if (argmax(logits, length + t, vocab) === idx[length + t + 1]) second++;
    }
  }
  const n = windows * (length - 1);
  return { firstCopy: first / n, secondCopy: second / n, windows, length };
}
