// Float64 reference forward passes of GPT-2 and the Llama family, built from the reference ops, with
// the same Hugging Face tensor names as src/model. Used for finite-difference checks.
import type { ModelConfig } from "../../src/model/config.ts";
import type { VisionConfig } from "../../src/model/vision.ts";
import * as ref from "./ops.ts";

export type RefParams = Map<string, Float64Array>;

function get(p: RefParams, name: string): Float64Array {
  const t = p.get(name);
  if (!t) throw new Error(`reference: missing ${name}`);
  return t;
}

/** Vectors that replace the embeddings of some rows of the [B * T] input (an image's patches). */
export interface RefImages {
  rows: Int32Array;
  vectors: Float64Array;
}

/** The input embeddings with image rows replaced: vector + learned position where the model has wpe. */
function placeImages(x: Float64Array, images: RefImages | undefined, C: number, T: number, wpe: Float64Array | null) {
  images?.rows.forEach((r, i) => {
    for (let c = 0; c < C; c++)
      x[r * C + c] = (images.vectors[i * C + c] as number) + (wpe ? (wpe[(r % T) * C + c] as number) : 0);
  });
  return x;
}

export function gptLogits(
  c: ModelConfig,
  p: RefParams,
  idx: Int32Array,
  B: number,
  T: number,
  images?: RefImages,
): Float64Array {
  const C = c.nEmbd;
  const BT = B * T;
  const bias = (n: string) => p.get(n) ?? null;
  const wpe = get(p, "transformer.wpe.weight");
  let x = placeImages(ref.embedding(idx, get(p, "transformer.wte.weight"), wpe, T, C), images, C, T, wpe);
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
export function llamaLogits(
  c: ModelConfig,
  p: RefParams,
  idx: Int32Array,
  B: number,
  T: number,
  images?: RefImages,
): Float64Array {
  const C = c.nEmbd;
  const BT = B * T;
  const D = c.headDim;
  const I = c.intermediateSize;
  const invFreq = llama3InvFreq(c);
  const bias = (n: string) => p.get(n) ?? null;
  const project = (x: Float64Array, name: string, out: number, inp: number) =>
    ref.linear(x, get(p, `${name}.weight`), bias(`${name}.bias`), BT, out, inp, false);
  const headNorm = (x: Float64Array, name: string) => (c.qkNorm ? ref.rmsNorm(x, get(p, name), D, c.normEps) : x);
  let x = placeImages(ref.embedding(idx, get(p, "model.embed_tokens.weight"), null, T, C), images, C, T, null);
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

export function logits(
  c: ModelConfig,
  p: RefParams,
  idx: Int32Array,
  B: number,
  T: number,
  images?: RefImages,
): Float64Array {
  return c.arch === "gpt2" ? gptLogits(c, p, idx, B, T, images) : llamaLogits(c, p, idx, B, T, images);
}

export function loss(
  c: ModelConfig,
  p: RefParams,
  idx: Int32Array,
  targets: Int32Array,
  B: number,
  T: number,
  images?: RefImages,
): number {
  return ref.crossEntropy(logits(c, p, idx, B, T, images), targets, c.vocabSize, -1);
}

/**
 * A ViT encoder and projector in float64: the patch embedding as the stride-P convolution
 * it is (read straight from the image, not through patchify), learned positions,
 * pre-LayerNorm blocks with bidirectional attention, then the projector.
 */
export function visionVectors(
  v: VisionConfig,
  p: RefParams,
  pixels: Float64Array,
  count: number,
  textWidth: number,
): Float64Array {
  const { imageSize: S, patchSize: P, channels: Ch, hidden: H } = v;
  const side = S / P;
  const N = side * side;
  const rows = count * N;
  const conv = get(p, "vision_tower.embeddings.patch_embedding.weight"); // [H, Ch, P, P]
  const pos = get(p, "vision_tower.embeddings.position_embedding.weight");
  let x: Float64Array = new Float64Array(rows * H);
  for (let n = 0; n < count; n++)
    for (let k = 0; k < N; k++) {
      const [py, px] = [Math.floor(k / side), k % side];
      for (let h = 0; h < H; h++) {
        let acc = pos[k * H + h] as number;
        for (let c = 0; c < Ch; c++)
          for (let y = 0; y < P; y++)
            for (let xx = 0; xx < P; xx++)
              acc +=
                (conv[((h * Ch + c) * P + y) * P + xx] as number) *
                (pixels[((n * Ch + c) * S + py * P + y) * S + px * P + xx] as number);
        x[(n * N + k) * H + h] = acc;
      }
    }
  const dense = (t: Float64Array, name: string, out: number, inp: number) =>
    ref.linear(t, get(p, `${name}.weight`), get(p, `${name}.bias`), rows, out, inp, false);
  const norm = (t: Float64Array, name: string) =>
    ref.layerNorm(t, get(p, `${name}.weight`), get(p, `${name}.bias`), H, v.normEps);
  for (let i = 0; i < v.layers; i++) {
    const l = `vision_tower.encoder.layers.${i}`;
    const qkv = dense(norm(x, `${l}.layer_norm1`), `${l}.self_attn.qkv_proj`, 3 * H, H);
    const [q, k, val] = ref.splitQkv(qkv, rows, H);
    const att = ref.attention(q, k, val, count, N, v.heads, v.heads, H / v.heads, false);
    x = ref.add(x, dense(att, `${l}.self_attn.out_proj`, H, H));
    const fc = ref.gelu(dense(norm(x, `${l}.layer_norm2`), `${l}.mlp.fc1`, v.intermediate, H));
    x = ref.add(x, dense(fc, `${l}.mlp.fc2`, H, v.intermediate));
  }
  x = norm(x, "vision_tower.post_layernorm");
  const projected = ref.linear(
    x,
    get(p, "multi_modal_projector.linear_1.weight"),
    get(p, "multi_modal_projector.linear_1.bias"),
    rows,
    textWidth,
    H,
    false,
  );
  if (v.projector === "linear") return projected;
  return ref.linear(
    ref.gelu(projected),
    get(p, "multi_modal_projector.linear_2.weight"),
    get(p, "multi_modal_projector.linear_2.bias"),
    rows,
    textWidth,
    textWidth,
    false,
  );
}
