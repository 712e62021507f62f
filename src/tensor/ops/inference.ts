// Forward-only ops of inference: embeddings and RoPE at explicit positions, and
// attention against a key/value cache. They record nothing on the tape.
import { native } from "../../backend/native.ts";
import { needsGrad } from "../tape.ts";
import { Tensor } from "../tensor.ts";

function forwardOnly(op: string, ...inputs: Tensor[]): void {
  if (needsGrad(...inputs)) throw new Error(`${op} is an inference op: run it under noGrad()`);
}

/** out[i] = wte[idx[i]] + wpe[positions[i]]: shape [N, C]. */
export function embeddingAt(idx: Int32Array, positions: Int32Array, wte: Tensor, wpe: Tensor | null): Tensor {
  forwardOnly("embeddingAt", wte, ...(wpe ? [wpe] : []));
  const [V, C] = wte.shape as [number, number];
  // Out of range, the kernel would read past the table: a model whose vocabulary is smaller than its tokenizer's.
  for (const id of idx)
    if (id < 0 || id >= V) throw new Error(`token id ${id} is outside the model's vocabulary of ${V} embeddings`);
  if (wpe) {
    for (const p of positions)
      if (p < 0 || p >= (wpe.shape[0] as number))
        throw new Error(`position ${p} is beyond the model's ${wpe.shape[0]} learned positions`);
  }
  const out = Tensor.empty([idx.length, C]);
  native.embeddingForwardAt(out.data, idx, positions, wte.data, wpe?.data ?? null, idx.length, C);
  return out;
}

/** RoPE on rows [N, H, D], row i rotated for position positions[i]. */
export function ropeAt(x: Tensor, positions: Int32Array, H: number, invFreq: Float32Array): Tensor {
  forwardOnly("ropeAt", x);
  const N = positions.length;
  const D = x.size / N / H;
  if (invFreq.length !== D / 2) throw new Error(`ropeAt: ${invFreq.length} frequencies for head dimension ${D}`);
  const out = Tensor.empty(x.shape);
  native.ropeAt(out.data, x.data, positions, N, H, D, invFreq);
  return out;
}

/** Rows of a tensor holding k or v: `offset` floats into each row of `stride` floats. */
export interface RowSource {
  data: Float32Array;
  offset: number;
  stride: number;
}

export interface CachedAttentionArgs {
  /** this layer's cache */
  layer: { k: Float32Array; v: Float32Array };
  slots: Int32Array;
  start: Int32Array;
  capacity: number;
  B: number;
  Tn: number;
  Hq: number;
  Hkv: number;
  D: number;
}

/** Appends the new keys and values to the cache, then attends: q [B * Tn, Hq * D] -> [B * Tn, Hq * D]. */
export function cachedAttention(q: RowSource, k: RowSource, v: RowSource, a: CachedAttentionArgs): Tensor {
  const width = a.Hkv * a.D;
  for (let b = 0; b < a.B; b++) {
    for (let t = 0; t < a.Tn; t++) {
      const row = b * a.Tn + t;
      const dst = ((a.slots[b] as number) * a.capacity + (a.start[b] as number) + t) * width;
      a.layer.k.set(k.data.subarray(row * k.stride + k.offset, row * k.stride + k.offset + width), dst);
      a.layer.v.set(v.data.subarray(row * v.stride + v.offset, row * v.stride + v.offset + width), dst);
    }
  }
  const qd = a.Hq * a.D;
  let qData = q.data;
  if (q.stride !== qd || q.offset !== 0) {
    qData = new Float32Array(a.B * a.Tn * qd);
    for (let r = 0; r < a.B * a.Tn; r++)
      qData.set(q.data.subarray(r * q.stride + q.offset, r * q.stride + q.offset + qd), r * qd);
  }
  const out = Tensor.empty([a.B * a.Tn, qd]);
  native.attentionCached(
    out.data,
    qData,
    a.layer.k,
    a.layer.v,
    a.B,
    a.Tn,
    a.Hq,
    a.Hkv,
    a.D,
    a.slots,
    a.start,
    a.capacity,
    1 / Math.sqrt(a.D),
  );
  return out;
}

/** The last of every T rows: [B * T, C] -> [B, C] (the positions whose next token is sampled). */
export function lastRows(x: Tensor, B: number, T: number): Tensor {
  forwardOnly("lastRows", x);
  const C = x.size / (B * T);
  const out = Tensor.empty([B, C]);
  for (let b = 0; b < B; b++) out.data.set(x.data.subarray(((b + 1) * T - 1) * C, (b + 1) * T * C), b * C);
  return out;
}
