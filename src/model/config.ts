// Model configuration: one shape for both architectures, and the mapping to and from
// Hugging Face's config.json field names (GPT2Config and LlamaConfig).
import { z } from "zod";

export type Architecture = "gpt2" | "llama";

export interface ModelConfig {
  arch: Architecture;
  vocabSize: number;
  /** context length (GPT-2: learned positions; Llama: max positions) */
  blockSize: number;
  nLayer: number;
  nHead: number;
  /** key/value heads; equal to nHead unless grouped-query attention */
  nKvHead: number;
  nEmbd: number;
  /** MLP hidden width (GPT-2: 4 * nEmbd) */
  intermediateSize: number;
  /** biases in linear layers and LayerNorms (GPT-2 only) */
  bias: boolean;
  dropout: number;
  normEps: number;
  ropeTheta: number;
  tieEmbeddings: boolean;
}

export function validateConfig(c: ModelConfig): ModelConfig {
  const positive = ["vocabSize", "blockSize", "nLayer", "nHead", "nKvHead", "nEmbd", "intermediateSize"] as const;
  for (const k of positive) {
    if (!Number.isInteger(c[k]) || c[k] <= 0)
      throw new Error(`model config: ${k} must be a positive integer, got ${c[k]}`);
  }
  if (c.nEmbd % c.nHead !== 0) throw new Error(`model config: n_embd ${c.nEmbd} is not divisible by n_head ${c.nHead}`);
  if (c.nHead % c.nKvHead !== 0)
    throw new Error(`model config: n_head ${c.nHead} is not divisible by n_kv_head ${c.nKvHead}`);
  if (c.arch === "llama" && (c.nEmbd / c.nHead) % 2 !== 0)
    throw new Error("model config: RoPE needs an even head dimension");
  if (c.dropout < 0 || c.dropout >= 1) throw new Error(`model config: dropout must be in [0, 1), got ${c.dropout}`);
  return c;
}

/** Fills in the defaults of an architecture. */
export function makeConfig(
  c: Partial<ModelConfig> & Pick<ModelConfig, "arch" | "vocabSize" | "blockSize" | "nLayer" | "nHead" | "nEmbd">,
): ModelConfig {
  const llama = c.arch === "llama";
  return validateConfig({
    nKvHead: c.nHead,
    intermediateSize: llama ? defaultLlamaHidden(c.nEmbd) : 4 * c.nEmbd,
    bias: !llama,
    dropout: 0,
    normEps: llama ? 1e-6 : 1e-5,
    ropeTheta: 10000,
    tieEmbeddings: !llama,
    ...c,
  });
}

/** Llama's SwiGLU width: 2/3 of 4 * n_embd, rounded up to a multiple of 64. */
function defaultLlamaHidden(nEmbd: number): number {
  return Math.ceil((8 * nEmbd) / 3 / 64) * 64;
}

const gpt2Schema = z.object({
  model_type: z.literal("gpt2"),
  vocab_size: z.number().int(),
  n_positions: z.number().int(),
  n_embd: z.number().int(),
  n_layer: z.number().int(),
  n_head: z.number().int(),
  n_inner: z.number().int().nullish(),
  layer_norm_epsilon: z.number().default(1e-5),
  resid_pdrop: z.number().default(0),
  activation_function: z.string().default("gelu_new"),
  tie_word_embeddings: z.boolean().default(true),
  llmfab_bias: z.boolean().optional(),
});

const llamaSchema = z.object({
  model_type: z.literal("llama"),
  vocab_size: z.number().int(),
  hidden_size: z.number().int(),
  intermediate_size: z.number().int(),
  num_hidden_layers: z.number().int(),
  num_attention_heads: z.number().int(),
  num_key_value_heads: z.number().int().nullish(),
  max_position_embeddings: z.number().int(),
  rms_norm_eps: z.number().default(1e-6),
  rope_theta: z.number().default(10000),
  tie_word_embeddings: z.boolean().default(false),
  hidden_act: z.string().default("silu"),
  attention_bias: z.boolean().default(false),
  mlp_bias: z.boolean().default(false),
});

