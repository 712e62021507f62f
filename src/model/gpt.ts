// GPT-2 / nanoGPT: learned positions, pre-LayerNorm blocks, fused qkv, GELU MLP, tied
// embedding and head. Tensor names and layouts are Hugging Face's GPT2LMHeadModel
// (linear weights in its Conv1D [in, out] layout).
import { constantInit, type Parameters, param } from "../nn/parameters.ts";
import {
  add,
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
import type { ModelConfig } from "./config.ts";
import { cacheArgs } from "./kv-cache.ts";
import { type Adapters, layersOf } from "./lora.ts";
import type { ForwardOptions, NormalInit } from "./model.ts";

export function gptParameters(c: ModelConfig, normal: NormalInit): Parameters {
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

export function gptForward(
  c: ModelConfig,
  p: Parameters,
  idx: Int32Array,
  B: number,
  T: number,
  opts: ForwardOptions,
  adapters: Adapters,
): Tensor {
  const w = (name: string) => param(p, name);
  const b = (name: string) => p.get(name) ?? null;
  // Layers by name, with their LoRA adapters if any.
  const conv = layersOf(p, adapters, "in-out", opts.dropoutSeed);
  let seed = opts.dropoutSeed ?? 0;
  const drop = (x: Tensor) => (opts.dropoutSeed === undefined ? x : dropout(x, c.dropout, seed++));

  const kv = opts.kv;
  const [wte, wpe] = [w("transformer.wte.weight"), w("transformer.wpe.weight")];
  let x = kv ? embeddingAt(idx, kv.positions, wte, wpe) : drop(embedding(idx, B, T, wte, wpe));
  const C = c.nEmbd;
  for (let i = 0; i < c.nLayer; i++) {
    const h = `transformer.h.${i}`;
    const ln1 = layerNorm(x, w(`${h}.ln_1.weight`), b(`${h}.ln_1.bias`), c.normEps);
    const qkv = conv(ln1, `${h}.attn.c_attn`);
    const rows = (offset: number) => ({ data: qkv.data, offset, stride: 3 * C });
    const att = kv
      ? cachedAttention(rows(0), rows(C), rows(2 * C), cacheArgs(c, kv, i, B, T))
      : attentionQkv(qkv, B, T, c.nHead);
    x = add(x, drop(conv(att, `${h}.attn.c_proj`)));
    const ln2 = layerNorm(x, w(`${h}.ln_2.weight`), b(`${h}.ln_2.bias`), c.normEps);
    const fc = gelu(conv(ln2, `${h}.mlp.c_fc`));
    x = add(x, drop(conv(fc, `${h}.mlp.c_proj`)));
  }
  x = layerNorm(x, w("transformer.ln_f.weight"), b("transformer.ln_f.bias"), c.normEps);
  if (opts.lastOnly) x = lastRows(x, B, T);
  const head = c.tieEmbeddings ? wte : w("lm_head.weight");
  return linear(x, head, null, "out-in").view([opts.lastOnly ? B : B * T, c.vocabSize]);
}
