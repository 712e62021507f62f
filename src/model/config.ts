// Model configuration: one shape for every architecture. Each architecture (see
// architectures.ts) maps it to and from its Hugging Face config.json.
import type { VisionConfig } from "./vision.ts";

/** Llama 3.1's RoPE frequency scaling (rope_scaling.rope_type "llama3"), or plain linear scaling. */
export type RopeScaling =
  | {
      type: "llama3";
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositions: number;
    }
  | { type: "linear"; factor: number }
  /** per-pair divisors of the frequencies, as GGUF's rope_freqs tensor gives them (llmfab's own config type) */
  | { type: "factors"; factors: number[] };

export interface ModelConfig {
  /** config.json's model_type: the key of the model's architecture descriptor */
  arch: string;
  vocabSize: number;
  /** context length (GPT-2: learned positions; Llama family: max positions) */
  blockSize: number;
  nLayer: number;
  nHead: number;
  /** key/value heads; equal to nHead unless grouped-query attention */
  nKvHead: number;
  nEmbd: number;
  /** width of one attention head (nEmbd / nHead unless the config says otherwise, as Qwen3's does) */
  headDim: number;
  /** MLP hidden width (GPT-2: 4 * nEmbd) */
  intermediateSize: number;
  /** biases in linear layers and LayerNorms (GPT-2) */
  bias: boolean;
  /** biases on the q, k and v projections only (Qwen2) */
  qkvBias: boolean;
  /** RMSNorm on each head of q and k before RoPE (Qwen3) */
  qkNorm: boolean;
  dropout: number;
  normEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  tieEmbeddings: boolean;
  /** the image encoder and projector of a vision model (config.json's vision_config) */
  vision?: VisionConfig;
  /**
   * The config.json this model was loaded from: fields llmfab does not use (token ids,
   * dtype, ...) are written back unchanged when the model is saved.
   */
  hf?: Record<string, unknown>;
}

export function validateConfig(c: ModelConfig): ModelConfig {
  const positive = [
    "vocabSize",
    "blockSize",
    "nLayer",
    "nHead",
    "nKvHead",
    "nEmbd",
    "headDim",
    "intermediateSize",
  ] as const;
  for (const k of positive) {
    if (!Number.isInteger(c[k]) || c[k] <= 0)
      throw new Error(`model config: ${k} must be a positive integer, got ${c[k]}`);
  }
  if (c.arch === "gpt2" && c.nEmbd !== c.nHead * c.headDim)
    throw new Error(`model config: n_embd ${c.nEmbd} is not divisible by n_head ${c.nHead}`);
  if (c.nHead % c.nKvHead !== 0)
    throw new Error(`model config: n_head ${c.nHead} is not divisible by n_kv_head ${c.nKvHead}`);
  if (c.arch !== "gpt2" && c.headDim % 2 !== 0) throw new Error("model config: RoPE needs an even head dimension");
  if (c.dropout < 0 || c.dropout >= 1) throw new Error(`model config: dropout must be in [0, 1), got ${c.dropout}`);
  return c;
}

/** Fills in the defaults of an architecture: GPT-2's for "gpt2", Llama's for the rest. */
export function makeConfig(
  c: Partial<ModelConfig> & Pick<ModelConfig, "arch" | "vocabSize" | "blockSize" | "nLayer" | "nHead" | "nEmbd">,
): ModelConfig {
  const gpt2 = c.arch === "gpt2";
  return validateConfig({
    nKvHead: c.nHead,
    headDim: Math.floor(c.nEmbd / c.nHead),
    intermediateSize: gpt2 ? 4 * c.nEmbd : defaultLlamaHidden(c.nEmbd),
    bias: gpt2,
    qkvBias: false,
    qkNorm: false,
    dropout: 0,
    normEps: gpt2 ? 1e-5 : 1e-6,
    ropeTheta: 10000,
    ropeScaling: null,
    tieEmbeddings: gpt2,
    ...c,
  });
}

/** Llama's SwiGLU width: 2/3 of 4 * n_embd, rounded up to a multiple of 64. */
function defaultLlamaHidden(nEmbd: number): number {
  return Math.ceil((8 * nEmbd) / 3 / 64) * 64;
}

/**
 * RoPE's angle per position for each of the head's D/2 dimension pairs, as Hugging Face
 * computes inv_freq (in float32), with Llama 3.1's or linear scaling applied.
 */
export function ropeFrequencies(c: ModelConfig): Float32Array {
  const D = c.headDim;
  const inv = Float32Array.from({ length: D / 2 }, (_, i) => 1 / c.ropeTheta ** ((2 * i) / D));
  const s = c.ropeScaling;
  if (!s) return inv;
  if (s.type === "linear") return inv.map((f) => f / s.factor);
  if (s.type === "factors") {
    if (s.factors.length !== inv.length)
      throw new Error(`rope scaling: ${s.factors.length} factors for ${inv.length} frequencies`);
    return inv.map((f, i) => f / (s.factors[i] as number));
  }
  const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositions / s.highFreqFactor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f; // high frequencies: unchanged
    if (wavelen > lowWavelen) return f / s.factor; // low frequencies: scaled down
    const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}
