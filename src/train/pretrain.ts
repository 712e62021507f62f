// Pretraining: next-token prediction on a token stream, the way nanoGPT trains.
// AdamW, warmup + cosine schedule, gradient accumulation and clipping, periodic
// validation, JSONL metrics, atomic checkpoints and exact resume.
import { createHash } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type Communicator, communicator } from "../backend/mpi.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { type ModelConfig, makeConfig } from "../model/config.ts";
import { generate } from "../model/generate.ts";
import { flopsPerToken, initModel, type Model } from "../model/model.ts";
import { countParameters, trainable } from "../nn/parameters.ts";
import { Rng } from "../nn/random.ts";
import { cpuHasBf16, cpuSummary, noGrad, recyclingBuffers, resolvePrecision, setPrecision } from "../tensor/index.ts";
import { randomBatch, type Split } from "./batches.ts";
import { loadCheckpoint, STATE_JSON, saveCheckpoint, type TrainerProgress } from "./checkpoint.ts";
import type { PretrainConfig } from "./config.ts";
import { rankRows } from "./distributed.ts";
import { createReporter } from "./progress.ts";
import { peakFlops } from "./throughput.ts";
import { type MicroBatch, Trainer, type TrainerOptions } from "./trainer.ts";

export interface TextCodec {
  vocabSize: number;
  encode(text: string): Int32Array;
  decode(ids: ArrayLike<number>): string;
  /** files that save the tokenizer into a model directory */
  files(): Record<string, string>;
}

export interface PretrainOptions {
  config: PretrainConfig;
  train: Split;
  val: Split;
  codec: TextCodec;
  /** run directory: holds model/ (the latest checkpoint) and metrics.jsonl */
  outDir: string;
  resume: boolean;
  threads: number;
  /** no progress output on stderr */
  quiet: boolean;
  /** the ranks sharing each batch (default: this process's job: one rank unless under mpirun) */
  comm?: Communicator;
}

export interface PretrainResult {
  valLoss: number;
  trainLoss: number;
  steps: number;
  tokens: number;
  wallSeconds: number;
  tokPerSec: number;
  modelDir: string;
  samples: string[];
}

export function modelConfigOf(c: PretrainConfig, vocabSize: number): ModelConfig {
  const m = c.model;
  return makeConfig({
    arch: m.arch,
    vocabSize,
    blockSize: m.block_size,
    nLayer: m.n_layer,
    nHead: m.n_head,
    nKvHead: m.n_kv_head ?? m.n_head,
    nEmbd: m.n_embd,
    bias: m.arch === "gpt2" ? m.bias : false,
    dropout: m.dropout,
    ...(m.intermediate_size ? { intermediateSize: m.intermediate_size } : {}),
    ...(m.rope_theta ? { ropeTheta: m.rope_theta } : {}),
  });
}

/** What must not change between a run and its resumption. */
function configDigest(c: PretrainConfig, vocabSize: number): string {
  const { model, train, data, tokenizer, val_fraction } = c;
  const fixed = {
    model,
    data,
    tokenizer,
    val_fraction,
    vocabSize,
    seed: train.seed,
    batch: train.batch_size,
    accum: train.grad_accum,
  };
  return createHash("sha256").update(JSON.stringify(fixed)).digest("hex").slice(0, 16);
}

