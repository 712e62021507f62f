// Llama: RMSNorm, rotary positions, SwiGLU MLP, grouped-query attention, untied head.
// Tensor names and layouts are Hugging Face's LlamaForCausalLM (nn.Linear [out, in]).
import { constantInit, type Parameters, param } from "../nn/parameters.ts";
import {
  add,
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
import type { ModelConfig } from "./config.ts";
import { cacheArgs } from "./kv-cache.ts";
import { type Adapters, layersOf } from "./lora.ts";
import type { ForwardOptions, NormalInit } from "./model.ts";

export function llamaParameters(c: ModelConfig, normal: NormalInit): Parameters {
  const C = c.nEmbd;
  const D = C / c.nHead;
  const p: Parameters = new Map();
  const residualStd = 0.02 / Math.sqrt(2 * c.nLayer);
  p.set("model.embed_tokens.weight", normal([c.vocabSize, C]));
  for (let i = 0; i < c.nLayer; i++) {
    const l = `model.layers.${i}`;
    p.set(`${l}.input_layernorm.weight`, constantInit([C], 1));
    p.set(`${l}.self_attn.q_proj.weight`, normal([c.nHead * D, C]));
    p.set(`${l}.self_attn.k_proj.weight`, normal([c.nKvHead * D, C]));
    p.set(`${l}.self_attn.v_proj.weight`, normal([c.nKvHead * D, C]));
    p.set(`${l}.self_attn.o_proj.weight`, normal([C, c.nHead * D], residualStd));
    p.set(`${l}.post_attention_layernorm.weight`, constantInit([C], 1));
    p.set(`${l}.mlp.gate_proj.weight`, normal([c.intermediateSize, C]));
    p.set(`${l}.mlp.up_proj.weight`, normal([c.intermediateSize, C]));
    p.set(`${l}.mlp.down_proj.weight`, normal([C, c.intermediateSize], residualStd));
  }
  p.set("model.norm.weight", constantInit([C], 1));
  if (!c.tieEmbeddings) p.set("lm_head.weight", normal([c.vocabSize, C]));
  return p;
}

export function llamaForward(
  c: ModelConfig,
  p: Parameters,
  idx: Int32Array,
  B: number,
  T: number,
  opts: ForwardOptions,
  adapters: Adapters,
): Tensor {
  const w = (name: string) => param(p, name);
  // Layers by name, with their LoRA adapters if any.
  const lin = layersOf(p, adapters, "out-in", opts.dropoutSeed);
  const D = c.nEmbd / c.nHead;
  let seed = opts.dropoutSeed ?? 0;
  const drop = (x: Tensor) => (opts.dropoutSeed === undefined ? x : dropout(x, c.dropout, seed++));
  const shape = { B, T, Hq: c.nHead, Hkv: c.nKvHead, D };

  const kv = opts.kv;
  const wte = w("model.embed_tokens.weight");
  let x = kv ? embeddingAt(idx, kv.positions, wte, null) : drop(embedding(idx, B, T, wte, null));
  // RoPE by absolute position: from the cache step when there is one.
  const rotate = (t: Tensor, H: number) =>
    kv ? ropeAt(t, kv.positions, H, c.ropeTheta) : rope(t.view([B, T, H, D]), c.ropeTheta);
  const rows = (t: Tensor) => ({ data: t.data, offset: 0, stride: t.shape[t.shape.length - 1] as number });
  for (let i = 0; i < c.nLayer; i++) {
    const l = `model.layers.${i}`;
    const h = rmsNorm(x, w(`${l}.input_layernorm.weight`), c.normEps);
    const q = rotate(lin(h, `${l}.self_attn.q_proj`), c.nHead);
    const k = rotate(lin(h, `${l}.self_attn.k_proj`), c.nKvHead);
    const v = lin(h, `${l}.self_attn.v_proj`);
    const att = kv
      ? cachedAttention(
          rows(q.view([B * T, c.nHead * D])),
          rows(k.view([B * T, c.nKvHead * D])),
          rows(v),
          cacheArgs(c, kv, i, B, T),
        )
      : attention(q, k, v, shape);
    x = add(x, drop(lin(att, `${l}.self_attn.o_proj`)));
    const h2 = rmsNorm(x, w(`${l}.post_attention_layernorm.weight`), c.normEps);
    const mlp = swiglu(lin(h2, `${l}.mlp.gate_proj`), lin(h2, `${l}.mlp.up_proj`));
    x = add(x, drop(lin(mlp, `${l}.mlp.down_proj`)));
  }
  x = rmsNorm(x, w("model.norm.weight"), c.normEps);
  if (opts.lastOnly) x = lastRows(x, B, T);
  const head = c.tieEmbeddings ? wte : w("lm_head.weight");
  return linear(x, head, null).view([opts.lastOnly ? B : B * T, c.vocabSize]);
}
