// Byte-level BPE training (the algorithm of GPT-2's tokenizer, as minbpe teaches it):
// start from the 256 bytes and repeatedly merge the most frequent adjacent pair of
// tokens within chunks. Pair counts are updated incrementally after each merge, only
// in the chunks that contain the pair, and the best pair comes from a heap.
import type { Ranks } from "./bpe.ts";
import type { ChunkCounts } from "./chunk-count.ts";
import { Tokenizer } from "./tokenizer.ts";

export interface TrainOptions {
  /** total vocabulary: 256 bytes + merges + special tokens */
  vocabSize: number;
  pattern: string;
  specialTokens: readonly string[];
}

const KEY = 2 ** 22; // pair key = left * KEY + right; ids stay below 2^22

/** A max-heap of pairs by count, ties broken by the smaller pair key (deterministic). */
class PairHeap {
  private readonly counts: number[] = [];
  private readonly keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  pop(): [number, number] {
    const top: [number, number] = [this.counts[0] as number, this.keys[0] as number];
    const lastCount = this.counts.pop() as number;
    const lastKey = this.keys.pop() as number;
    if (this.keys.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.keys.length && this.before(l, m)) m = l;
        if (r < this.keys.length && this.before(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }

  private before(i: number, j: number): boolean {
    const ci = this.counts[i] as number;
    const cj = this.counts[j] as number;
    return ci > cj || (ci === cj && (this.keys[i] as number) < (this.keys[j] as number));
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j] as number, this.counts[i] as number];
    [this.keys[i], this.keys[j]] = [this.keys[j] as number, this.keys[i] as number];
  }
}

export function minVocabSize(specialTokens: readonly string[]): number {
  return 256 + specialTokens.length;
}

export function trainBpe(
  counts: ChunkCounts,
  opts: TrainOptions,
  onMerge?: (done: number, total: number) => void,
): Tokenizer {
  const min = minVocabSize(opts.specialTokens);
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < min) {
    throw new Error(
      `vocabulary size ${opts.vocabSize} is too small: it needs at least 256 bytes + ${opts.specialTokens.length} special tokens = ${min}`,
    );
  }
  if (opts.vocabSize >= KEY) throw new Error(`vocabulary size ${opts.vocabSize} is too large (max ${KEY - 1})`);
  const wanted = opts.vocabSize - min;

  // Each distinct chunk becomes a word: its token ids and how often it occurs.
  const words: number[][] = [];
  const freq: number[] = [];
  for (const [chunk, n] of counts) {
    const bytes = Buffer.from(chunk, "utf8");
    if (bytes.length < 2) continue; // a single byte never takes part in a merge
    words.push([...bytes]);
    freq.push(n);
  }

  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, number[]>();
  const addPairs = (w: number, sign: number) => {
    const syms = words[w] as number[];
    const n = (freq[w] as number) * sign;
    for (let i = 0; i + 1 < syms.length; i++) {
      const key = (syms[i] as number) * KEY + (syms[i + 1] as number);
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + n);
      if (sign > 0) {
        let list = pairWords.get(key);
        if (!list) {
          list = [];
          pairWords.set(key, list);
        }
        if (list[list.length - 1] !== w) list.push(w);
      }
    }
  };
  for (let w = 0; w < words.length; w++) addPairs(w, 1);
  const heap = new PairHeap();
  for (const [key, n] of pairCounts) heap.push(n, key);

  const tokens: string[] = Array.from({ length: 256 }, (_, b) => String.fromCharCode(b));
  const known = new Set(tokens);
  const merges: [number, number][] = [];
  while (merges.length < wanted && heap.size > 0) {
    const [count, key] = heap.pop();
    const current = pairCounts.get(key) ?? 0;
    if (current !== count) {
      if (current > 0) heap.push(current, key); // stale entry: requeue at its real count
      continue;
    }
    if (count <= 0) break;
    const a = Math.floor(key / KEY);
    const b = key % KEY;
    const bytes = (tokens[a] as string) + (tokens[b] as string);
    if (known.has(bytes)) {
      pairCounts.delete(key); // a second route to an existing token: skip it
      continue;
    }
    const id = tokens.length;
    tokens.push(bytes);
    known.add(bytes);
    merges.push([a, b]);
    const touched = new Set<number>();
    for (const w of pairWords.get(key) ?? []) {
      const syms = words[w] as number[];
      if (!hasPair(syms, a, b)) continue;
      addPairs(w, -1);
      words[w] = mergePair(syms, a, b, id);
      addPairs(w, 1);
      const merged = words[w] as number[];
      for (let i = 0; i + 1 < merged.length; i++) {
        if (merged[i] === id || merged[i + 1] === id)
          touched.add((merged[i] as number) * KEY + (merged[i + 1] as number));
      }
    }
    pairWords.delete(key);
    pairCounts.delete(key);
    for (const k of touched) heap.push(pairCounts.get(k) ?? 0, k);
    onMerge?.(merges.length, wanted);
  }

  const ranks: Ranks = new Map(tokens.map((t, i) => [t, i]));
  const specialTokens = new Map(opts.specialTokens.map((t, i) => [t, tokens.length + i]));
  return new Tokenizer({ pattern: opts.pattern, ranks, specialTokens, merges });
}

function hasPair(syms: number[], a: number, b: number): boolean {
  for (let i = 0; i + 1 < syms.length; i++) if (syms[i] === a && syms[i + 1] === b) return true;
  return false;
}

function mergePair(syms: number[], a: number, b: number, id: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < syms.length; i++) {
    if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) {
      out.push(id);
      i++;
    } else out.push(syms[i] as number);
  }
  return out;
}