export function pretrain(o: PretrainOptions): PretrainResult {
  const { config: cfg, codec } = o;
  const t = cfg.train;
  // Every rank draws the same windows (one data stream, whatever the number of ranks) and
  // trains on its share of them; rank 0 alone evaluates and writes.
  const comm = o.comm ?? communicator();
  const lead = comm.rank === 0;
  const rows = rankRows(t.batch_size, comm, "train.batch_size");
  const modelDir = join(o.outDir, "model");
  const metricsPath = join(o.outDir, "metrics.jsonl");
  const digest = configDigest(cfg, codec.vocabSize);
  setPrecision(resolvePrecision(t.precision));

  let model: Model;
  let progress: TrainerProgress;
  let trainer: Trainer;
  let createdDir = false;
  if (o.resume) {
    const ckpt = loadCheckpoint(modelDir);
    if (ckpt.progress.configDigest !== digest) {
      throw new Error(
        `${modelDir}: the checkpoint was made with a different model, data or seed; cannot resume it with this config`,
      );
    }
    model = ckpt.model;
    progress = ckpt.progress;
    trainer = new Trainer(trainable(model.params), trainerOptions(cfg, comm));
    trainer.optimizer.load(ckpt.optimizer, modelDir);
    if (lead) truncateMetrics(metricsPath, progress.step);
  } else {
    if (existsSync(join(modelDir, STATE_JSON)) || existsSync(join(modelDir, "config.json"))) {
      throw new Error(`${o.outDir} already holds a run; pass --resume to continue it or choose another --out`);
    }
    // The model first: a config it rejects leaves no run folder behind.
    model = initModel(modelConfigOf(cfg, codec.vocabSize), t.seed);
    progress = { step: 0, rng: new Rng(t.seed).state(), tokens: 0, wallSeconds: 0, configDigest: digest };
    trainer = new Trainer(trainable(model.params), trainerOptions(cfg, comm));
    if (lead) {
      createdDir = !existsSync(o.outDir);
      mkdirSync(o.outDir, { recursive: true });
      writeFileAtomic(metricsPath, "");
    }
  }
  const quiet = o.quiet || !lead;
  if (!quiet) process.stderr.write(runSummary(model, o, progress.step, comm.size));

  const rng = new Rng(progress.rng);
  const B = t.batch_size;
  const T = model.config.blockSize;
  const tokensPerStep = B * T * t.grad_accum;
  const flops = flopsPerToken(model, T);
  const peak = peakFlops(o.threads);
  const reporter = createReporter(t.max_iters, progress.step, t.log_interval, quiet);
  const log = (record: object) => {
    if (lead) appendFileSync(metricsPath, `${JSON.stringify(record)}\n`);
  };
  const evaluate = (step: number) => {
    if (!lead) return { trainLoss: Number.NaN, valLoss: Number.NaN };
    const trainLoss = estimateLoss(model, o.train, B, T, t.eval_iters, t.seed + 1);
    const valLoss = estimateLoss(model, o.val, B, T, t.eval_iters, t.seed + 2);
    log({ step, train_loss: trainLoss, val_loss: valLoss });
    reporter.evaluation(step, trainLoss, valLoss);
    return { trainLoss, valLoss };
  };
  const checkpoint = () => {
    progress.rng = rng.state();
    const optimizer = trainer.optimizerState(); // every rank takes part: a sharded state is gathered
    if (lead) saveCheckpoint(modelDir, model, optimizer, progress, codec.files());
  };

  const runStart = performance.now();
  const wallBefore = progress.wallSeconds;
  try {
    for (let step = progress.step; step < t.max_iters; step++) {
      if (step % t.eval_interval === 0) evaluate(step);
      const started = performance.now();
      const micros = Array.from({ length: t.grad_accum }, (_, micro): MicroBatch => {
        const batch = randomBatch(o.train, B, T, rng);
        const [from, to] = [rows.start * T, (rows.start + rows.count) * T];
        const [x, y] = [batch.x.subarray(from, to), batch.y.subarray(from, to)];
        const dropoutSeed =
          model.config.dropout > 0
            ? ((step * t.grad_accum + micro) * 1000 + t.seed) * comm.size + comm.rank
            : undefined;
        return { count: rows.count * T, loss: () => model.loss(x, y, rows.count, T, { dropoutSeed }) };
      });
      const { loss, lr, gradNorm, allreduceSeconds } = trainer.step(step, micros);

      const ms = performance.now() - started;
      const tokPerSec = (tokensPerStep / ms) * 1000;
      progress.step = step + 1;
      progress.tokens += tokensPerStep;
      progress.wallSeconds = wallBefore + (performance.now() - runStart) / 1000;
      const mfu = (flops * tokPerSec) / peak;
      if (step % t.log_interval === 0)
        log({
          step,
          loss,
          lr,
          grad_norm: gradNorm,
          ms,
          tok_per_s: tokPerSec,
          mfu,
          ...(comm.size > 1 ? { ranks: comm.size, allreduce_ms: allreduceSeconds * 1000 } : {}),
        });
      reporter.step({ step, loss, lr, tokPerSec, mfu, ms });
      if (progress.step % t.checkpoint_interval === 0 && progress.step < t.max_iters) checkpoint();
    }
    const final = evaluate(t.max_iters);
    progress.wallSeconds = wallBefore + (performance.now() - runStart) / 1000;
    checkpoint();
    reporter.stop();
    const samples = lead
      ? sampleTexts(model, codec, cfg, Int32Array.from((o.train[0] as Int32Array).subarray(0, 1)))
      : [];
    return {
      ...final,
      steps: progress.step,
      tokens: progress.tokens,
      wallSeconds: progress.wallSeconds,
      tokPerSec: progress.tokens / progress.wallSeconds,
      modelDir,
      samples,
    };
  } catch (e) {
    // Before the first checkpoint there is nothing to resume: leave nothing behind.
    if (lead && !existsSync(join(modelDir, STATE_JSON))) {
      if (createdDir) rmSync(o.outDir, { recursive: true, force: true });
      else rmSync(metricsPath, { force: true });
    }
    throw e;
  } finally {
    reporter.stop();
  }
}

