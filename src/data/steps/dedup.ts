// Fingerprints for deduplication, computed on the workers. Exact: 64 bits of the text's
// SHA-1. Near: MinHash over word 5-gram shingles of the simplified text (lowercase, no
// punctuation), banded for LSH as FineWeb does (14 bands x 8 rows = 112 hashes); two
// documents sharing any band are near duplicates (Jaccard ~0.75 and up is caught with
// high probability).
import { z } from "zod";
import type { DedupStep, Doc } from "./step.ts";
import { charClass, DIGIT, LETTER, SPACE } from "./text.ts";

export function exactDedupStep(): DedupStep {
  return { kind: "dedup", name: "exact-dedup", fingerprint: (doc: Doc) => doc.contentHash() };
}

export const nearDedupOptions = z
  .object({
    ngram: z.number().int().min(1).default(5),
    bands: z.number().int().min(1).default(14),
    rows: z.number().int().min(1).default(8),
    seed: z.number().int().default(1),
  })
  .strict();

/** murmur3's 32-bit finalizer: a bijection that scrambles every bit. */
function fmix(x: number): number {
  let h = x;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Hashes of the words of the simplified text: lowercase, punctuation and symbols dropped. */
function wordHashes(text: string): Int32Array {
  const lower = text.toLowerCase();
  const out = new Int32Array((lower.length >> 1) + 1);
  let count = 0;
  let h = 0x811c9dc5 | 0;
  let inWord = false;
  for (let i = 0; i <= lower.length; i++) {
    const code = i < lower.length ? lower.charCodeAt(i) : 32;
    const cls = charClass(code);
    if (cls === LETTER || cls === DIGIT) {
      h = Math.imul(h ^ code, 0x01000193);
      inWord = true;
    } else if (cls === SPACE && inWord) {
      out[count++] = h;
      h = 0x811c9dc5 | 0;
      inWord = false;
    }
  }
  return out.subarray(0, count);
}

/**
 * The MinHash signature (bands x rows minimums) of the document's word n-gram shingles.
 * Each shingle hash is scrambled once; the k "permutations" are then random odd
 * multipliers plus offsets mod 2^32 (a multiply-add family), cheap enough for 112 per shingle.
 */
export function minhashSignature(text: string, o: z.infer<typeof nearDedupOptions>): Uint32Array {
  const k = o.bands * o.rows;
  const words = wordHashes(text);
  const shingles = new Int32Array(Math.max(1, words.length - o.ngram + 1));
  for (let s = 0; s < shingles.length; s++) {
    let h = 0;
    const end = Math.min(words.length, s + o.ngram);
    for (let j = s; j < end; j++) h = (Math.imul(h ^ (words[j] as number), 0x01000193) + 0x5bd1e995) | 0;
    shingles[s] = fmix(h >>> 0) | 0;
  }
  // Permutations go four at a time over all shingles, keeping running minimums in
  // registers. Values are compared as signed ints with the top bit flipped (the unsigned
  // order), so the loop stays in 32-bit integers, which V8 runs far faster than doubles.
  // The parameters are padded to a multiple of four.
  const m = Int32Array.from({ length: k + 3 }, (_, i) => fmix((o.seed * 0x9e3779b1 + 2 * i + 1) >>> 0) | 1);
  const a = Int32Array.from({ length: k + 3 }, (_, i) => fmix((o.seed * 0x7f4a7c15 + 2 * i + 2) >>> 0));
  const mins = new Int32Array(k + 3);
  for (let i = 0; i < k; i += 4) {
    // four permutations per pass: each shingle is loaded once for four running minimums
    const [m0, m1, m2, m3] = [m[i] as number, m[i + 1] as number, m[i + 2] as number, m[i + 3] as number];
    const [a0, a1, a2, a3] = [a[i] as number, a[i + 1] as number, a[i + 2] as number, a[i + 3] as number];
    let [min0, min1, min2, min3] = [0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff];
    for (let s = 0; s < shingles.length; s++) {
      const x = shingles[s] as number;
      const v0 = ((Math.imul(x, m0) + a0) | 0) ^ 0x80000000;
      const v1 = ((Math.imul(x, m1) + a1) | 0) ^ 0x80000000;
      const v2 = ((Math.imul(x, m2) + a2) | 0) ^ 0x80000000;
      const v3 = ((Math.imul(x, m3) + a3) | 0) ^ 0x80000000;
      if (v0 < min0) min0 = v0;
      if (v1 < min1) min1 = v1;
      if (v2 < min2) min2 = v2;
      if (v3 < min3) min3 = v3;
    }
    mins[i] = min0;
    mins[i + 1] = min1;
    mins[i + 2] = min2;
    mins[i + 3] = min3;
  }
  return new Uint32Array(mins.buffer, 0, k);
}

/** Two 32-bit words per band: a hash of the band's rows, tagged with the band number. */
export function bandKeys(signature: Uint32Array, o: z.infer<typeof nearDedupOptions>): Uint32Array {
  const keys = new Uint32Array(2 * o.bands);
  for (let b = 0; b < o.bands; b++) {
    let h1 = fmix(b + 1);
    let h2 = fmix(b + 0x51ed27);
    for (let r = 0; r < o.rows; r++) {
      const v = signature[b * o.rows + r] as number;
      h1 = fmix((h1 ^ v) >>> 0) + r;
      h2 = fmix((Math.imul(h2, 31) ^ fmix(v)) >>> 0);
    }
    keys[2 * b] = h1 >>> 0;
    keys[2 * b + 1] = h2 >>> 0;
  }
  return keys;
}

export function nearDedupStep(o: z.infer<typeof nearDedupOptions>): DedupStep {
  return {
    kind: "dedup",
    name: "near-dedup",
    fingerprint: (doc: Doc) => bandKeys(minhashSignature(doc.text, o), o),
  };
}
