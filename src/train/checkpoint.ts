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
  const moments = momentTensors(optimizer, (name, m) => [...(model.params.get(name)?.shape ?? [m.length])]);
  writeDirAtomic(dir, {
    ...modelFiles(model),
    ...extraFiles,
    [STATE_TENSORS]: encodeSafetensors(moments),
    [STATE_JSON]: stateJson(progress, optimizer),
  });
}

/** The AdamW moments as tensors named exp_avg.NAME and exp_avg_sq.NAME (PyTorch's names). */
function momentTensors(
  optimizer: AdamWState,
  shapeOf: (name: string, m: Float32Array) => number[],
): Map<string, NamedTensor> {
  const tensors = new Map<string, NamedTensor>();
  for (const [name, m] of optimizer.m) {
    const shape = shapeOf(name, m);
    tensors.set(`exp_avg.${name}`, { shape, data: m });
    tensors.set(`exp_avg_sq.${name}`, { shape, data: optimizer.v.get(name) as Float32Array });
  }
  return tensors;
}

/** The moments read back from momentTensors' names, at an optimizer step. */
function momentsOf(tensors: Map<string, NamedTensor>, step: number): AdamWState {
  const optimizer: AdamWState = { step, m: new Map(), v: new Map() };
  for (const [name, t] of tensors) {
    if (name.startsWith("exp_avg_sq.")) optimizer.v.set(name.slice("exp_avg_sq.".length), t.data);
    else if (name.startsWith("exp_avg.")) optimizer.m.set(name.slice("exp_avg.".length), t.data);
  }
  return optimizer;
}

function stateJson(progress: object, optimizer: AdamWState): string {
  return `${JSON.stringify({ ...progress, optimizerStep: optimizer.step }, null, 2)}\n`;
}

/** A checkpoint's trainer_state.json; missing or not JSON is an error naming it. */
function readStateJson<T>(dir: string): T & { optimizerStep: number } {
  const jsonPath = join(dir, STATE_JSON);
  if (!existsSync(jsonPath)) throw new Error(`${dir}: no checkpoint to resume (${STATE_JSON} is missing)`);
  try {
    return JSON.parse(readFileSync(jsonPath, "utf8"));
  } catch {
    throw new Error(`${jsonPath}: corrupt checkpoint state (invalid JSON)`);
  }
}

export function loadCheckpoint(dir: string): Checkpoint {
  const state = readStateJson<TrainerProgress>(dir);
  if (!Number.isInteger(state.step) || !Array.isArray(state.rng) || state.rng.length !== 4) {
    throw new Error(`${join(dir, STATE_JSON)}: corrupt checkpoint state (step or rng missing)`);
  }
  const model = loadModel(dir);
  const optimizer = momentsOf(readSafetensors(join(dir, STATE_TENSORS)).tensors, state.optimizerStep);
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
export function saveTrainerState(
  dir: string,
  trainer: Trainer,
  progress: PartialProgress,
  optimizer: AdamWState = trainer.optimizer.state,
): void {
  const params = new Map(trainer.params);
  const tensors = momentTensors(optimizer, (name) => [...(params.get(name)?.shape ?? [])]);
  for (const [name, t] of trainer.params) tensors.set(`param.${name}`, { shape: [...t.shape], data: t.data });
  writeDirAtomic(dir, {
    [STATE_TENSORS]: encodeSafetensors(tensors),
    [STATE_JSON]: stateJson(progress, optimizer),
  });
}

/** Restores a trainer saved by saveTrainerState (its parameters and moments); returns the steps completed. */
export function loadTrainerState(dir: string, trainer: Trainer, configDigest: string): number {
  const progress = readStateJson<PartialProgress>(dir);
  if (progress.configDigest !== configDigest)
    throw new Error(`${dir}: the checkpoint was made with other settings, model or tasks; cannot resume it with these`);
  const { tensors } = readSafetensors(join(dir, STATE_TENSORS));
  for (const [name, t] of trainer.params) {
    const saved = tensors.get(`param.${name}`);
    if (!saved || saved.data.length !== t.size) throw new Error(`${dir}: the checkpoint has no ${name} of its size`);
    t.data.set(saved.data);
  }
  trainer.optimizer.load(momentsOf(tensors, progress.optimizerStep), dir);
  return progress.step;
}
