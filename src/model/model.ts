// A language model: configuration, named parameters (Hugging Face names) and a forward
// pass from token ids to next-token logits.
import { countParameters, normalInit, type Parameters } from "../nn/parameters.ts";
import { Rng } from "../nn/random.ts";
import { Tensor } from "../tensor/index.ts";
import { architectureOf } from "./architecture.ts";
import type { ModelConfig } from "./config.ts";
import type { CacheStep } from "./kv-cache.ts";
import type { Adapters } from "./lora.ts";

export interface ForwardOptions {
  /** seed for dropout masks; dropout is off when absent (evaluation, inference) */
  dropoutSeed?: number;
  /** inference with a key/value cache: the tokens extend the sequences of this step */
  kv?: CacheStep;
  /** logits of each sequence's last token only ([B, vocab]) */
  lastOnly?: boolean;
}

export interface Model {
  readonly config: ModelConfig;
  readonly params: Parameters;
  /** LoRA adapters by the weight they adapt (empty unless fine-tuning with LoRA) */
  readonly adapters: Adapters;
  /** Logits [B * T, vocab] (or [B, vocab] with lastOnly) for token ids [B * T]. */
  forward(idx: Int32Array, B: number, T: number, opts?: ForwardOptions): Tensor;
}

export function buildModel(config: ModelConfig, params: Parameters, adapters: Adapters = new Map()): Model {
  const { forward } = architectureOf(config);
  return {
    config,
    params,
    adapters,
    forward: (idx, B, T, opts = {}) => forward(config, params, idx, B, T, opts, adapters),
  };
}

/** A freshly initialised model (nanoGPT's scheme: N(0, 0.02), residual projections scaled by 1/sqrt(2 * n_layer)). */
export function initModel(config: ModelConfig, seed = 1337): Model {
  const rng = new Rng(seed);
  const normal = (shape: number[], std = 0.02) => normalInit(shape, std, rng);
  return buildModel(config, architectureOf(config).parameters(config, normal));
}

/** A model of the right names and shapes with zero weights (to load weights into). */
export function emptyModel(config: ModelConfig): Model {
  const zeros = (shape: number[]) => Tensor.zeros(shape, true);
  return buildModel(config, architectureOf(config).parameters(config, zeros));
}

export type NormalInit = (shape: number[], std?: number) => Tensor;

/** Non-embedding parameter count (as nanoGPT reports it: position embeddings excluded). */
export function nonEmbeddingParams(model: Model): number {
  const { isEmbedding } = architectureOf(model.config);
  return countParameters(model.params, (name) => !isEmbedding(name));
}

/** Model FLOPs per token of a training step (forward + backward): 6N + 12 L C T. */
export function flopsPerToken(model: Model, T: number): number {
  const c = model.config;
  const headFlops = 6 * c.vocabSize * c.nEmbd; // the output projection, tied or not
  return 6 * nonEmbeddingParams(model) + headFlops + 12 * c.nLayer * c.nEmbd * T;
}
