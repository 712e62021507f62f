// Float64 reference forward passes of GPT-2 and Llama, built from the reference ops, with
// the same Hugging Face tensor names as src/model. Used for finite-difference checks.
import type { ModelConfig } from "../../src/model/config.ts";
import * as ref from "./ops.ts";

export type RefParams = Map<string, Float64Array>;

function get(p: RefParams, name: string): Float64Array {
  const t = p.get(name);
  if (!t) throw new Error(`reference: missing ${name}`);
  return t;
}

export function gptLogits(c: ModelConfig, p: RefParams, idx: Int32Array, B: number, T: number): Float64Array {
  const C = c.nEmbd;
  const BT = B * T;
  const bias = (n: string) => p.get(n) ?? null;
  let x = ref.embedding(idx, get(p, "transformer.wte.weight"), get(p, "transformer.wpe.weight"), T, C);
  for (let i = 0; i < c.nLayer; i++) {
    const h = `transformer.h.${i}`;
    const ln1 = ref.layerNorm(x, get(p, `${h}.ln_1.weight`), bias(`${h}.ln_1.bias`), C, c.normEps);
    const qkv = ref.linear(ln1, get(p, `${h}.attn.c_attn.weight`), bias(`${h}.attn.c_attn.bias`), BT, 3 * C, C, true);
    const [q, k, v] = ref.splitQkv(qkv, BT, C);
    const att = ref.attention(q, k, v, B, T, c.nHead, c.nHead, C / c.nHead);
    x = ref.add(x, ref.linear(att, get(p, `${h}.attn.c_proj.weight`), bias(`${h}.attn.c_proj.bias`), BT, C, C, true));
    const ln2 = ref.layerNorm(x, get(p, `${h}.ln_2.weight`), bias(`${h}.ln_2.bias`), C, c.normEps);
    const I = c.intermediateSize;
    const fc = ref.gelu(ref.linear(ln2, get(p, `${h}.mlp.c_fc.weight`), bias(`${h}.mlp.c_fc.bias`), BT, I, C, true));
    x = ref.add(x, ref.linear(fc, get(p, `${h}.mlp.c_proj.weight`), bias(`${h}.mlp.c_proj.bias`), BT, C, I, true));
  }
  x = ref.layerNorm(x, get(p, "transformer.ln_f.weight"), bias("transformer.ln_f.bias"), C, c.normEps);
  const head = c.tieEmbeddings ? get(p, "transformer.wte.weight") : get(p, "lm_head.weight");
  return ref.linear(x, head, null, BT, c.vocabSize, C, false);
}

export function llamaLogits(c: ModelConfig, p: RefParams, idx: Int32Array, B: number, T: number): Float64Array {
  const C = c.nEmbd;
  const BT = B * T;
  const D = C / c.nHead;
  const I = c.intermediateSize;
  let x = ref.embedding(idx, get(p, "model.embed_tokens.weight"), null, T, C);
  for (let i = 0; i < c.nLayer; i++) {
    const l = `model.layers.${i}`;
    const h = ref.rmsNorm(x, get(p, `${l}.input_layernorm.weight`), C, c.normEps);
    const q = ref.rope(
      ref.linear(h, get(p, `${l}.self_attn.q_proj.weight`), null, BT, c.nHead * D, C, false),
      B,
      T,
      c.nHead,
      D,
      c.ropeTheta,
    );
    const k = ref.rope(
      ref.linear(h, get(p, `${l}.self_attn.k_proj.weight`), null, BT, c.nKvHead * D, C, false),
      B,
      T,
      c.nKvHead,
      D,
      c.ropeTheta,
    );
    const v = ref.linear(h, get(p, `${l}.self_attn.v_proj.weight`), null, BT, c.nKvHead * D, C, false);
    const att = ref.attention(q, k, v, B, T, c.nHead, c.nKvHead, D);
    x = ref.add(x, ref.linear(att, get(p, `${l}.self_attn.o_proj.weight`), null, BT, C, C, false));
    const h2 = ref.rmsNorm(x, get(p, `${l}.post_attention_layernorm.weight`), C, c.normEps);
    const gate = ref.linear(h2, get(p, `${l}.mlp.gate_proj.weight`), null, BT, I, C, false);
    const up = ref.linear(h2, get(p, `${l}.mlp.up_proj.weight`), null, BT, I, C, false);
    x = ref.add(x, ref.linear(ref.swiglu(gate, up), get(p, `${l}.mlp.down_proj.weight`), null, BT, C, I, false));
  }
  x = ref.rmsNorm(x, get(p, "model.norm.weight"), C, c.normEps);
  const head = c.tieEmbeddings ? get(p, "model.embed_tokens.weight") : get(p, "lm_head.weight");
  return ref.linear(x, head, null, BT, c.vocabSize, C, false);
}

export function loss(c: ModelConfig, p: RefParams, idx: Int32Array, targets: Int32Array, B: number, T: number): number {
  const logits = c.arch === "gpt2" ? gptLogits(c, p, idx, B, T) : llamaLogits(c, p, idx, B, T);
  return ref.crossEntropy(logits, targets, c.vocabSize, -1);
}
