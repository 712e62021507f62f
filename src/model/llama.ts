// The Llama family: RMSNorm, rotary positions, SwiGLU MLP, grouped-query attention.
// One forward pass with the options its members differ by: biases on q/k/v (Qwen2),
// RMSNorm on q and k per head (Qwen3), a head width of its own (Qwen3, Llama 3.2 configs
// may say), RoPE scaling (Llama 3.1+), a sliding window (Mistral). Tensor names and
// layouts are Hugging Face's LlamaForCausalLM (nn.Linear [out, in]); the members'
// descriptors (mistral.ts, qwen2.ts, qwen3.ts) only map their config.json.
import { z } from "zod";
import { constantInit, type Parameters, param } from "../nn/parameters.ts";
import {
  addRmsNorm,
  attention,
  cachedAttention,
  dropout,
  embedding,
  embeddingAt,
  lastRows,
  linear,
  rmsNorm,
  rope,
  ropeAt,
  swiglu,
  type Tensor,
} from "../tensor/index.ts";
import type { Architecture } from "./architecture.ts";
import { type ModelConfig, makeConfig, type RopeScaling, ropeFrequencies } from "./config.ts";
import { parseHfConfig, unsupported } from "./hf-config.ts";
import { cacheArgs } from "./kv-cache.ts";
import { layersOf } from "./lora.ts";
import type { NormalInit } from "./model.ts";
import { placeImages } from "./vision.ts";

function llamaParameters(c: ModelConfig, normal: NormalInit): Parameters {
  const C = c.nEmbd;
  const D = c.headDim;
  const p: Parameters = new Map();
  const residualStd = 0.02 / Math.sqrt(2 * c.nLayer);
  const proj = (name: string, out: number, inp: number, bias: boolean, std?: number) => {
    p.set(`${name}.weight`, normal([out, inp], std));
    if (bias) p.set(`${name}.bias`, constantInit([out], 0));
  };
  p.set("model.embed_tokens.weight", normal([c.vocabSize, C]));
  for (let i = 0; i < c.nLayer; i++) {
    const l = `model.layers.${i}`;
    p.set(`${l}.input_layernorm.weight`, constantInit([C], 1));
    proj(`${l}.self_attn.q_proj`, c.nHead * D, C, c.qkvBias);
    proj(`${l}.self_attn.k_proj`, c.nKvHead * D, C, c.qkvBias);
    proj(`${l}.self_attn.v_proj`, c.nKvHead * D, C, c.qkvBias);
    proj(`${l}.self_attn.o_proj`, C, c.nHead * D, false, residualStd);
    if (c.qkNorm) {
      p.set(`${l}.self_attn.q_norm.weight`, constantInit([D], 1));
      p.set(`${l}.self_attn.k_norm.weight`, constantInit([D], 1));
    }
    p.set(`${l}.post_attention_layernorm.weight`, constantInit([C], 1));
    proj(`${l}.mlp.gate_proj`, c.intermediateSize, C, false);
    proj(`${l}.mlp.up_proj`, c.intermediateSize, C, false);
    proj(`${l}.mlp.down_proj`, C, c.intermediateSize, false, residualStd);
  }
  p.set("model.norm.weight", constantInit([C], 1));
  if (!c.tieEmbeddings) p.set("lm_head.weight", normal([c.vocabSize, C]));
  return p;
}

