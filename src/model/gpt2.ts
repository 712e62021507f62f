// GPT-2 / nanoGPT: learned positions, pre-LayerNorm blocks, fused qkv, GELU MLP, tied
// embedding and head. Tensor names and layouts are Hugging Face's GPT2LMHeadModel
// (linear weights in its Conv1D [in, out] layout).
import { z } from "zod";
import { constantInit, type Parameters, param } from "../nn/parameters.ts";
import {
  addLayerNorm,
  attentionQkv,
  cachedAttention,
  dropout,
  embedding,
  embeddingAt,
  gelu,
  lastRows,
  layerNorm,
  linear,
  type Tensor,
} from "../tensor/index.ts";
import type { Architecture } from "./architecture.ts";
import { type ModelConfig, makeConfig } from "./config.ts";
import { parseHfConfig } from "./hf-config.ts";
import { cacheArgs } from "./kv-cache.ts";
import { layersOf } from "./lora.ts";
import type { NormalInit } from "./model.ts";
import { placeImages } from "./vision.ts";

const hfSchema = z.object({
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

function fromHf(json: Record<string, unknown>, where: string): ModelConfig {
  const h = parseHfConfig(hfSchema, json, where, "GPT-2");
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

function toHf(c: ModelConfig): Record<string, unknown> {
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

function gptParameters(c: ModelConfig, normal: NormalInit): Parameters {
  const C = c.nEmbd;
  const p: Parameters = new Map();
  const residualStd = 0.02 / Math.sqrt(2 * c.nLayer);
  p.set("transformer.wte.weight", normal([c.vocabSize, C]));
  p.set("transformer.wpe.weight", normal([c.blockSize, C]));
  const norm = (name: string) => {
    p.set(`${name}.weight`, constantInit([C], 1));
    if (c.bias) p.set(`${name}.bias`, constantInit([C], 0));
  };
  const conv1d = (name: string, nIn: number, nOut: number, std = 0.02) => {
    p.set(`${name}.weight`, normal([nIn, nOut], std));
    if (c.bias) p.set(`${name}.bias`, constantInit([nOut], 0));
  };
  for (let i = 0; i < c.nLayer; i++) {
    const h = `transformer.h.${i}`;
    norm(`${h}.ln_1`);
    conv1d(`${h}.attn.c_attn`, C, 3 * C);
    conv1d(`${h}.attn.c_proj`, C, C, residualStd);
    norm(`${h}.ln_2`);
    conv1d(`${h}.mlp.c_fc`, C, c.intermediateSize);
    conv1d(`${h}.mlp.c_proj`, c.intermediateSize, C, residualStd);
  }
  norm("transformer.ln_f");
  if (!c.tieEmbeddings) p.set("lm_head.weight", normal([c.vocabSize, C]));
  return p;
}

const gptHead: Architecture["headWeight"] = (c, p) =>
  param(p, c.tieEmbeddings ? "transformer.wte.weight" : "lm_head.weight");

const gptForward: Architecture["forward"] = (c, p, idx, B, T, opts, adapters) => {
  const w = (name: string) => param(p, name);
  const b = (name: string) => p.get(name) ?? null;
  // Layers by name, with their LoRA adapters if any.
  const conv = layersOf(p, adapters, "in-out", opts.dropoutSeed);
  let seed = opts.dropoutSeed ?? 0;
  const drop = (x: Tensor) => (opts.dropoutSeed === undefined ? x : dropout(x, c.dropout, seed++));
  // A projection whose output only the residual add reads (no dropout between) stores it in bf16.
  const residual = { half: opts.dropoutSeed === undefined || c.dropout <= 0 };

  const kv = opts.kv;
  const [wte, wpe] = [w("transformer.wte.weight"), w("transformer.wpe.weight")];
  let x = kv ? embeddingAt(idx, kv.positions, wte, wpe) : drop(embedding(idx, B, T, wte, wpe));
  x = placeImages(x, opts, T, wpe);
  const C = c.nEmbd;
  // Each residual add runs fused with the norm that reads its sum next (ln_2, the next
  // block's ln_1, or ln_f): x is the residual stream, normed the norm of it.
  const norm = (i: number) => (i < c.nLayer ? `transformer.h.${i}.ln_1` : "transformer.ln_f");
  const addNorm = (y: Tensor, name: string) => addLayerNorm(x, y, w(`${name}.weight`), b(`${name}.bias`), c.normEps);
  let normed = layerNorm(x, w(`${norm(0)}.weight`), b(`${norm(0)}.bias`), c.normEps);
  for (let i = 0; i < c.nLayer; i++) {
    const h = `transformer.h.${i}`;
    // The cached path reads qkv's rows in fp32; training's attention reads them in bf16.
    const qkv = conv(normed, `${h}.attn.c_attn`, { half: !kv });
    const rows = (offset: number) => ({ data: qkv.data, offset, stride: 3 * C });
    const att = kv
      ? cachedAttention(rows(0), rows(C), rows(2 * C), cacheArgs(c, kv, i, B, T))
      : attentionQkv(qkv, B, T, c.nHead);
    ({ sum: x, normed } = addNorm(drop(conv(att, `${h}.attn.c_proj`, residual)), `${h}.ln_2`));
    const fc = gelu(conv(normed, `${h}.mlp.c_fc`, { half: true }));
    ({ sum: x, normed } = addNorm(drop(conv(fc, `${h}.mlp.c_proj`, residual)), norm(i + 1)));
  }
  x = normed;
  if (opts.lastOnly) x = lastRows(x, B, T);
  if (opts.hidden) return x;
  const head = gptHead(c, p);
  // The logits stay fp32: stored in bf16 they cost the quickstart's SFT a third of its held-out
  // clock answers (91% -> 63%), for 10 ms a step on a large vocabulary.
  return linear(x, head, null, "out-in").view([opts.lastOnly ? B : B * T, c.vocabSize]);
};

/** A bias-free GPT-2 is saved with explicit zero biases, so Hugging Face loads it as is. */
function zeroBiases(c: ModelConfig, p: Parameters): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  if (c.bias) return out;
  for (const [name, t] of p) {
    if (!/\.(ln_1|ln_2|ln_f|c_attn|c_proj|c_fc)\.weight$/.test(name)) continue;
    const width = t.shape[t.shape.length - 1] as number;
    out.set(name.replace(/weight$/, "bias"), { shape: [width], data: new Float32Array(width) });
  }
  return out;
}

export const gpt2: Architecture = {
  modelType: "gpt2",
  layout: "in-out",
  loraTargets: ["c_attn", "c_proj", "c_fc"],
  fromHf,
  toHf,
  parameters: gptParameters,
  forward: gptForward,
  headWeight: gptHead,
  blockOf: (name) => {
    const m = /^transformer\.h\.(\d+)\./.exec(name);
    return m ? Number(m[1]) : null;
  },
  isHead: (name) => /^(transformer\.ln_f|lm_head)\./.test(name),
  isEmbedding: (name) => /^transformer\.(wte|wpe)\.weight$|^lm_head\.weight$/.test(name),
  // Old checkpoints (GPT2Model) name tensors without the "transformer." prefix.
  aliases: (name) => [name.replace(/^transformer\./, "")],
  // The causal-mask buffers, a saved copy of the tied head, and biases of a bias-free model.
  isIgnorable: (name) =>
    /\.attn\.(bias|masked_bias)$/.test(name) || name === "lm_head.weight" || name.endsWith(".bias"),
  extraTensors: zeroBiases,
  gguf: {
    arch: "gpt2",
    tensors: [
      ["transformer.wte.weight", "token_embd.weight"],
      ["transformer.wpe.weight", "position_embd.weight"],
      ...(["weight", "bias"] as const).flatMap((kind) =>
        (
          [
            ["ln_1", "attn_norm"],
            ["attn.c_attn", "attn_qkv"],
            ["attn.c_proj", "attn_output"],
            ["ln_2", "ffn_norm"],
            ["mlp.c_fc", "ffn_up"],
            ["mlp.c_proj", "ffn_down"],
          ] as const
        ).map(([hf, gg]) => [`transformer.h.{i}.${hf}.${kind}`, `blk.{i}.${gg}.${kind}`] as const),
      ),
      ["transformer.ln_f.weight", "output_norm.weight"],
      ["transformer.ln_f.bias", "output_norm.bias"],
      ["lm_head.weight", "output.weight"],
    ],
    transposed: (name) => /\.(c_attn|c_proj|c_fc)\.weight$/.test(name),
    permuteQK: false,
    metadata: (c) => ({
      context_length: { u32: c.blockSize },
      embedding_length: { u32: c.nEmbd },
      feed_forward_length: { u32: c.intermediateSize },
      block_count: { u32: c.nLayer },
      "attention.head_count": { u32: c.nHead },
      "attention.layer_norm_epsilon": { f32: c.normEps },
    }),
    toHfConfig: (meta, vocabSize, tied) => ({
      model_type: "gpt2",
      vocab_size: vocabSize,
      n_positions: meta("context_length"),
      n_embd: meta("embedding_length"),
      n_inner: meta("feed_forward_length"),
      n_layer: meta("block_count"),
      n_head: meta("attention.head_count"),
      layer_norm_epsilon: meta("attention.layer_norm_epsilon"),
      tie_word_embeddings: tied,
    }),
  },
};
