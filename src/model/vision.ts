// The vision half of a multimodal model, LLaVA's recipe: a ViT image encoder (patch
// embedding, learned positions, pre-LayerNorm blocks with bidirectional attention, CLIP's
// tensor names) and a projector (linear, or two layers with GELU) into the language
// model's embedding space. Each image becomes `patches` vectors that take the place of
// its placeholder tokens in the conversation. The settings live in config.json's
// `vision_config`, the image preprocessing (size, mean, std) there too and in
// preprocessor_config.json, as Hugging Face keeps them.
import { z } from "zod";
import { constantInit, type Parameters, param } from "../nn/parameters.ts";
import {
  add,
  addLayerNorm,
  attentionQkv,
  embedding,
  gelu,
  layerNorm,
  linear,
  spliceRows,
  Tensor,
} from "../tensor/index.ts";
import type { ForwardOptions, NormalInit } from "./model.ts";

export type ProjectorType = "linear" | "mlp2x_gelu";

export interface VisionConfig {
  /** images are resized to imageSize x imageSize */
  imageSize: number;
  patchSize: number;
  /** 3 (RGB) */
  channels: number;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  normEps: number;
  projector: ProjectorType;
  /** per channel, applied after scaling pixels to [0, 1] */
  imageMean: number[];
  imageStd: number[];
}

/** Patches (and so placeholder tokens) per image. */
export function patchesPerImage(v: VisionConfig): number {
  return (v.imageSize / v.patchSize) ** 2;
}

/** Several images' pixels, one after another ([count, C, S, S]). */
export function stackImages(images: Float32Array[]): Float32Array {
  const out = new Float32Array(images.reduce((n, x) => n + x.length, 0));
  let at = 0;
  for (const x of images) {
    out.set(x, at);
    at += x.length;
  }
  return out;
}

/** Values of one image after preprocessing: channels x imageSize x imageSize. */
export function pixelsPerImage(v: VisionConfig): number {
  return v.channels * v.imageSize * v.imageSize;
}

const hfVisionSchema = z.object({
  image_size: z.number().int().positive(),
  patch_size: z.number().int().positive(),
  num_channels: z.number().int().positive().default(3),
  hidden_size: z.number().int().positive(),
  num_hidden_layers: z.number().int().positive(),
  num_attention_heads: z.number().int().positive(),
  intermediate_size: z.number().int().positive(),
  layer_norm_eps: z.number().positive().default(1e-5),
  hidden_act: z.literal("gelu_pytorch_tanh").default("gelu_pytorch_tanh"),
  projector_type: z.enum(["linear", "mlp2x_gelu"]).default("mlp2x_gelu"),
  image_mean: z.array(z.number()).default([0.5, 0.5, 0.5]),
  image_std: z.array(z.number().positive()).default([0.5, 0.5, 0.5]),
});

/** A checked vision config: the image divides into whole patches, heads divide the width. */
export function validateVision(v: VisionConfig, where = "vision_config"): VisionConfig {
  if (v.imageSize % v.patchSize !== 0)
    throw new Error(`${where}: image_size ${v.imageSize} is not a multiple of patch_size ${v.patchSize}`);
  if (v.hidden % v.heads !== 0)
    throw new Error(`${where}: hidden_size ${v.hidden} is not divisible by num_attention_heads ${v.heads}`);
  if (v.imageMean.length !== v.channels || v.imageStd.length !== v.channels)
    throw new Error(`${where}: image_mean and image_std need one value per channel (${v.channels})`);
  return v;
}

/** Reads config.json's vision_config object. */
export function visionFromHf(json: unknown, where: string): VisionConfig {
  const r = hfVisionSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`${where}: vision_config.${issue?.path.join(".")}: ${issue?.message}`);
  }
  const h = r.data;
  return validateVision(
    {
      imageSize: h.image_size,
      patchSize: h.patch_size,
      channels: h.num_channels,
      hidden: h.hidden_size,
      layers: h.num_hidden_layers,
      heads: h.num_attention_heads,
      intermediate: h.intermediate_size,
      normEps: h.layer_norm_eps,
      projector: h.projector_type,
      imageMean: h.image_mean,
      imageStd: h.image_std,
    },
    where,
  );
}

