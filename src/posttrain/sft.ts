// Supervised fine-tuning: next-token loss on the assistant's tokens of chat conversations.
// Three ways to choose what trains: everything (full), only the top N blocks (freeze, as
// LLaMA-Factory's freeze_trainable_layers), or LoRA adapters (optionally LoRA-FA: A frozen).
import { communicator } from "../backend/mpi.ts";
import { architectureOf } from "../model/architecture.ts";
import { featuresOf, initAdapter } from "../model/lora.ts";
import type { ImageBatch, Model } from "../model/model.ts";
import type { LoraConfig } from "../model/peft.ts";
import {
  isProjectorParameter,
  isVisionParameter,
  patchesPerImage,
  stackImages,
  type VisionConfig,
} from "../model/vision.ts";
import { freezeExcept, trainable } from "../nn/parameters.ts";
import { Rng } from "../nn/random.ts";
import { IGNORE_INDEX, noGrad, recyclingBuffers, type Tensor } from "../tensor/index.ts";
import { EMPTY_SHARE, type MicroBatch, Trainer } from "../train/trainer.ts";
import type { EncodedConversation } from "./encode.ts";

export type SftMode = "full" | "freeze" | "lora";

/**
 * What trains in a vision model (LLaVA's stages): only the projector (the encoder and the
 * language model frozen), the encoder and projector (the language model frozen), or
 * everything the mode trains plus the encoder and projector (under LoRA: the adapters only).
 */
export type VisionStage = "projector" | "vision" | "full";
export const VISION_STAGES: readonly VisionStage[] = ["projector", "vision", "full"];

export interface SftOptions {
  mode: SftMode;
  /** freeze mode: how many of the top blocks train */
  trainableLayers: number;
  /** freeze mode: the final norm (and an untied head) train too */
  trainHead: boolean;
  lora: LoraConfig;
  /** passes over the data (a fraction stops partway through the last one) */
  epochs: number;
  /** stop after this many steps, whatever the epochs say */
  maxSteps?: number;
  batchSize: number;
  /** micro-batches of batchSize per optimizer step (the step sees batchSize x gradAccum conversations) */
  gradAccum?: number;
  lr: number;
  warmupIters: number;
  weightDecay: number;
  gradClip: number;
  seed: number;
  /** under mpirun, 1 shards AdamW's moments over the ranks (ZeRO stage 1) */
  zeroStage?: number;
  /** vision models: which parts train (default full) */
  stage?: VisionStage;
}

export interface SftStep {
  step: number;
  total: number;
  loss: number;
  lr: number;
  /** real (unpadded) tokens in the batch */
  tokens: number;
  /** the batch's padded length */
  T: number;
  ms: number;
}

export interface SftResult {
  steps: number;
  finalLoss: number;
  trainableParams: number;
}

/** Default LoRA targets: the architecture's attention and MLP projections. */
export function defaultLoraTargets(model: Model): string[] {
  return [...architectureOf(model.config).loraTargets];
}

/** Sets requiresGrad on the model's parameters (and adds adapters) for the mode and stage; returns what trains. */
export function prepareTrainable(model: Model, o: SftOptions): [string, Tensor][] {
  const stage = o.stage ?? "full";
  if (!model.config.vision) {
    if (stage !== "full") throw new Error(`--stage ${stage} needs a vision model (the model has no vision encoder)`);
    return prepareLanguageModel(model, o);
  }
  if (stage !== "full") {
    freezeExcept(model.params, stage === "projector" ? isProjectorParameter : isVisionParameter);
    return trainable(model.params);
  }
  const language = prepareLanguageModel(model, o);
  // A PEFT adapter holds the language model's adapters only: under LoRA the encoder and projector stay the base's.
  if (o.mode === "lora") return language;
  const vision = [...model.params].filter(([name]) => isVisionParameter(name));
  for (const [, t] of vision) t.requiresGrad = true;
  return [...language.filter(([name]) => !isVisionParameter(name)), ...vision];
}

