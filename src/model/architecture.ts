// The architectures llmfab runs, each one descriptor that owns everything tied to its
// parameter names: config.json mapping, parameters, forward pass, weight layout, which
// block a parameter sits in, the head, LoRA targets. A model's config.json model_type
// picks its descriptor here; adding an architecture is one file and one line below.
import type { Parameters } from "../nn/parameters.ts";
import type { Tensor, WeightLayout } from "../tensor/index.ts";
import type { ModelConfig } from "./config.ts";
import { gpt2 } from "./gpt2.ts";
import { llama } from "./llama.ts";
import type { Adapters } from "./lora.ts";
import { mistral } from "./mistral.ts";
import type { ForwardOptions, NormalInit } from "./model.ts";
import { qwen2 } from "./qwen2.ts";
import { qwen3 } from "./qwen3.ts";
import { visionFromHf, visionToHf } from "./vision.ts";

export interface Architecture {
  /** config.json's model_type */
  readonly modelType: string;
  /** how layer weights are stored: GPT-2's Conv1D [in, out] or nn.Linear [out, in] */
  readonly layout: WeightLayout;
  /** the modules LoRA adapts by default (PEFT's target_modules names) */
  readonly loraTargets: readonly string[];
  /** Reads a Hugging Face config.json object; `where` names it in errors. */
  fromHf(json: Record<string, unknown>, where: string): ModelConfig;
  /** The config.json object of a model. */
  toHf(c: ModelConfig): Record<string, unknown>;
  /** Every parameter, by Hugging Face name, made by `init`. */
  parameters(c: ModelConfig, init: NormalInit): Parameters;
  forward(
    c: ModelConfig,
    p: Parameters,
    idx: Int32Array,
    B: number,
    T: number,
    opts: ForwardOptions,
    adapters: Adapters,
  ): Tensor;
  /** The output head's weight [vocab, C] (the token embedding when they are tied). */
  headWeight(c: ModelConfig, p: Parameters): Tensor;
  /** The transformer block a parameter belongs to; null for embeddings, final norm and head. */
  blockOf(name: string): number | null;
  /** The final norm and output head (they train with the top blocks in freeze mode). */
  isHead(name: string): boolean;
  /** Token and position embeddings and the output head (left out of the non-embedding count). */
  isEmbedding(name: string): boolean;
  /** Names a checkpoint may use for a parameter, besides its own (older checkpoints). */
  aliases?(name: string): string[];
  /** Tensors a checkpoint may carry that are not parameters (buffers, a saved tied head). */
  isIgnorable?(name: string): boolean;
  /** Tensors to write beside the parameters so other tools load the model as they expect. */
  extraTensors?(c: ModelConfig, p: Parameters): Map<string, { shape: number[]; data: Float32Array }>;
  /** How llama.cpp names and describes this architecture in GGUF files. */
  readonly gguf: GgufLayout;
}

/** An architecture in llama.cpp's terms: its name, tensor names and hyperparameter keys. */
export interface GgufLayout {
  /** general.architecture */
  readonly arch: string;
  /** Hugging Face tensor name -> GGUF tensor name; `{i}` stands for the block index */
  readonly tensors: readonly (readonly [string, string])[];
  /** HF tensors stored [in, out] (GPT-2's Conv1D) that GGUF stores [out, in] */
  transposed?(name: string): boolean;
  /** llama.cpp rotates adjacent pairs where HF rotates halves: q and k rows are permuted */
  readonly permuteQK: boolean;
  /** the {arch}.* hyperparameters of a model (keys without the prefix), as GGUF's uint32 or float32 */
  metadata(c: ModelConfig): Record<string, { u32: number } | { f32: number }>;
  /** A Hugging Face config.json object from GGUF metadata (keys without the {arch}. prefix). */
  toHfConfig(meta: (key: string) => unknown, vocabSize: number, tied: boolean): Record<string, unknown>;
}

/** The descriptor of a GGUF general.architecture (Mistral is stored as "llama" by llama.cpp). */
export function architectureOfGguf(arch: string, where: string): Architecture {
  const a = Object.values(ARCHITECTURES).find((x) => x.gguf.arch === arch);
  if (!a) {
    const known = [...new Set(Object.values(ARCHITECTURES).map((x) => x.gguf.arch))].join(", ");
    throw new Error(`${where}: general.architecture ${JSON.stringify(arch)} is not supported (${known})`);
  }
  return a;
}

const ARCHITECTURES: Record<string, Architecture> = {
  gpt2,
  llama,
  mistral,
  qwen2,
  qwen3,
};

export const MODEL_TYPES = Object.keys(ARCHITECTURES);

export function architectureOf(c: Pick<ModelConfig, "arch">): Architecture {
  const a = ARCHITECTURES[c.arch];
  if (!a) throw new Error(`model_type ${JSON.stringify(c.arch)} is not supported (${MODEL_TYPES.join(", ")})`);
  return a;
}

/** Reads a Hugging Face config.json object with the descriptor its model_type names. */
export function fromHfConfig(json: unknown, where: string): ModelConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw new Error(`${where}: a model config must be a JSON object`);
  const type = (json as { model_type?: unknown }).model_type;
  if (typeof type !== "string" || !ARCHITECTURES[type])
    throw new Error(`${where}: model_type ${JSON.stringify(type)} is not supported (${MODEL_TYPES.join(", ")})`);
  const config = architectureOf({ arch: type }).fromHf(json as Record<string, unknown>, where);
  const vision = (json as { vision_config?: unknown }).vision_config;
  return {
    ...config,
    ...(vision !== undefined && vision !== null ? { vision: visionFromHf(vision, where) } : {}),
    hf: json as Record<string, unknown>,
  };
}

/** The config.json object of a model: the loaded file's own fields, updated with ours. */
export function toHfConfig(c: ModelConfig): Record<string, unknown> {
  const { vision_config: _, ...loaded } = c.hf ?? {};
  return { ...loaded, ...architectureOf(c).toHf(c), ...(c.vision ? { vision_config: visionToHf(c.vision) } : {}) };
}
