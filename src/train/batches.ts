// Training batches as nanoGPT draws them: B random windows of T + 1 tokens from a split.
import type { Rng } from "../nn/random.ts";

export interface Batch {
  x: Int32Array;
  y: Int32Array;
}

export function randomBatch(tokens: Int32Array, B: number, T: number, rng: Rng): Batch {
  const x = new Int32Array(B * T);
  const y = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const i = rng.int(tokens.length - T);
    x.set(tokens.subarray(i, i + T), b * T);
    y.set(tokens.subarray(i + 1, i + T + 1), b * T);
  }
  return { x, y };
}

/** Splits tokens into train (first part) and validation (last valFraction), checking both fit a block. */
export function splitTokens(
  tokens: Int32Array,
  valFraction: number,
  blockSize: number,
  where: string,
): [Int32Array, Int32Array] {
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
  return [train, val];
}