const millions = (n: number) => `${(n / 1e6).toFixed(n < 1e7 ? 2 : 1)} M`;

/** What the run is about to do, printed before the first step. */
function runSummary(model: Model, o: PretrainOptions, fromStep: number, ranks: number): string {
  const c = model.config;
  const t = o.config.train;
  const params = countParameters(model.params);
  const tokens = (s: Split) => s.reduce((n, a) => n + a.length, 0);
  const perStep = t.batch_size * c.blockSize * t.grad_accum;
  const precision = resolvePrecision(t.precision);
  const bf16 = precision === "bf16" ? (cpuHasBf16() ? " (native)" : " (emulated: no avx512_bf16)") : "";
  return [
    `${c.arch}: ${c.nLayer} layers, ${c.nHead} heads, ${c.nEmbd} wide, block ${c.blockSize}; ${millions(params)} parameters, vocabulary ${c.vocabSize.toLocaleString()}`,
    `data: ${millions(tokens(o.train))} train / ${millions(tokens(o.val))} val tokens; ${perStep.toLocaleString()} tokens per step, steps ${fromStep + 1}-${t.max_iters} (${((t.max_iters * perStep) / tokens(o.train) || 0).toFixed(2)} epochs)`,
    `compute: ${ranks > 1 ? `${ranks} ranks (MPI) x ` : ""}${o.threads} threads, matmuls in ${precision}${bf16}, ${cpuSummary()}`,
    "",
  ].join("\n");
}

function trainerOptions(cfg: PretrainConfig, comm: Communicator): TrainerOptions {
  const t = cfg.train;
  return {
    comm,
    adam: { beta1: t.beta1, beta2: t.beta2, eps: 1e-8, weightDecay: t.weight_decay },
    schedule: {
      lr: t.lr,
      minLr: t.min_lr ?? t.lr / 10,
      warmupIters: t.warmup_iters,
      decayIters: t.lr_decay_iters ?? t.max_iters,
    },
    gradClip: t.grad_clip,
    shardOptimizer: t.zero_stage === 1,
  };
}

/** Mean loss over `iters` random batches drawn with a fixed seed, so every evaluation sees the same batches. */
export function estimateLoss(model: Model, tokens: Split, B: number, T: number, iters: number, seed: number): number {
  const rng = new Rng(seed);
  let sum = 0;
  noGrad(() => {
    for (let i = 0; i < iters; i++) {
      const { x, y } = randomBatch(tokens, B, T, rng);
      sum += recyclingBuffers(() => model.loss(x, y, B, T).item());
    }
  });
  return sum / iters;
}

function sampleTexts(model: Model, codec: TextCodec, cfg: PretrainConfig, fallback: Int32Array): string[] {
  const s = cfg.sample;
  let prompt: Int32Array;
  try {
    prompt = codec.encode(s.prompt);
  } catch {
    prompt = fallback; // the prompt has characters outside the vocabulary
  }
  if (prompt.length === 0) prompt = fallback;
  const opts = { maxTokens: s.max_tokens, temperature: s.temperature, topK: s.top_k };
  const text = (seed: number) => codec.decode(prompt) + codec.decode(generate(model, prompt, { ...opts, seed }));
  return Array.from({ length: s.count }, (_, i) => text(cfg.train.seed + i));
}

/**
 * Drops metric lines at or after `step`, so a resumed run does not log them twice (and a
 * last line torn by a kill, which does not parse).
 */
export function truncateMetrics(path: string, step: number): void {
  if (!existsSync(path)) return;
  const before = (line: string) => {
    try {
      return (JSON.parse(line) as { step: number }).step < step;
    } catch {
      return false;
    }
  };
  const kept = readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line && before(line));
  writeFileAtomic(path, kept.map((l) => `${l}\n`).join(""));
}