/** What trains of the language model: all of it, its top blocks, or LoRA adapters on its projections. */
function prepareLanguageModel(model: Model, o: SftOptions): [string, Tensor][] {
  const L = model.config.nLayer;
  const { blockOf, isHead, layout } = architectureOf(model.config);
  if (o.mode === "full") {
    freezeExcept(model.params, () => true);
    return trainable(model.params);
  }
  if (o.mode === "freeze") {
    if (!Number.isInteger(o.trainableLayers) || o.trainableLayers < 1 || o.trainableLayers > L) {
      throw new Error(
        `--trainable-layers must be between 1 and ${L} (the model has ${L} blocks), got ${o.trainableLayers}`,
      );
    }
    freezeExcept(model.params, (name) => {
      const i = blockOf(name);
      return (i !== null && i >= L - o.trainableLayers) || (o.trainHead && isHead(name));
    });
    return trainable(model.params);
  }
  freezeExcept(model.params, () => false);
  const rng = new Rng(o.seed);
  const out: [string, Tensor][] = [];
  for (const [name, w] of model.params) {
    const module = name.replace(/\.weight$/, "");
    if (blockOf(name) === null || !name.endsWith(".weight") || w.shape.length !== 2) continue;
    if (!o.lora.targets.some((t) => module.endsWith(`.${t}`))) continue;
    const [inF, outF] = featuresOf(w, layout);
    const adapter = initAdapter(inF, outF, o.lora.r, o.lora.alpha, o.lora.dropout, rng);
    if (o.lora.fa) adapter.A.requiresGrad = false; // LoRA-FA: A stays at its random init
    model.adapters.set(name, adapter);
    if (!o.lora.fa) out.push([`${module}.lora_A`, adapter.A]);
    out.push([`${module}.lora_B`, adapter.B]);
  }
  if (out.length === 0) throw new Error(`no layer matches the LoRA targets ${o.lora.targets.join(", ")}`);
  return out;
}

/** Padded lengths are multiples of this: few distinct shapes, so the matmul primitives made for one are reused. */
const PAD_MULTIPLE = 16;

/**
 * Right-pads a batch to its longest sequence, rounded up to a multiple of 16 (at most
 * `limit`, the model's context): each new shape costs oneDNN new primitives, far more
 * than the padding. Padding positions get IGNORE_INDEX targets, and causal attention never
 * lets a real token see them.
 */
export function padBatch(batch: EncodedConversation[], limit: number): { x: Int32Array; y: Int32Array; T: number } {
  const longest = Math.max(...batch.map((c) => c.tokens.length));
  const T = Math.max(longest, Math.min(limit, Math.ceil(longest / PAD_MULTIPLE) * PAD_MULTIPLE));
  const x = new Int32Array(batch.length * T);
  const y = new Int32Array(batch.length * T).fill(IGNORE_INDEX);
  batch.forEach((c, b) => {
    x.set(c.tokens, b * T);
    y.set(c.targets, b * T);
  });
  return { x, y, T };
}

/** The images of a padded batch (row length T) and the rows their patches replace; undefined when it has none. */
export function batchImages(batch: EncodedConversation[], T: number, vision?: VisionConfig): ImageBatch | undefined {
  if (!batch.some((c) => c.images?.starts.length)) return undefined;
  if (!vision) throw new Error("the conversations have images but the model has no vision encoder");
  const N = patchesPerImage(vision);
  const pixels: Float32Array[] = [];
  const rows: number[] = [];
  batch.forEach((c, b) => {
    c.images?.starts.forEach((start, i) => {
      pixels.push(c.images?.pixels[i] as Float32Array);
      for (let k = 0; k < N; k++) rows.push(b * T + start + k);
    });
  });
  return { pixels: stackImages(pixels), count: pixels.length, rows: Int32Array.from(rows) };
}

/** Steps a run takes: epochs x batches per epoch (rounded up), capped by maxSteps. */
export function sftSteps(
  conversations: number,
  o: Pick<SftOptions, "epochs" | "batchSize" | "maxSteps" | "gradAccum">,
): number {
  const total = Math.ceil(Math.ceil(conversations / (o.batchSize * (o.gradAccum ?? 1))) * o.epochs);
  return o.maxSteps === undefined ? total : Math.min(total, o.maxSteps);
}

