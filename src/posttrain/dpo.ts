// Direct Preference Optimization (Rafailov et al., 2023): raise the policy's log-probability
// of the chosen answer over the rejected one, relative to a frozen reference — the model as
// it was before training, whose log-probabilities are computed once, up front. The same
// trainable modes as SFT (full, freeze, LoRA); the optimizer step is the shared Trainer's.
import type { Model } from "../model/model.ts";
import { Rng } from "../nn/random.ts";
import { dpoLoss, noGrad, sequenceLogProbs, type Tensor } from "../tensor/index.ts";
import type { EncodedPair } from "./preference.ts";
import { padBatch, posttrainTrainer, prepareTrainable, type SftOptions, shuffle } from "./sft.ts";

export interface DpoOptions extends Omit<SftOptions, "gradAccum"> {
  beta: number;
}

export interface DpoStep {
  step: number;
  total: number;
  loss: number;
  lr: number;
  /** mean implicit reward margin of the batch: beta * (policy margin - reference margin) */
  margin: number;
  /** share of the batch's pairs whose margin is positive */
  accuracy: number;
}

/** Log-probabilities of each side's answer under the model: [pairs] for chosen and for rejected. */
function sideLogProbs(model: Model, pairs: EncodedPair[]): { chosen: Tensor; rejected: Tensor } {
  const logps = (side: "chosen" | "rejected") => {
    const { x, y, T } = padBatch(
      pairs.map((p) => p[side]),
      model.config.blockSize,
    );
    return sequenceLogProbs(model.forward(x, pairs.length, T), y, pairs.length);
  };
  return { chosen: logps("chosen"), rejected: logps("rejected") };
}

/** The reference's log-probabilities of every pair (no gradients), batch by batch. */
export function referenceLogProbs(model: Model, pairs: EncodedPair[], batchSize: number): Float64Array[] {
  const chosen = new Float64Array(pairs.length);
  const rejected = new Float64Array(pairs.length);
  noGrad(() => {
    for (let i = 0; i < pairs.length; i += batchSize) {
      const r = sideLogProbs(model, pairs.slice(i, i + batchSize));
      chosen.set(r.chosen.data, i);
      rejected.set(r.rejected.data, i);
    }
  });
  return [chosen, rejected];
}

/** Preference accuracy and mean margin of the model over pairs, against the reference's log-probabilities. */
export function preferenceMetrics(
  model: Model,
  pairs: EncodedPair[],
  reference: Float64Array[],
  beta: number,
  batchSize: number,
): { accuracy: number; margin: number } {
  const [policyChosen, policyRejected] = referenceLogProbs(model, pairs, batchSize) as [Float64Array, Float64Array];
  const [refChosen, refRejected] = reference as [Float64Array, Float64Array];
  let correct = 0;
  let margin = 0;
  for (let i = 0; i < pairs.length; i++) {
    const m =
      beta *
      ((policyChosen[i] as number) -
        (refChosen[i] as number) -
        ((policyRejected[i] as number) - (refRejected[i] as number)));
    margin += m;
    if (m > 0) correct++;
  }
  return {
    accuracy: pairs.length ? correct / pairs.length : Number.NaN,
    margin: pairs.length ? margin / pairs.length : 0,
  };
}

export function runDpo(model: Model, pairs: EncodedPair[], o: DpoOptions, onStep?: (s: DpoStep) => void): number {
  if (pairs.length === 0) throw new Error("no preference pairs to train on");
  if (!(o.beta > 0)) throw new Error(`--beta must be above 0, got ${o.beta}`);
  // Before any parameter changes (LoRA's B starts at zero): the reference is the model as given.
  const [refChosen, refRejected] = referenceLogProbs(model, pairs, o.batchSize) as [Float64Array, Float64Array];
  const params = prepareTrainable(model, o);
  const rng = new Rng(o.seed);
  const total = Math.min(
    Math.ceil(Math.ceil(pairs.length / o.batchSize) * o.epochs),
    o.maxSteps ?? Number.POSITIVE_INFINITY,
  );
  const trainer = posttrainTrainer(params, o, total);
  let step = 0;
  while (step < total) {
    const order = shuffle(pairs.length, rng);
    for (let b = 0; b < order.length && step < total; b += o.batchSize, step++) {
      const idx = order.slice(b, b + o.batchSize);
      const batch = idx.map((i) => pairs[i] as EncodedPair);
      const refC = idx.map((i) => refChosen[i] as number);
      const refR = idx.map((i) => refRejected[i] as number);
      let margins: number[] = [];
      const r = trainer.step(step, [
        {
          count: batch.length,
          loss: () => {
            const { chosen, rejected } = sideLogProbs(model, batch);
            margins = batch.map(
              (_, k) =>
                o.beta *
                ((chosen.data[k] as number) -
                  (refC[k] as number) -
                  ((rejected.data[k] as number) - (refR[k] as number))),
            );
            return dpoLoss(chosen, rejected, refC, refR, o.beta);
          },
        },
      ]);
      const margin = margins.reduce((a, m) => a + m, 0) / margins.length;
      const accuracy = margins.filter((m) => m > 0).length / margins.length;
      onStep?.({ step, total, loss: r.loss, lr: r.lr, margin, accuracy });
    }
  }
  return step;
}
