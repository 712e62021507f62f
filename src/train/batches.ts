// Training batches as nanoGPT draws them: B random windows of T + 1 tokens from a split.
import type { TokenArray } from "../io/shards.ts";
import type { Rng } from "../nn/random.ts";

export interface Batch {
  x: Int32Array;
  y: Int32Array;
}

/** A training or validation split: one token array, or several shards. */
export type Split = TokenArray[];

/** B windows; with several shards, each window's shard is drawn in proportion to its size. */
export function randomBatch(split: Split, B: number, T: number, rng: Rng): Batch {
  const x = new Int32Array(B * T);
  const y = new Int32Array(B * T);
  const usable = split.map((s) => Math.max(0, s.length - T));
  const total = usable.reduce((a, b) => a + b, 0);
  for (let b = 0; b < B; b++) {
    let i = rng.int(split.length === 1 ? (usable[0] as number) : total);
    let shard = 0;
    while (i >= (usable[shard] as number)) i -= usable[shard++] as number;
    const tokens = split[shard] as TokenArray;
    x.set(tokens.subarray(i, i + T), b * T);
    y.set(tokens.subarray(i + 1, i + T + 1), b * T);
  }
  return { x, y };
}

/** Splits tokens into train (first part) and validation (last valFraction), checking both fit a block. */
export function splitTokens(tokens: Int32Array, valFraction: number, blockSize: number, where: string): [Split, Split] {
  const n = Math.floor(tokens.length * (1 - valFraction));
  const train = tokens.subarray(0, n);
  const val = tokens.subarray(n);
  for (const [name, split] of [
    ["training", train],
    ["validation", val],
  ] as const) {
    if (split.length <= blockSize) {
      throw new Error(
        `${where}: the ${name} split has ${split.length} tokens, but block_size ${blockSize} needs at least ${blockSize + 1}; use more data or a smaller block_size`,
      );
    }
  }
  return [[train], [val]];
}

/** Checks that a split has a window of blockSize + 1 tokens. */
export function checkSplit(split: Split, name: string, blockSize: number, where: string): void {
  const longest = Math.max(0, ...split.map((s) => s.length));
  if (longest <= blockSize) {
    throw new Error(
      `${where}: the ${name} split has ${longest} tokens in its largest shard, but block_size ${blockSize} needs at least ${blockSize + 1}`,
    );
  }
}