export function runSft(
  model: Model,
  data: EncodedConversation[],
  o: SftOptions,
  onStep?: (s: SftStep) => void,
): SftResult {
  if (data.length === 0) throw new Error("no conversations to train on");
  const params = prepareTrainable(model, o);
  const accum = o.gradAccum ?? 1;
  const rng = new Rng(o.seed);
  const total = sftSteps(data.length, o);
  const comm = communicator();
  const trainer = posttrainTrainer(params, o, total);
  let step = 0;
  let finalLoss = Number.NaN;
  while (step < total) {
    for (const indices of lengthGroupedBatches(data, o.batchSize * accum, rng)) {
      if (step === total) break;
      const started = performance.now();
      const batch = indices.map((i) => data[i] as EncodedConversation);
      let T = 0;
      const micros: MicroBatch[] = [];
      for (let m = 0; m * o.batchSize < batch.length; m++) {
        // Under mpirun each rank takes every size-th conversation; token counts are global.
        const part = batch.slice(m * o.batchSize, (m + 1) * o.batchSize).filter((_, i) => i % comm.size === comm.rank);
        if (part.length === 0) {
          micros.push(EMPTY_SHARE);
          continue;
        }
        const padded = padBatch(part, model.config.blockSize);
        T = Math.max(T, padded.T);
        const dropoutSeed = o.seed * 100_003 + step * accum + m;
        const images = batchImages(part, padded.T, model.config.vision);
        micros.push({
          count: padded.y.reduce((n, t) => n + (t === IGNORE_INDEX ? 0 : 1), 0),
          loss: () => model.loss(padded.x, padded.y, part.length, padded.T, { dropoutSeed, images }),
        });
      }
      const r = trainer.step(step, micros);
      finalLoss = r.loss;
      const tokens = batch.reduce((n, c) => n + c.tokens.length, 0);
      onStep?.({ step, total, loss: finalLoss, lr: r.lr, tokens, T, ms: performance.now() - started });
      step++;
    }
  }
  return { steps: step, finalLoss, trainableParams: params.reduce((n, [, t]) => n + t.size, 0) };
}

/** Mean loss per assistant token over conversations (validation), without gradients. */
export function conversationLoss(model: Model, data: EncodedConversation[], batchSize: number): number {
  let sum = 0;
  let count = 0;
  noGrad(() => {
    for (let i = 0; i < data.length; i += batchSize) {
      const batch = data.slice(i, i + batchSize);
      const { x, y, T } = padBatch(batch, model.config.blockSize);
      const targets = y.reduce((n, t) => n + (t === IGNORE_INDEX ? 0 : 1), 0);
      if (targets === 0) continue;
      const images = batchImages(batch, T, model.config.vision);
      const loss = () => model.loss(x, y, batch.length, T, { images }).item();
      sum += recyclingBuffers(loss) * targets;
      count += targets;
    }
  });
  return count ? sum / count : Number.NaN;
}

/** Conversations per sorting window, in batches: wide enough to group lengths, narrow enough to stay random. */
const GROUP_WINDOW = 50;

/**
 * One epoch's batches, grouped by length (as Hugging Face's group_by_length): shuffle,
 * sort each window of 50 batches' worth by length, cut into batches, shuffle the batches.
 * A batch is padded to its longest conversation, so grouping spends the compute on
 * tokens rather than padding: a short arithmetic question no longer costs as much as a
 * long passage.
 */
export function lengthGroupedBatches(data: EncodedConversation[], batchSize: number, rng: Rng): number[][] {
  const order = shuffle(data.length, rng);
  const batches: number[][] = [];
  const window = batchSize * GROUP_WINDOW;
  for (let w = 0; w < order.length; w += window) {
    const sorted = order
      .slice(w, w + window)
      .sort((a, b) => (data[b] as EncodedConversation).tokens.length - (data[a] as EncodedConversation).tokens.length);
    for (let b = 0; b < sorted.length; b += batchSize) batches.push(sorted.slice(b, b + batchSize));
  }
  return shuffle(batches.length, rng).map((i) => batches[i] as number[]);
}

/**
 * The trainer post-training methods use: AdamW (beta2 0.99, as short fine-tuning runs
 * take), warmup then cosine decay over `total` steps down to minLr (a tenth of lr).
 */
export function posttrainTrainer(
  params: [string, Tensor][],
  o: Pick<SftOptions, "lr" | "warmupIters" | "weightDecay" | "gradClip" | "zeroStage">,
  total: number,
  minLr = o.lr / 10,
): Trainer {
  return new Trainer(params, {
    adam: { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: o.weightDecay },
    schedule: { lr: o.lr, minLr, warmupIters: Math.min(o.warmupIters, total), decayIters: total },
    gradClip: o.gradClip,
    shardOptimizer: o.zeroStage === 1,
  });
}

/** 0 .. n-1 in a random order (Fisher-Yates). */
export function shuffle(n: number, rng: Rng): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j] as number, a[i] as number];
  }
  return a;
}