/** Reads a Hugging Face config.json object (GPT2 or Llama). */
export function fromHfConfig(json: unknown, where: string): ModelConfig {
  const type = (json as { model_type?: unknown })?.model_type;
  if (type === "gpt2") {
    const r = gpt2Schema.safeParse(json);
    if (!r.success) throw new Error(`${where}: invalid GPT-2 config: ${z.prettifyError(r.error)}`);
    const h = r.data;
    if (!["gelu_new", "gelu_pytorch_tanh"].includes(h.activation_function)) {
      throw new Error(`${where}: activation_function ${h.activation_function} is not supported (gelu_new only)`);
    }
    return makeConfig({
      arch: "gpt2",
      vocabSize: h.vocab_size,
      blockSize: h.n_positions,
      nLayer: h.n_layer,
      nHead: h.n_head,
      nEmbd: h.n_embd,
      intermediateSize: h.n_inner ?? 4 * h.n_embd,
      normEps: h.layer_norm_epsilon,
      dropout: h.resid_pdrop,
      bias: h.llmfab_bias ?? true,
      tieEmbeddings: h.tie_word_embeddings,
    });
  }
  if (type === "llama") {
    const r = llamaSchema.safeParse(json);
    if (!r.success) throw new Error(`${where}: invalid Llama config: ${z.prettifyError(r.error)}`);
    const h = r.data;
    if (h.hidden_act !== "silu") throw new Error(`${where}: hidden_act ${h.hidden_act} is not supported (silu only)`);
    if (h.attention_bias || h.mlp_bias) throw new Error(`${where}: Llama biases are not supported`);
    return makeConfig({
      arch: "llama",
      vocabSize: h.vocab_size,
      blockSize: h.max_position_embeddings,
      nLayer: h.num_hidden_layers,
      nHead: h.num_attention_heads,
      nKvHead: h.num_key_value_heads ?? h.num_attention_heads,
      nEmbd: h.hidden_size,
      intermediateSize: h.intermediate_size,
      normEps: h.rms_norm_eps,
      ropeTheta: h.rope_theta,
      bias: false,
      tieEmbeddings: h.tie_word_embeddings,
    });
  }
  throw new Error(`${where}: model_type ${JSON.stringify(type)} is not supported (gpt2 or llama)`);
}

/** Writes the Hugging Face config.json object of a model. */
export function toHfConfig(c: ModelConfig): Record<string, unknown> {
  if (c.arch === "gpt2") {
    return {
      architectures: ["GPT2LMHeadModel"],
      model_type: "gpt2",
      vocab_size: c.vocabSize,
      n_positions: c.blockSize,
      n_ctx: c.blockSize,
      n_embd: c.nEmbd,
      n_layer: c.nLayer,
      n_head: c.nHead,
      n_inner: c.intermediateSize,
      activation_function: "gelu_new",
      resid_pdrop: c.dropout,
      embd_pdrop: c.dropout,
      attn_pdrop: 0,
      layer_norm_epsilon: c.normEps,
      initializer_range: 0.02,
      tie_word_embeddings: c.tieEmbeddings,
      torch_dtype: "float32",
      llmfab_bias: c.bias,
    };
  }
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: c.vocabSize,
    hidden_size: c.nEmbd,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.nLayer,
    num_attention_heads: c.nHead,
    num_key_value_heads: c.nKvHead,
    max_position_embeddings: c.blockSize,
    rms_norm_eps: c.normEps,
    rope_theta: c.ropeTheta,
    hidden_act: "silu",
    tie_word_embeddings: c.tieEmbeddings,
    attention_bias: false,
    mlp_bias: false,
    torch_dtype: "float32",
  };
}