export function visionToHf(v: VisionConfig): Record<string, unknown> {
  return {
    model_type: "llmfab_vit",
    image_size: v.imageSize,
    patch_size: v.patchSize,
    num_channels: v.channels,
    hidden_size: v.hidden,
    num_hidden_layers: v.layers,
    num_attention_heads: v.heads,
    intermediate_size: v.intermediate,
    layer_norm_eps: v.normEps,
    hidden_act: "gelu_pytorch_tanh",
    projector_type: v.projector,
    image_mean: v.imageMean,
    image_std: v.imageStd,
  };
}

/** preprocessor_config.json, in Hugging Face's image processor terms. */
export function preprocessorConfig(v: VisionConfig): Record<string, unknown> {
  return {
    do_resize: true,
    size: { height: v.imageSize, width: v.imageSize },
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: v.imageMean,
    image_std: v.imageStd,
    do_convert_rgb: true,
  };
}

/**
 * A small ViT's defaults, sized for the synthetic image tasks and MNIST: 32 x 32 images in
 * 4 x 4 patches of 8 pixels, so an image costs the language model 16 positions.
 */
export function defaultVision(overrides: Partial<VisionConfig> = {}): VisionConfig {
  return validateVision({
    imageSize: 32,
    patchSize: 8,
    channels: 3,
    hidden: 128,
    layers: 4,
    heads: 4,
    intermediate: 512,
    normEps: 1e-5,
    projector: "mlp2x_gelu",
    imageMean: [0.5, 0.5, 0.5],
    imageStd: [0.5, 0.5, 0.5],
    ...overrides,
  });
}

const TOWER = "vision_tower";
const PROJECTOR = "multi_modal_projector";

/** Parameters of the vision tower and projector. */
export function isVisionParameter(name: string): boolean {
  return name.startsWith(`${TOWER}.`) || name.startsWith(`${PROJECTOR}.`);
}

export function isProjectorParameter(name: string): boolean {
  return name.startsWith(`${PROJECTOR}.`);
}

/** The encoder's and projector's parameters (nn.Linear [out, in] layout), projecting to the LM's width textWidth. */
export function visionParameters(v: VisionConfig, textWidth: number, normal: NormalInit): Parameters {
  const p: Parameters = new Map();
  const H = v.hidden;
  const residualStd = 0.02 / Math.sqrt(2 * v.layers);
  const linearLayer = (name: string, nIn: number, nOut: number, std = 0.02) => {
    p.set(`${name}.weight`, normal([nOut, nIn], std));
    p.set(`${name}.bias`, constantInit([nOut], 0));
  };
  const norm = (name: string) => {
    p.set(`${name}.weight`, constantInit([H], 1));
    p.set(`${name}.bias`, constantInit([H], 0));
  };
  p.set(`${TOWER}.embeddings.patch_embedding.weight`, normal([H, v.channels * v.patchSize * v.patchSize]));
  p.set(`${TOWER}.embeddings.position_embedding.weight`, normal([patchesPerImage(v), H]));
  for (let i = 0; i < v.layers; i++) {
    const l = `${TOWER}.encoder.layers.${i}`;
    norm(`${l}.layer_norm1`);
    linearLayer(`${l}.self_attn.qkv_proj`, H, 3 * H);
    linearLayer(`${l}.self_attn.out_proj`, H, H, residualStd);
    norm(`${l}.layer_norm2`);
    linearLayer(`${l}.mlp.fc1`, H, v.intermediate);
    linearLayer(`${l}.mlp.fc2`, v.intermediate, H, residualStd);
  }
  norm(`${TOWER}.post_layernorm`);
  if (v.projector === "linear") linearLayer(`${PROJECTOR}.linear_1`, H, textWidth);
  else {
    linearLayer(`${PROJECTOR}.linear_1`, H, textWidth);
    linearLayer(`${PROJECTOR}.linear_2`, textWidth, textWidth);
  }
  return p;
}

