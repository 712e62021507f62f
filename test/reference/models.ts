// Float64 reference forward passes of GPT-2 and the Llama family, built from the reference ops, with
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

/**
 * Llama 3.1's RoPE frequencies, written from Hugging Face's _compute_llama3_parameters
 * (independently of src/model/config.ts): low frequencies divided by the factor, high
 * ones kept, a smooth blend between.
 */
export function llama3InvFreq(c: ModelConfig): number[] {
  const D = c.headDim;
  const base = Array.from({ length: D / 2 }, (_, i) => 1 / c.ropeTheta ** ((2 * i) / D));
  const s = c.ropeScaling;
  if (!s) return base;
  if (s.type === "linear") return base.map((f) => f / s.factor);
  if (s.type === "factors") return base.map((f, i) => f / (s.factors[i] as number));
  return base.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    const scaled = wavelen > s.originalMaxPositions / s.lowFreqFactor ? f / s.factor : f;
    const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    const medium =
      !(wavelen < s.originalMaxPositions / s.highFreqFactor) && !(wavelen > s.originalMaxPositions / s.lowFreqFactor);
    return medium ? ((1 - smooth) * scaled) / s.factor + smooth * scaled : scaled;
  });
}

/** The Llama family (Llama, Mistral, Qwen2 with q/k/v biases, Qwen3 with per-head q/k RMSNorm). */
export function llamaLogits(c: ModelConfig, p: RefParams, idx: Int32Array, B: number, T: number): Float64Array {
  const C = c.nEmbd;
  const BT = B * T;
  const D = c.headDim;
  const I = c.intermediateSize;
  const invFreq = llama3InvFreq(c);
  const bias = (n: string) => p.get(n) ?? null;
  const project = (x: Float64Array, name: string, out: number, inp: number) =>
    ref.linear(x, get(p, `${name}.weight`), bias(`${name}.bias`), BT, out, inp, false);
  const headNorm = (x: Float64Array, name: string) => (c.qkNorm ? ref.rmsNorm(x, get(p, name), D, c.normEps) : x);
  let x = ref.embedding(idx, get(p, "model.embed_tokens.weight"), null, T, C);
  for (let i = 0; i < c.nLayer; i++) {
    const l = `model.layers.${i}`;
    const h = ref.rmsNorm(x, get(p, `${l}.input_layernorm.weight`), C, c.normEps);
    const qh = headNorm(project(h, `${l}.self_attn.q_proj`, c.nHead * D, C), `${l}.self_attn.q_norm.weight`);
    const kh = headNorm(project(h, `${l}.self_attn.k_proj`, c.nKvHead * D, C), `${l}.self_attn.k_norm.weight`);
    const q = ref.rope(qh, B, T, c.nHead, D, c.ropeTheta, invFreq);
    const k = ref.rope(kh, B, T, c.nKvHead, D, c.ropeTheta, invFreq);
    const v = project(h, `${l}.self_attn.v_proj`, c.nKvHead * D, C);
    const att = ref.attention(q, k, v, B, T, c.nHead, c.nKvHead, D);
    x = ref.add(x, project(att, `${l}.self_attn.o_proj`, C, c.nHead * D));
    const h2 = ref.rmsNorm(x, get(p, `${l}.post_attention_layernorm.weight`), C, c.normEps);
    const gate = project(h2, `${l}.mlp.gate_proj`, I, C);
    const up = project(h2, `${l}.mlp.up_proj`, I, C);
    x = ref.add(x, ref.linear(ref.swiglu(gate, up), get(p, `${l}.mlp.down_proj.weight`), null, BT, C, I, false));
  }
  x = ref.rmsNorm(x, get(p, "model.norm.weight"), C, c.normEps);
  const head = c.tieEmbeddings ? get(p, "model.embed_tokens.weight") : get(p, "lm_head.weight");
  return ref.linear(x, head, null, BT, c.vocabSize, C, false);
}

export function logits(c: ModelConfig, p: RefParams, idx: Int32Array, B: number, T: number): Float64Array {
  return c.arch === "gpt2" ? gptLogits(c, p, idx, B, T) : llamaLogits(c, p, idx, B, T);
}

export function loss(c: ModelConfig, p: RefParams, idx: Int32Array, targets: Int32Array, B: number, T: number): number {
  return ref.crossEntropy(logits(c, p, idx, B, T), targets, c.vocabSize, -1);
}
