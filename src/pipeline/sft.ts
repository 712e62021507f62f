// The fine-tuning stage as `llmfab sft` runs it: model and tokenizer from a directory,
// conversations encoded with its chat template, SFT with progress, validation loss and
// metrics.jsonl, then a model or adapter directory (metrics.jsonl kept inside).
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { communicator } from "../backend/mpi.ts";
import { refuseExisting, writeDirAtomic, writeFileAtomic } from "../io/atomic.ts";
import { jsonLine } from "../io/json.ts";
import { loadModel, modelFiles } from "../model/directory.ts";
import { addVision, flopsPerToken, type Model } from "../model/model.ts";
import { adapterFiles, type LoraConfig, loadAnyModel } from "../model/peft.ts";
import { defaultVision, isProjectorParameter, isVisionParameter } from "../model/vision.ts";
import { Rng } from "../nn/random.ts";
import { checkRange } from "../options/ranges.ts";
import { type Conversation, readConversations } from "../posttrain/data.ts";
import type { EncodedConversation } from "../posttrain/encode.ts";
import {
  conversationLoss,
  defaultLoraTargets,
  runSft,
  type SftMode,
  sftSteps,
  shuffle,
  VISION_STAGES,
  type VisionStage,
} from "../posttrain/sft.ts";
import type { Tensor } from "../tensor/index.ts";
import { createReporter } from "../train/progress.ts";
import { peakFlops } from "../train/throughput.ts";
import { loadChatCodec, tokenizerFilesOf } from "./codec.ts";
import { encodeChat } from "./vision.ts";

export interface SftCommand {
  model: string;
  data: string[];
  /** validation conversations; without them, valFraction of data is held out */
  valData?: string[];
  valFraction: number;
  mode: SftMode;
  trainableLayers: number;
  trainHead: boolean;
  loraRank: number;
  loraAlpha: number;
  loraDropout: number;
  loraTargets?: string[];
  loraFa: boolean;
  epochs: number;
  maxSteps?: number;
  warmup: number;
  batchSize: number;
  /** micro-batches per optimizer step */
  gradAccum?: number;
  lr: number;
  seed: number;
  out: string;
  /** weights on disk (full and freeze modes): float32, or bfloat16 at half the size */
  saveDtype?: "float32" | "bfloat16";
  /** validation loss this often (default: about ten times a run) */
  evalInterval?: number;
  threads: number;
  quiet?: boolean;
  /** under mpirun, 1 shards AdamW's moments over the ranks (ZeRO stage 1) */
  zeroStage?: number;
  /** give a text model a vision encoder and projector: "new" (fresh, default ViT) or a vision model directory to take them from */
  visionEncoder?: string;
  /** vision models: which parts train (default full) */
  stage?: VisionStage;
}

export const METRICS_FILE = "metrics.jsonl";
/** The tools a model was fine-tuned to call, by name: `llmfab chat` offers them by default. */
export const TOOLS_FILE = "llmfab_tools.json";

/** The tool names recorded in a model directory by llmfab sft (none for other models). */
export function trainedTools(dir: string): string[] {
  const path = join(dir, TOOLS_FILE);
  if (!existsSync(path)) return [];
  try {
    const value = JSON.parse(readFileSync(path, "utf8")) as { tools?: unknown };
    return Array.isArray(value.tools) ? value.tools.filter((t): t is string => typeof t === "string") : [];
  } catch {
    throw new Error(`${path}: invalid JSON`);
  }
}