/**
 * Images [count, C, S, S] as rows of patches [count * patches, C * P * P], each patch's
 * values in (channel, row, column) order: a linear layer on these rows is the stride-P
 * convolution of ViT's patch embedding. A copy of the input, as tokenizing text is.
 */
export function patchify(pixels: Float32Array, count: number, v: VisionConfig): Float32Array {
  const { imageSize: S, patchSize: P, channels: C } = v;
  const side = S / P;
  const out = new Float32Array(pixels.length);
  let o = 0;
  for (let n = 0; n < count; n++)
    for (let py = 0; py < side; py++)
      for (let px = 0; px < side; px++)
        for (let c = 0; c < C; c++)
          for (let y = 0; y < P; y++) {
            const from = ((n * C + c) * S + py * P + y) * S + px * P;
            out.set(pixels.subarray(from, from + P), o);
            o += P;
          }
  return out;
}

/**
 * The encoder and projector: images [count, C, S, S] (preprocessed) to one vector of the
 * language model's width per patch, [count * patches, textWidth], in image then patch order.
 */
export function encodeImages(v: VisionConfig, p: Parameters, pixels: Float32Array, count: number): Tensor {
  if (pixels.length !== count * pixelsPerImage(v))
    throw new Error(`vision: ${pixels.length} pixel values for ${count} images of ${pixelsPerImage(v)}`);
  const w = (name: string) => param(p, name);
  const dense = (x: Tensor, name: string) => linear(x, w(`${name}.weight`), w(`${name}.bias`), "out-in");
  const norm = (x: Tensor, name: string) => layerNorm(x, w(`${name}.weight`), w(`${name}.bias`), v.normEps);
  const N = patchesPerImage(v);
  const patches = new Tensor(patchify(pixels, count, v), [count * N, v.channels * v.patchSize ** 2]);
  const positionIds = Int32Array.from({ length: count * N }, (_, i) => i % N);
  let x = add(
    linear(patches, w(`${TOWER}.embeddings.patch_embedding.weight`), null, "out-in"),
    embedding(positionIds, count, N, w(`${TOWER}.embeddings.position_embedding.weight`), null),
  );
  // Each residual add runs fused with the norm that reads its sum next (layer_norm2, the
  // next layer's layer_norm1, or post_layernorm): x is the residual stream, normed its norm.
  const normAfter = (i: number) =>
    i < v.layers ? `${TOWER}.encoder.layers.${i}.layer_norm1` : `${TOWER}.post_layernorm`;
  const addNorm = (y: Tensor, name: string) => addLayerNorm(x, y, w(`${name}.weight`), w(`${name}.bias`), v.normEps);
  let normed = norm(x, normAfter(0));
  for (let i = 0; i < v.layers; i++) {
    const l = `${TOWER}.encoder.layers.${i}`;
    const qkv = dense(normed, `${l}.self_attn.qkv_proj`);
    ({ sum: x, normed } = addNorm(
      dense(attentionQkv(qkv, count, N, v.heads, false), `${l}.self_attn.out_proj`),
      `${l}.layer_norm2`,
    ));
    ({ sum: x, normed } = addNorm(dense(gelu(dense(normed, `${l}.mlp.fc1`)), `${l}.mlp.fc2`), normAfter(i + 1)));
  }
  const projected = dense(normed, `${PROJECTOR}.linear_1`);
  return v.projector === "linear" ? projected : dense(gelu(projected), `${PROJECTOR}.linear_2`);
}

/**
 * The embedded input [B * T, C] with the images' vectors in their placeholders' rows. As in
 * Hugging Face's inputs_embeds, they replace the token embedding; a model with learned
 * positions (GPT-2) adds its position embedding `wpe` to them as to any token.
 */
export function placeImages(x: Tensor, opts: ForwardOptions, T: number, wpe: Tensor | null): Tensor {
  const placed = opts.imageVectors;
  if (!placed) return x;
  let vectors = placed.vectors;
  if (wpe) {
    const positions = Int32Array.from(placed.rows, (r) => (opts.kv ? (opts.kv.positions[r] as number) : r % T));
    vectors = add(vectors, embedding(positions, 1, positions.length, wpe, null));
  }
  return spliceRows(x, placed.rows, vectors);
}
