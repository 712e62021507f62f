// A checkpoint is a model directory plus the training state beside it:
// trainer_state.safetensors (AdamW moments) and trainer_state.json (step, RNG, progress).
// It is written atomically, so an interrupted write leaves the previous one intact.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeDirAtomic } from "../io/atomic.ts";
import { loadModel, modelFiles } from "../model/directory.ts";
import type { Model } from "../model/model.ts";
import { encodeSafetensors, type NamedTensor, readSafetensors } from "../model/safetensors.ts";
import type { RngState } from "../nn/random.ts";
import type { AdamWState } from "../optim/adamw.ts";
import type { Trainer } from "./trainer.ts";

export const STATE_JSON = "trainer_state.json";
export const STATE_TENSORS = "trainer_state.safetensors";

export interface TrainerProgress {
  /** optimizer steps completed */
  step: number;
  rng: RngState;
  tokens: number;
  wallSeconds: number;
  /** a digest of the training config, so --resume refuses a changed run */
  configDigest: string;
}

export interface Checkpoint {
  model: Model;
  optimizer: AdamWState;
  progress: TrainerProgress;
}

export function saveCheckpoint(
  dir: string,
  model: Model,
  optimizer: AdamWState,
  progress: TrainerProgress,
  extraFiles: Record<string, string>,
): void {
  const moments = new Map<string, NamedTensor>();
  for (const [name, m] of optimizer.m) {
    const shape = [...(model.params.get(name)?.shape ?? [m.length])];
    moments.set(`exp_avg.${name}`, { shape, data: m });
    moments.set(`exp_avg_sq.${name}`, { shape, data: optimizer.v.get(name) as Float32Array });
  }
  writeDirAtomic(dir, {
    ...modelFiles(model),
    ...extraFiles,
    [STATE_TENSORS]: encodeSafetensors(moments),
    [STATE_JSON]: `${JSON.stringify({ ...progress, optimizerStep: optimizer.step }, null, 2)}\n`,
  });
}

export function loadCheckpoint(dir: string): Checkpoint {
  const jsonPath = join(dir, STATE_JSON);
  if (!existsSync(jsonPath)) throw new Error(`${dir}: no checkpoint to resume (${STATE_JSON} is missing)`);
  let state: TrainerProgress & { optimizerStep: number };
  try {
    state = JSON.parse(readFileSync(jsonPath, "utf8"));
  } catch {
    throw new Error(`${jsonPath}: corrupt checkpoint state (invalid JSON)`);
  }
  if (!Number.isInteger(state.step) || !Array.isArray(state.rng) || state.rng.length !== 4) {
    throw new Error(`${jsonPath}: corrupt checkpoint state (step or rng missing)`);
  }
  const model = loadModel(dir);
  const { tensors } = readSafetensors(join(dir, STATE_TENSORS));
  const optimizer: AdamWState = { step: state.optimizerStep, m: new Map(), v: new Map() };
  for (const [name, t] of tensors) {
    if (name.startsWith("exp_avg_sq.")) optimizer.v.set(name.slice("exp_avg_sq.".length), t.data);
    else if (name.startsWith("exp_avg.")) optimizer.m.set(name.slice("exp_avg.".length), t.data);
  }
  const { optimizerStep: _, ...progress } = state;
  return { model, optimizer, progress };
}

/** Progress of a run that trains part of a model (RL, preference tuning), saved beside its trainable state. */
export interface PartialProgress {
  /** steps completed */
  step: number;
  /** a digest of the run's settings, so a resume refuses a changed run */
  configDigest: string;
}

/**
 * Saves what a run that trains some of a model's parameters needs to resume exactly: the
 * trainable parameters' values (full weights, a few layers, or LoRA adapters alike), their
 * AdamW moments and the progress. Atomic: an interrupted write leaves the previous one.
 */
export function saveTrainerState(dir: string, trainer: Trainer, progress: PartialProgress): void {
  const tensors = new Map<string, NamedTensor>();
  const state = trainer.optimizer.state;
  for (const [name, t] of trainer.params) {
    const shape = [...t.shape];
    tensors.set(`param.${name}`, { shape, data: t.data });
    tensors.set(`exp_avg.${name}`, { shape, data: state.m.get(name) as Float32Array });
    tensors.set(`exp_avg_sq.${name}`, { shape, data: state.v.get(name) as Float32Array });
  }
  writeDirAtomic(dir, {
    [STATE_TENSORS]: encodeSafetensors(tensors),
    [STATE_JSON]: `${JSON.stringify({ ...progress, optimizerStep: state.step }, null, 2)}\n`,
  });
}

/** Restores a trainer saved by saveTrainerState (its parameters and moments); returns the steps completed. */
export function loadTrainerState(dir: string, trainer: Trainer, configDigest: string): number {
  const jsonPath = join(dir, STATE_JSON);
  if (!existsSync(jsonPath)) throw new Error(`${dir}: no checkpoint to resume (${STATE_JSON} is missing)`);
  let progress: PartialProgress & { optimizerStep: number };
  try {
    progress = JSON.parse(readFileSync(jsonPath, "utf8"));
  } catch {
    throw new Error(`${jsonPath}: corrupt checkpoint state (invalid JSON)`);
  }
  if (progress.configDigest !== configDigest)
    throw new Error(`${dir}: the checkpoint was made with other settings, model or tasks; cannot resume it with these`);
  const { tensors } = readSafetensors(join(dir, STATE_TENSORS));
  const optimizer: AdamWState = { step: progress.optimizerStep, m: new Map(), v: new Map() };
  for (const [name, t] of trainer.params) {
    const saved = tensors.get(`param.${name}`);
    if (!saved || saved.data.length !== t.size) throw new Error(`${dir}: the checkpoint has no ${name} of its size`);
    t.data.set(saved.data);
    optimizer.m.set(name, tensors.get(`exp_avg.${name}`)?.data ?? new Float32Array(0));
    optimizer.v.set(name, tensors.get(`exp_avg_sq.${name}`)?.data ?? new Float32Array(0));
  }
  trainer.optimizer.load(optimizer, dir);
  return progress.step;
}
