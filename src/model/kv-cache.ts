// The key/value cache of inference: per layer, `slots` sequences of up to `capacity`
// tokens, laid out [slots, capacity, kvHeads, headDim]. A forward pass with a CacheStep
// appends the keys and values of its tokens and attends over everything cached so far.
import type { CachedAttentionArgs } from "../tensor/ops/inference.ts";
import type { ModelConfig } from "./config.ts";

export interface KVCache {
  readonly slots: number;
  readonly capacity: number;
  /** floats per cached token row (kvHeads * headDim) */
  readonly width: number;
  readonly layers: { k: Float32Array; v: Float32Array }[];
}

/** Which sequences a forward pass extends: B sequences of Tn new tokens each. */
export interface CacheStep {
  cache: KVCache;
  /** slot of each sequence */
  slots: Int32Array;
  /** position of each sequence's first new token (= tokens already cached) */
  start: Int32Array;
  /** position of every new token, [B * Tn] */
  positions: Int32Array;
}

export function createKVCache(config: ModelConfig, slots: number, capacity = config.blockSize): KVCache {
  const width = config.nKvHead * config.headDim;
  const layers = Array.from({ length: config.nLayer }, () => ({
    k: new Float32Array(slots * capacity * width),
    v: new Float32Array(slots * capacity * width),
  }));
  return { slots, capacity, width, layers };
}

/** Copies the first `rows` cached tokens of slot `from` into slot `to`, in every layer. */
export function copySlotRows(cache: KVCache, from: number, to: number, rows: number): void {
  const [src, dst, n] = [from * cache.capacity * cache.width, to * cache.capacity * cache.width, rows * cache.width];
  for (const { k, v } of cache.layers) {
    k.copyWithin(dst, src, src + n);
    v.copyWithin(dst, src, src + n);
  }
}

export function cacheStep(cache: KVCache, slots: number[], start: number[], Tn: number): CacheStep {
  for (let b = 0; b < slots.length; b++) {
    if ((start[b] as number) + Tn > cache.capacity) {
      throw new Error(`sequence of ${(start[b] as number) + Tn} tokens exceeds the context of ${cache.capacity}`);
    }
  }
  const positions = new Int32Array(slots.length * Tn);
  for (let b = 0; b < slots.length; b++) for (let t = 0; t < Tn; t++) positions[b * Tn + t] = (start[b] as number) + t;
  return { cache, slots: Int32Array.from(slots), start: Int32Array.from(start), positions };
}

/** The arguments of cachedAttention for layer `layer` of a step of B sequences x Tn tokens. */
export function cacheArgs(c: ModelConfig, kv: CacheStep, layer: number, B: number, Tn: number): CachedAttentionArgs {
  return {
    layer: kv.cache.layers[layer] as { k: Float32Array; v: Float32Array },
    slots: kv.slots,
    start: kv.start,
    capacity: kv.cache.capacity,
    B,
    Tn,
    Hq: c.nHead,
    Hkv: c.nKvHead,
    D: c.headDim,
  };
}
