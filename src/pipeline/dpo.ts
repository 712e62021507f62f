// `llmfab dpo`: preference pairs in, a model (or a LoRA adapter) out, with the held-out
// pairs' preference accuracy and reward margin, and metrics.jsonl as SFT writes it.
import { rmSync } from "node:fs";
import { communicator } from "../backend/mpi.ts";
import { writeDirAtomic } from "../io/atomic.ts";
import { loadAnyModel } from "../model/peft.ts";
import { checkRange } from "../options/ranges.ts";
import { preferenceMetrics, referenceLogProbs, runDpo } from "../posttrain/dpo.ts";
import { encodePair, readPreferencePairs } from "../posttrain/preference.ts";
import { createReporter } from "../train/progress.ts";
import { loadChatCodec } from "./codec.ts";
import {
  checkSftCommand,
  heldOutSplit,
  loraOf,
  openMetrics,
  refuseFinishedOutput,
  type SftCommand,
  trainedFiles,
} from "./sft.ts";

export type DpoCommand = Omit<SftCommand, "valData" | "gradAccum" | "evalInterval"> & { beta: number };

export interface DpoResult {
  out: string;
  steps: number;
  /** held-out pairs: share with a positive implicit reward margin, and the mean margin (null without a held-out split) */
  heldOut: { accuracy: number; margin: number } | null;
}

export function runDpoCommand(o: DpoCommand): DpoResult {
  if (communicator().size > 1)
    throw new Error("llmfab dpo runs as one process (it is not data-parallel yet): run it without mpirun");
  checkSftCommand(o);
  checkRange("--beta", o.beta, "lr");
  refuseFinishedOutput(o.out);
  const model = loadAnyModel(o.model);
  const codec = loadChatCodec(o.model);
  const render = (m: Parameters<typeof codec.renderChat>[0], g: boolean) => codec.encode(codec.renderChat(m, g), true);
  const pairs = readPreferencePairs(o.data).map((p) => encodePair(p, render, model.config.blockSize));
  const { train, val } = heldOutSplit(pairs, o.valFraction, o.seed);
  if (train.length === 0) throw new Error(`${o.data.join(", ")}: no preference pairs to train on`);
  const reference = referenceLogProbs(model, val, o.batchSize);
  const lora = loraOf(o, model);
  const options = { ...o, lora, warmupIters: o.warmup, weightDecay: 0, gradClip: 1 };
  const { path: metricsPath, log } = openMetrics(o.out);
  const total = Math.ceil(Math.ceil(train.length / o.batchSize) * o.epochs);
  const reporter = createReporter(o.maxSteps ?? total, 0, Math.max(1, Math.floor(total / 20)), o.quiet ?? false);
  try {
    const steps = runDpo(model, train, options, (s) => {
      log({ step: s.step, loss: s.loss, lr: s.lr, rewardMargin: s.margin, rewardAccuracy: s.accuracy });
      reporter.step({ step: s.step, loss: s.loss, lr: s.lr });
    });
    reporter.stop();
    const heldOut = val.length ? preferenceMetrics(model, val, reference, o.beta, o.batchSize) : null;
    if (heldOut) log({ step: steps, heldOutAccuracy: heldOut.accuracy, heldOutMargin: heldOut.margin });
    writeDirAtomic(o.out, trainedFiles(o, model, lora, metricsPath));
    return { out: o.out, steps, heldOut };
  } catch (e) {
    reporter.stop();
    rmSync(o.out, { recursive: true, force: true });
    throw e;
  }
}