export function checkSftCommand(o: Omit<SftCommand, "data">): void {
  checkRange("--epochs", o.epochs, "epochs");
  checkRange("--batch-size", o.batchSize, "batchSize");
  if (o.gradAccum !== undefined) checkRange("--grad-accum", o.gradAccum, "gradAccum");
  checkRange("--lr", o.lr, "lr");
  checkRange("--warmup", o.warmup, "warmup");
  checkRange("--val-fraction", o.valFraction, "valFraction");
  checkRange("--seed", o.seed, "seed");
  if (o.maxSteps !== undefined) checkRange("--max-steps", o.maxSteps, "steps");
  if (o.evalInterval !== undefined) checkRange("--eval-interval", o.evalInterval, "steps");
  if (o.mode === "freeze") checkRange("--trainable-layers", o.trainableLayers, "trainableLayers");
  if (o.stage !== undefined && !VISION_STAGES.includes(o.stage))
    throw new Error(`--stage must be ${VISION_STAGES.join(", ")}, got ${o.stage}`);
  if (o.stage !== undefined && o.stage !== "full" && o.mode !== "full")
    throw new Error(`--stage ${o.stage} trains no language-model weights: use it with --mode full (the default)`);
  if (o.mode === "lora" && o.visionEncoder !== undefined)
    throw new Error(
      "--vision-encoder with --mode lora: an adapter cannot carry a new encoder; fine-tune with --mode full first",
    );
  if (o.mode === "lora") {
    checkRange("--lora-rank", o.loraRank, "loraRank");
    checkRange("--lora-alpha", o.loraAlpha, "loraAlpha");
    checkRange("--lora-dropout", o.loraDropout, "dropout");
  }
}

/** An output folder is refused unless it is empty or holds only the metrics of a run that died. */
export function refuseFinishedOutput(out: string): void {
  const leftover = existsSync(out) && readdirSync(out).every((f) => f === METRICS_FILE);
  if (!leftover) refuseExisting(out);
}

/** Conversations encoded at once (their images decoded in parallel). */
const ENCODE_AHEAD = 16;

/** Training and validation conversations: the validation file, or a seeded share held out. */
async function splitConversations(o: SftCommand, encode: (c: Conversation) => Promise<EncodedConversation>) {
  const conversations = readConversations(o.data);
  const toolNames = [...new Set(conversations.flatMap((c) => (c.tools ?? []).map((t) => t.name)))].sort();
  // Images decode on libuv's threads: a few conversations at a time keep every core busy.
  const encodeAll = async (list: Conversation[]) => {
    const out: EncodedConversation[] = [];
    for (let i = 0; i < list.length; i += ENCODE_AHEAD)
      out.push(...(await Promise.all(list.slice(i, i + ENCODE_AHEAD).map(encode))));
    return out;
  };
  const all = await encodeAll(conversations);
  if (o.valData?.length) return { train: all, val: await encodeAll(readConversations(o.valData)), toolNames };
  return { ...heldOutSplit(all, o.valFraction, o.seed), toolNames };
}

/** The model to fine-tune: the --model directory, given a vision encoder when --vision-encoder asks for one. */
function startingModel(o: SftCommand): Model {
  const model = loadAnyModel(o.model);
  if (o.visionEncoder === undefined) return model;
  if (o.visionEncoder === "new") return addVision(model, defaultVision(), o.seed);
  const donor = loadModel(o.visionEncoder);
  if (!donor.config.vision)
    throw new Error(`${o.visionEncoder}: not a vision model (its config.json has no vision_config)`);
  const fresh = addVision(model, donor.config.vision, o.seed);
  for (const [name, t] of donor.params) {
    if (!isVisionParameter(name)) continue;
    const own = fresh.params.get(name) as Tensor;
    // The projector maps into the language model's width: it is taken only where the widths agree.
    if (own.size === t.size) own.data.set(t.data);
    else if (!isProjectorParameter(name))
      throw new Error(`${o.visionEncoder}: ${name} has shape [${t.shape}], the encoder needs [${own.shape}]`);
  }
  return fresh;
}

type TrainedModeFlags = Pick<
  SftCommand,
  "mode" | "loraRank" | "loraAlpha" | "loraDropout" | "loraTargets" | "loraFa" | "model" | "saveDtype" | "out"
>;

/** The LoRA settings of a command's flags (the architecture's projections unless --lora-targets). */
export function loraOf(o: TrainedModeFlags, model: Model): LoraConfig {
  return {
    r: o.loraRank,
    alpha: o.loraAlpha,
    dropout: o.loraDropout,
    targets: o.loraTargets ?? defaultLoraTargets(model),
    fa: o.loraFa,
  };
}

/** The run's metrics.jsonl, started empty (or kept, to go on with a resumed run), and a logger that appends to it. */
export function openMetrics(out: string, keep = false): { path: string; log(record: object): void } {
  const path = join(out, METRICS_FILE);
  mkdirSync(out, { recursive: true });
  if (!keep || !existsSync(path)) writeFileAtomic(path, "");
  return { path, log: (record) => appendFileSync(path, jsonLine(record)) };
}

