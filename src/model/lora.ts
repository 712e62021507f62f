// LoRA (Hu et al., 2021): a frozen weight W plus a trained low-rank update,
// y = x W^T + (alpha / r) (x A^T) B^T, with A [r, in] and B [out, r] (PEFT's shapes for
// both nn.Linear and GPT-2's Conv1D). B starts at zero, so training starts from the base.
import { gemm } from "../backend/native.ts";
import type { Rng } from "../nn/random.ts";
import {
  dropout,
  type LinearOptions,
  linear,
  linearPlusLowRank,
  scale,
  Tensor,
  type WeightLayout,
} from "../tensor/index.ts";

export interface LoraAdapter {
  A: Tensor;
  B: Tensor;
  /** alpha / r */
  scale: number;
  dropout: number;
}

/** Adapters by the name of the weight they adapt (e.g. "transformer.h.0.attn.c_attn.weight"). */
export type Adapters = Map<string, LoraAdapter>;

/** in and out features of a weight in its layout. */
export function featuresOf(w: Tensor, layout: WeightLayout): [number, number] {
  const [d0, d1] = w.shape as [number, number];
  return layout === "out-in" ? [d1, d0] : [d0, d1];
}

/** A fresh adapter: A uniform in +-1/sqrt(in) (PEFT's Kaiming init), B zero. */
export function initAdapter(
  inFeatures: number,
  outFeatures: number,
  r: number,
  alpha: number,
  p: number,
  rng: Rng,
): LoraAdapter {
  const A = Tensor.zeros([r, inFeatures], true);
  const bound = 1 / Math.sqrt(inFeatures);
  for (let i = 0; i < A.size; i++) A.data[i] = (rng.next() * 2 - 1) * bound;
  return { A, B: Tensor.zeros([outFeatures, r], true), scale: alpha / r, dropout: p };
}

/**
 * The layer op with an optional adapter. dropoutSeed set: training (adapter dropout on).
 * opts apply to the plain layer (an adapted layer's output stays fp32).
 */
export function project(
  x: Tensor,
  w: Tensor,
  b: Tensor | null,
  layout: WeightLayout,
  adapter: LoraAdapter | undefined,
  dropoutSeed?: number,
  opts: LinearOptions = {},
): Tensor {
  if (!adapter) return linear(x, w, b, layout, opts);
  const input = dropoutSeed === undefined || adapter.dropout <= 0 ? x : dropout(x, adapter.dropout, dropoutSeed);
  // The scale goes on the narrow [tokens, r] activation, the wide sum is fused.
  const h = scale(linear(input, adapter.A, null, "out-in"), adapter.scale);
  return linearPlusLowRank(x, w, b, layout, h, adapter.B);
}

/**
 * The layers of a model by name (`<name>.weight`, optional `<name>.bias`), each with its
 * LoRA adapter if it has one; adapter dropout gets a fresh seed per layer while training.
 */
export function layersOf(
  params: Map<string, Tensor>,
  adapters: Adapters,
  layout: WeightLayout,
  dropoutSeed: number | undefined,
): (x: Tensor, name: string, opts?: LinearOptions) => Tensor {
  let seed = (dropoutSeed ?? 0) * 7919 + 1;
  return (x, name, opts) => {
    const w = params.get(`${name}.weight`);
    if (!w) throw new Error(`model has no parameter named ${name}.weight`);
    const adapter = adapters.get(`${name}.weight`);
    return project(
      x,
      w,
      params.get(`${name}.bias`) ?? null,
      layout,
      adapter,
      dropoutSeed === undefined ? undefined : seed++,
      opts,
    );
  };
}

/** Folds an adapter into its weight: W += scale * (B A), laid out as W is. */
export function mergeAdapter(w: Tensor, layout: WeightLayout, a: LoraAdapter): void {
  const [inF, outF] = featuresOf(w, layout);
  const r = a.A.shape[0] as number;
  const scaledB = Float32Array.from(a.B.data, (v) => v * a.scale);
  if (layout === "out-in") gemm({ out: w.data, a: scaledB, b: a.A.data, M: outF, N: inF, K: r, accumulate: true });
  else
    gemm({ out: w.data, a: a.A.data, b: scaledB, M: inF, N: outF, K: r, transA: true, transB: true, accumulate: true });
}
