// Llama: RMSNorm, rotary positions, SwiGLU MLP, grouped-query attention, untied head.
// Tensor names and layouts are Hugging Face's LlamaForCausalLM (nn.Linear [out, in]).
import { constantInit, type Parameters, param } from "../nn/parameters.ts";
import { add, attention, dropout, embedding, linear, rmsNorm, rope, swiglu, type Tensor } from "../tensor/index.ts";
import type { ModelConfig } from "./config.ts";
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
): Tensor {
  const w = (name: string) => param(p, name);
  const D = c.nEmbd / c.nHead;
  let seed = opts.dropoutSeed ?? 0;
  const drop = (x: Tensor) => (opts.dropoutSeed === undefined ? x : dropout(x, c.dropout, seed++));
  const shape = { B, T, Hq: c.nHead, Hkv: c.nKvHead, D };

  let x = drop(embedding(idx, B, T, w("model.embed_tokens.weight"), null));
  for (let i = 0; i < c.nLayer; i++) {
    const l = `model.layers.${i}`;
    const h = rmsNorm(x, w(`${l}.input_layernorm.weight`), c.normEps);
    const q = rope(linear(h, w(`${l}.self_attn.q_proj.weight`), null).view([B, T, c.nHead, D]), c.ropeTheta);
    const k = rope(linear(h, w(`${l}.self_attn.k_proj.weight`), null).view([B, T, c.nKvHead, D]), c.ropeTheta);
    const v = linear(h, w(`${l}.self_attn.v_proj.weight`), null);
    const att = attention(q, k, v, shape);
    x = add(x, drop(linear(att, w(`${l}.self_attn.o_proj.weight`), null)));
    const h2 = rmsNorm(x, w(`${l}.post_attention_layernorm.weight`), c.normEps);
    const mlp = swiglu(
      linear(h2, w(`${l}.mlp.gate_proj.weight`), null),
      linear(h2, w(`${l}.mlp.up_proj.weight`), null),
    );
    x = add(x, drop(linear(mlp, w(`${l}.mlp.down_proj.weight`), null)));
  }
  x = rmsNorm(x, w("model.norm.weight"), c.normEps);
  const head = c.tieEmbeddings ? w("model.embed_tokens.weight") : w("lm_head.weight");
  return linear(x, head, null).view([B * T, c.vocabSize]);
}