/**
 * What a trained run leaves: the model (or its PEFT adapter), the base's tokenizer files,
 * the tools it was trained to call (the base's and those its data offered), the metrics.
 */
export function trainedFiles(
  o: TrainedModeFlags,
  model: Model,
  lora: LoraConfig,
  metricsPath: string,
  toolsOffered: string[] = [],
): Record<string, Uint8Array | string> {
  const weights =
    o.mode === "lora"
      ? adapterFiles(model, lora, resolve(o.model))
      : modelFiles(model, o.saveDtype === "bfloat16" ? "BF16" : "F32");
  return {
    ...weights,
    ...tokenizerFilesOf(o.model),
    ...toolsFile(o.model, toolsOffered),
    [METRICS_FILE]: readFileSync(metricsPath, "utf8"),
  };
}

/** The tools file of a model trained from `source`: the tools it was trained to call, and those of the new data. */
function toolsFile(source: string, added: string[]): Record<string, string> {
  const tools = [...new Set([...trainedTools(source), ...added])].sort();
  return tools.length ? { [TOOLS_FILE]: `${JSON.stringify({ tools })}\n` } : {};
}

/** A seeded share of the items held out for validation, the rest for training. */
export function heldOutSplit<T>(all: T[], fraction: number, seed: number): { train: T[]; val: T[] } {
  const held = Math.floor(all.length * fraction);
  if (held === 0) return { train: all, val: [] };
  const isVal = new Set(shuffle(all.length, new Rng(seed + 7)).slice(0, held));
  return { train: all.filter((_, i) => !isVal.has(i)), val: all.filter((_, i) => isVal.has(i)) };
}

export async function runSftCommand(o: SftCommand): Promise<{
  out: string;
  steps: number;
  finalLoss: number;
  valLoss: number | null;
  trainableParams: number;
}> {
  checkSftCommand(o);
  refuseFinishedOutput(o.out);
  const model = startingModel(o);
  const codec = loadChatCodec(o.model);
  const { train, val, toolNames } = await splitConversations(o, (c) =>
    encodeChat(c, codec, model.config.blockSize, model.config.vision),
  );
  if (train.length === 0) throw new Error(`${o.data.join(", ")}: no conversations to train on`);
  const lora = loraOf(o, model);
  const options = { ...o, lora, warmupIters: o.warmup, weightDecay: 0, gradClip: 1 };
  const total = sftSteps(train.length, options);
  const evalEvery = o.evalInterval ?? Math.max(1, Math.ceil(total / 10));
  // Under mpirun every rank trains on its share of each batch; rank 0 alone validates and writes.
  const lead = communicator().rank === 0;
  const { path: metricsPath, log } = lead ? openMetrics(o.out) : { path: "", log: () => {} };
  const reporter = createReporter(total, 0, Math.max(1, Math.floor(total / 20)), (o.quiet ?? false) || !lead);
  const flops = flopsPerToken(model, model.config.blockSize);
  const peak = peakFlops(o.threads);
  let valLoss: number | null = null;
  const validate = (step: number, trainLoss: number) => {
    if (val.length === 0 || !lead) return;
    valLoss = conversationLoss(model, val, o.batchSize);
    log({ step, valLoss });
    reporter.evaluation(step, trainLoss, valLoss);
  };
  try {
    const r = runSft(model, train, options, (s) => {
      const tokPerSec = (s.tokens / s.ms) * 1000;
      log({ step: s.step, loss: s.loss, lr: s.lr, ms: s.ms, tokPerS: tokPerSec });
      reporter.step({ step: s.step, loss: s.loss, lr: s.lr, tokPerSec, mfu: (flops * tokPerSec) / peak, ms: s.ms });
      if ((s.step + 1) % evalEvery === 0 && s.step + 1 < s.total) validate(s.step + 1, s.loss);
    });
    validate(r.steps, r.finalLoss);
    reporter.stop();
    if (lead) writeDirAtomic(o.out, trainedFiles(o, model, lora, metricsPath, toolNames));
    return { out: o.out, ...r, valLoss };
  } catch (e) {
    reporter.stop();
    if (lead) rmSync(o.out, { recursive: true, force: true }); // it held nothing but this run's metrics
    throw e;
  }
}
