// A language model: configuration, named parameters (Hugging Face names) and a forward
// pass from token ids to next-token logits.
import { countParameters, normalInit, type Parameters } from "../nn/parameters.ts";
import { Rng } from "../nn/random.ts";
import { linearCrossEntropy, Tensor } from "../tensor/index.ts";
import { architectureOf } from "./architecture.ts";
import type { ModelConfig } from "./config.ts";
import type { CacheStep } from "./kv-cache.ts";
import type { Adapters } from "./lora.ts";
import { encodeImages, type VisionConfig, visionParameters } from "./vision.ts";

export interface ForwardOptions {
  /** seed for dropout masks; dropout is off when absent (evaluation, inference) */
  dropoutSeed?: number;
  /** inference with a key/value cache: the tokens extend the sequences of this step */
  kv?: CacheStep;
  /** logits of each sequence's last token only ([B, vocab]) */
  lastOnly?: boolean;
  /** the final norm's output [B * T, C] in place of the logits (for a loss that applies the head itself) */
  hidden?: boolean;
  /** images whose patch vectors take the place of placeholder tokens (vision models) */
  images?: ImageBatch;
  /** set by the model from `images`: the encoded vectors and the rows they replace */
  imageVectors?: { rows: Int32Array; vectors: Tensor };
}

/** Preprocessed images and where their patches go. */
export interface ImageBatch {
  /** [count, C, S, S], preprocessed as the model's vision config says */
  pixels: Float32Array;
  count: number;
  /** the rows of the flattened [B * T] input that the count * patches vectors replace, in order */
  rows: Int32Array;
}

export interface Model {
  readonly config: ModelConfig;
  readonly params: Parameters;
  /** LoRA adapters by the weight they adapt (empty unless fine-tuning with LoRA) */
  readonly adapters: Adapters;
  /** Logits [B * T, vocab] (or [B, vocab] with lastOnly) for token ids [B * T]. */
  forward(idx: Int32Array, B: number, T: number, opts?: ForwardOptions): Tensor;
  /**
   * The mean cross-entropy of the next-token predictions against targets [B * T] (IGNORE_INDEX
   * where a position does not count): crossEntropy(forward(...), targets), with the head and
   * the loss fused so the [B * T, vocab] logits never exist whole.
   */
  loss(idx: Int32Array, targets: Int32Array, B: number, T: number, opts?: ForwardOptions): Tensor;
}

export function buildModel(config: ModelConfig, params: Parameters, adapters: Adapters = new Map()): Model {
  const { forward, headWeight } = architectureOf(config);
  const run = (idx: Int32Array, B: number, T: number, opts: ForwardOptions) =>
    forward(config, params, idx, B, T, withImageVectors(config, params, opts), adapters);
  return {
    config,
    params,
    adapters,
    forward: (idx, B, T, opts = {}) => run(idx, B, T, opts),
    loss: (idx, targets, B, T, opts = {}) =>
      linearCrossEntropy(run(idx, B, T, { ...opts, hidden: true }), headWeight(config, params), targets),
  };
}

/** Runs the vision encoder on the options' images, for the architecture to place. */
function withImageVectors(config: ModelConfig, params: Parameters, opts: ForwardOptions): ForwardOptions {
  const images = opts.images;
  if (!images || images.count === 0) return opts;
  if (!config.vision) throw new Error("this model has no vision encoder: it cannot take images");
  const vectors = encodeImages(config.vision, params, images.pixels, images.count);
  if (vectors.size !== images.rows.length * config.nEmbd)
    throw new Error(`vision: ${images.rows.length} placeholder rows for ${vectors.size / config.nEmbd} image vectors`);
  return { ...opts, imageVectors: { rows: images.rows, vectors } };
}

/** Every parameter of a model: its architecture's, and the vision encoder's and projector's when it has one. */
function modelParameters(config: ModelConfig, init: NormalInit): Parameters {
  const p = architectureOf(config).parameters(config, init);
  if (config.vision) for (const [name, t] of visionParameters(config.vision, config.nEmbd, init)) p.set(name, t);
  return p;
}

/** A text model given a freshly initialised vision encoder and projector (the start of LLaVA-style training). */
export function addVision(model: Model, vision: VisionConfig, seed = 1337): Model {
  if (model.config.vision) throw new Error("the model already has a vision encoder");
  const rng = new Rng(seed);
  const params = new Map(model.params);
  for (const [name, t] of visionParameters(vision, model.config.nEmbd, (shape, std = 0.02) =>
    normalInit(shape, std, rng),
  ))
    params.set(name, t);
  return buildModel({ ...model.config, vision }, params, model.adapters);
}

/** A freshly initialised model (nanoGPT's scheme: N(0, 0.02), residual projections scaled by 1/sqrt(2 * n_layer)). */
export function initModel(config: ModelConfig, seed = 1337): Model {
  const rng = new Rng(seed);
  const normal = (shape: number[], std = 0.02) => normalInit(shape, std, rng);
  return buildModel(config, modelParameters(config, normal));
}

/** A model of the right names and shapes with zero weights (to load weights into). */
export function emptyModel(config: ModelConfig): Model {
  const zeros = (shape: number[]) => Tensor.zeros(shape, true);
  return buildModel(config, modelParameters(config, zeros));
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