const llamaHead: Architecture["headWeight"] = (c, p) =>
  param(p, c.tieEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight");

const llamaForward: Architecture["forward"] = (c, p, idx, B, T, opts, adapters) => {
  const w = (name: string) => param(p, name);
  // Layers by name, with their LoRA adapters if any.
  const lin = layersOf(p, adapters, "out-in", opts.dropoutSeed);
  const D = c.headDim;
  let seed = opts.dropoutSeed ?? 0;
  const drop = (x: Tensor) => (opts.dropoutSeed === undefined ? x : dropout(x, c.dropout, seed++));
  // A projection whose output only the residual add reads (no dropout between) stores it in bf16.
  const residual = { half: opts.dropoutSeed === undefined || c.dropout <= 0 };
  const shape = { B, T, Hq: c.nHead, Hkv: c.nKvHead, D };

  const kv = opts.kv;
  const wte = w("model.embed_tokens.weight");
  let x = kv ? embeddingAt(idx, kv.positions, wte, null) : drop(embedding(idx, B, T, wte, null));
  x = placeImages(x, opts, T, null);
  const invFreq = ropeFrequencies(c);
  // RoPE by absolute position: from the cache step when there is one.
  const rotate = (t: Tensor, H: number) =>
    kv ? ropeAt(t, kv.positions, H, invFreq) : rope(t.view([B, T, H, D]), invFreq);
  // Qwen3's per-head RMSNorm of q and k, before RoPE.
  const headNorm = (t: Tensor, name: string) =>
    c.qkNorm ? rmsNorm(t.view([t.size / D, D]), w(name), c.normEps).view(t.shape) : t;
  const rows = (t: Tensor) => ({ data: t.data, offset: 0, stride: t.shape[t.shape.length - 1] as number });
  // Each residual add runs fused with the norm that reads its sum next (the post-attention
  // norm, the next layer's input norm, or the final norm): x is the residual stream, h its norm.
  const norm = (i: number) => (i < c.nLayer ? `model.layers.${i}.input_layernorm.weight` : "model.norm.weight");
  const addNorm = (y: Tensor, name: string) => addRmsNorm(x, y, w(name), c.normEps);
  let h = rmsNorm(x, w(norm(0)), c.normEps);
  for (let i = 0; i < c.nLayer; i++) {
    const l = `model.layers.${i}`;
    const q = rotate(headNorm(lin(h, `${l}.self_attn.q_proj`), `${l}.self_attn.q_norm.weight`), c.nHead);
    const k = rotate(headNorm(lin(h, `${l}.self_attn.k_proj`), `${l}.self_attn.k_norm.weight`), c.nKvHead);
    const v = lin(h, `${l}.self_attn.v_proj`);
    const att = kv
      ? cachedAttention(
          rows(q.view([B * T, c.nHead * D])),
          rows(k.view([B * T, c.nKvHead * D])),
          rows(v),
          cacheArgs(c, kv, i, B, T),
        )
      : attention(q, k, v, shape);
    ({ sum: x, normed: h } = addNorm(
      drop(lin(att, `${l}.self_attn.o_proj`, residual)),
      `${l}.post_attention_layernorm.weight`,
    ));
    const mlp = swiglu(lin(h, `${l}.mlp.gate_proj`), lin(h, `${l}.mlp.up_proj`));
    ({ sum: x, normed: h } = addNorm(drop(lin(mlp, `${l}.mlp.down_proj`, residual)), norm(i + 1)));
  }
  x = h;
  if (opts.lastOnly) x = lastRows(x, B, T);
  if (opts.hidden) return x;
  return linear(x, llamaHead(c, p), null).view([opts.lastOnly ? B : B * T, c.vocabSize]);
};

/** The config.json fields every member of the family has. */
export const familySchema = z.object({
  vocab_size: z.number().int(),
  hidden_size: z.number().int(),
  intermediate_size: z.number().int(),
  num_hidden_layers: z.number().int(),
  num_attention_heads: z.number().int(),
  num_key_value_heads: z.number().int().nullish(),
  head_dim: z.number().int().nullish(),
  max_position_embeddings: z.number().int(),
  rms_norm_eps: z.number().default(1e-6),
  rope_theta: z.number().default(10000),
  rope_scaling: z.record(z.string(), z.unknown()).nullish(),
  tie_word_embeddings: z.boolean().default(false),
  hidden_act: z.string().default("silu"),
  partial_rotary_factor: z.number().nullish(),
});

function ropeScalingOf(json: Record<string, unknown> | null | undefined, where: string): RopeScaling | null {
  if (!json) return null;
  const type = json.rope_type ?? json.type;
  const number = (field: string) => {
    const v = json[field];
    if (typeof v !== "number" || !(v > 0)) unsupported(where, `rope_scaling.${field}`, v, "a positive number");
    return v;
  };
  if (type === "default") return null;
  if (type === "linear") return { type, factor: number("factor") };
  if (type === "llmfab_factors" && Array.isArray(json.factors) && json.factors.every((f) => typeof f === "number"))
    return { type: "factors", factors: json.factors as number[] };
  if (type === "llama3")
    return {
      type,
      factor: number("factor"),
      lowFreqFactor: number("low_freq_factor"),
      highFreqFactor: number("high_freq_factor"),
      originalMaxPositions: number("original_max_position_embeddings"),
    };
  return unsupported(where, "rope_scaling.rope_type", type, "llama3, linear or default");
}

/**
 * A family member's ModelConfig from its config.json fields. `slidingWindow`: attention
 * limited to that many tokens; within it, full causal attention is the same computation,
 * so the context is capped there.
 */
export function familyConfig(
  h: z.infer<typeof familySchema>,
  where: string,
  arch: string,
  extra: { qkvBias?: boolean; qkNorm?: boolean; slidingWindow?: number | null } = {},
): ModelConfig {
  if (h.hidden_act !== "silu") unsupported(where, "hidden_act", h.hidden_act, "silu only");
  if (h.partial_rotary_factor != null && h.partial_rotary_factor !== 1)
    unsupported(where, "partial_rotary_factor", h.partial_rotary_factor, "RoPE on the whole head only");
  const window = extra.slidingWindow ?? null;
  return makeConfig({
    arch,
    vocabSize: h.vocab_size,
    blockSize: window ? Math.min(window, h.max_position_embeddings) : h.max_position_embeddings,
    nLayer: h.num_hidden_layers,
    nHead: h.num_attention_heads,
    nKvHead: h.num_key_value_heads ?? h.num_attention_heads,
    nEmbd: h.hidden_size,
    headDim: h.head_dim ?? Math.floor(h.hidden_size / h.num_attention_heads),
    intermediateSize: h.intermediate_size,
    normEps: h.rms_norm_eps,
    ropeTheta: h.rope_theta,
    ropeScaling: ropeScalingOf(h.rope_scaling, where),
    bias: false,
    qkvBias: extra.qkvBias ?? false,
    qkNorm: extra.qkNorm ?? false,
    tieEmbeddings: h.tie_word_embeddings,
  });
}

function ropeScalingToHf(s: RopeScaling | null): Record<string, unknown> | null {
  if (!s) return null;
  if (s.type === "linear") return { rope_type: "linear", factor: s.factor };
  if (s.type === "factors") return { rope_type: "llmfab_factors", factors: s.factors };
  return {
    rope_type: "llama3",
    factor: s.factor,
    low_freq_factor: s.lowFreqFactor,
    high_freq_factor: s.highFreqFactor,
    original_max_position_embeddings: s.originalMaxPositions,
  };
}

/** The config.json fields every member of the family writes. */
export function familyToHf(c: ModelConfig, architecture: string): Record<string, unknown> {
  return {
    architectures: [architecture],
    model_type: c.arch,
    vocab_size: c.vocabSize,
    hidden_size: c.nEmbd,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.nLayer,
    num_attention_heads: c.nHead,
    num_key_value_heads: c.nKvHead,
    head_dim: c.headDim,
    max_position_embeddings: (c.hf?.max_position_embeddings as number | undefined) ?? c.blockSize,
    rms_norm_eps: c.normEps,
    rope_theta: c.ropeTheta,
    rope_scaling: ropeScalingToHf(c.ropeScaling),
    hidden_act: "silu",
    tie_word_embeddings: c.tieEmbeddings,
    torch_dtype: "float32",
  };
}

/** llama.cpp's names for the family's tensors. */
const GGUF_TENSORS: [string, string][] = [
  ["model.embed_tokens.weight", "token_embd.weight"],
  ["model.layers.{i}.input_layernorm.weight", "blk.{i}.attn_norm.weight"],
  ...["q", "k", "v"].flatMap((x): [string, string][] => [
    [`model.layers.{i}.self_attn.${x}_proj.weight`, `blk.{i}.attn_${x}.weight`],
    [`model.layers.{i}.self_attn.${x}_proj.bias`, `blk.{i}.attn_${x}.bias`],
  ]),
  ["model.layers.{i}.self_attn.o_proj.weight", "blk.{i}.attn_output.weight"],
  ["model.layers.{i}.self_attn.q_norm.weight", "blk.{i}.attn_q_norm.weight"],
  ["model.layers.{i}.self_attn.k_norm.weight", "blk.{i}.attn_k_norm.weight"],
  ["model.layers.{i}.post_attention_layernorm.weight", "blk.{i}.ffn_norm.weight"],
  ["model.layers.{i}.mlp.gate_proj.weight", "blk.{i}.ffn_gate.weight"],
  ["model.layers.{i}.mlp.up_proj.weight", "blk.{i}.ffn_up.weight"],
  ["model.layers.{i}.mlp.down_proj.weight", "blk.{i}.ffn_down.weight"],
  ["model.norm.weight", "output_norm.weight"],
  ["lm_head.weight", "output.weight"],
];

/**
 * The family in GGUF: llama.cpp's "llama" rotates adjacent pairs (q and k rows are
 * permuted on the way), its "qwen2" and "qwen3" rotate halves as Hugging Face does.
 * Llama 3.1's RoPE scaling travels as a rope_freqs tensor (see the GGUF exporter).
 */
function ggufLayout(arch: string, permuteQK: boolean): Architecture["gguf"] {
  return {
    arch,
    tensors: GGUF_TENSORS,
    permuteQK,
    metadata: (c) => ({
      context_length: { u32: c.blockSize },
      embedding_length: { u32: c.nEmbd },
      feed_forward_length: { u32: c.intermediateSize },
      block_count: { u32: c.nLayer },
      "attention.head_count": { u32: c.nHead },
      "attention.head_count_kv": { u32: c.nKvHead },
      "attention.key_length": { u32: c.headDim },
      "attention.value_length": { u32: c.headDim },
      "attention.layer_norm_rms_epsilon": { f32: c.normEps },
      "rope.dimension_count": { u32: c.headDim },
      "rope.freq_base": { f32: c.ropeTheta },
      ...(c.ropeScaling?.type === "linear" ? { "rope.scaling.factor": { f32: c.ropeScaling.factor } } : {}),
    }),
    toHfConfig: (meta, vocabSize, tied) => {
      const heads = meta("attention.head_count") as number;
      const hidden = meta("embedding_length") as number;
      const factor = meta("rope.scaling.factor");
      return {
        model_type: arch === "llama" ? "llama" : arch,
        vocab_size: vocabSize,
        hidden_size: hidden,
        intermediate_size: meta("feed_forward_length"),
        num_hidden_layers: meta("block_count"),
        num_attention_heads: heads,
        num_key_value_heads: meta("attention.head_count_kv") ?? heads,
        head_dim: meta("attention.key_length") ?? meta("rope.dimension_count") ?? hidden / heads,
        max_position_embeddings: meta("context_length"),
        rms_norm_eps: meta("attention.layer_norm_rms_epsilon"),
        rope_theta: meta("rope.freq_base") ?? 10000,
        ...(typeof factor === "number" && factor !== 1 ? { rope_scaling: { rope_type: "linear", factor } } : {}),
        tie_word_embeddings: tied,
      };
    },
  };
}

/** A family member's descriptor: everything but its config.json mapping is shared. */
export function familyMember(
  modelType: string,
  fromHf: Architecture["fromHf"],
  toHf: Architecture["toHf"],
  gguf: { arch: string; permuteQK: boolean } = { arch: "llama", permuteQK: true },
): Architecture {
  return {
    gguf: ggufLayout(gguf.arch, gguf.permuteQK),
    modelType,
    layout: "out-in",
    loraTargets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    fromHf,
    toHf,
    parameters: llamaParameters,
    forward: llamaForward,
    headWeight: llamaHead,
    blockOf: (name) => {
      const m = /^model\.layers\.(\d+)\./.exec(name);
      return m ? Number(m[1]) : null;
    },
    isHead: (name) => /^(model\.norm|lm_head)\./.test(name),
    isEmbedding: (name) => name === "model.embed_tokens.weight" || name === "lm_head.weight",
    // Older checkpoints carry RoPE's frequencies as a buffer; tied models may save the head.
    isIgnorable: (name) => /\.rotary_emb\.inv_freq$/.test(name) || name === "lm_head.weight",
  };
}

const llamaSchema = familySchema.extend({
  attention_bias: z.boolean().default(false),
  mlp_bias: z.boolean().default(false),
});

export const llama = familyMember(
  "llama",
  (json, where) => {
    const h = parseHfConfig(llamaSchema, json, where, "Llama");
    if (h.attention_bias) unsupported(where, "attention_bias", true, "Llama without biases");
    if (h.mlp_bias) unsupported(where, "mlp_bias", true, "Llama without biases");
    return familyConfig(h, where, "llama");
  },
  (c) => ({ ...familyToHf(c, "LlamaForCausalLM"), attention_bias: false, mlp_bias: false }),
);
