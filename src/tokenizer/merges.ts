// Hugging Face's BPE model: a word starts as one symbol per character (or its bytes, with
// byte fallback), then the adjacent pair with the lowest merge rank is merged, leftmost
// first, until no pair has a merge. A heap of candidate merges keeps long words (a
// SentencePiece tokenizer sees a whole paragraph as one word) at n log n.

export interface BpeSpec {
  vocab: Map<string, number>;
  /** merges in priority order, as token-string pairs */
  merges: [string, string][];
  byteFallback: boolean;
  unkId: number | null;
  fuseUnk: boolean;
  /** a word that is itself a token is emitted whole (Llama 3) */
  ignoreMerges: boolean;
}

interface Merge {
  rank: number;
  id: number;
}

const CACHE_LIMIT = 100_000;

export class BpeModel {
  private readonly merges = new Map<number, Merge>();
  private readonly width: number;
  private readonly byteIds: (number | undefined)[] = [];
  private readonly cache = new Map<string, number[]>();

  constructor(
    private readonly spec: BpeSpec,
    where: string,
  ) {
    let max = 0;
    for (const id of spec.vocab.values()) max = Math.max(max, id);
    this.width = max + 1;
    spec.merges.forEach(([a, b], rank) => {
      const [ia, ib, id] = [spec.vocab.get(a), spec.vocab.get(b), spec.vocab.get(a + b)];
      if (ia === undefined || ib === undefined || id === undefined)
        throw new Error(`${where}: merge ${JSON.stringify(`${a} ${b}`)} names a token outside the vocabulary`);
      const key = ia * this.width + ib;
      if (!this.merges.has(key)) this.merges.set(key, { rank, id });
    });
    for (let b = 0; b < 256; b++) {
      this.byteIds.push(spec.vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`));
    }
  }

  /** Appends the ids of one pre-tokenized word. */
  encodeWord(word: string, out: number[]): void {
    let ids = this.cache.get(word);
    if (!ids) {
      ids =
        this.spec.ignoreMerges && this.spec.vocab.has(word) ? [this.spec.vocab.get(word) as number] : this.bpe(word);
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      if (word.length < 256) this.cache.set(word, ids);
    }
    for (const id of ids) out.push(id);
  }

  private initialSymbols(word: string): number[] {
    const symbols: number[] = [];
    const encoder = new TextEncoder();
    let lastUnk = false;
    for (const ch of word) {
      const id = this.spec.vocab.get(ch);
      if (id !== undefined) {
        symbols.push(id);
        lastUnk = false;
        continue;
      }
      const bytes = this.spec.byteFallback ? [...encoder.encode(ch)].map((b) => this.byteIds[b]) : [];
      if (bytes.length > 0 && bytes.every((b) => b !== undefined)) {
        symbols.push(...(bytes as number[]));
        lastUnk = false;
        continue;
      }
      if (this.spec.unkId === null) throw new Error(`character ${JSON.stringify(ch)} has no token and no <unk>`);
      if (!(this.spec.fuseUnk && lastUnk)) symbols.push(this.spec.unkId);
      lastUnk = true;
    }
    return symbols;
  }

  private bpe(word: string): number[] {
    const ids = this.initialSymbols(word);
    const n = ids.length;
    if (n < 2) return ids;
    const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const alive = new Uint8Array(n).fill(1);
    const heap = new MergeHeap();
    const consider = (pos: number) => {
      const right = next[pos] as number;
      if (right < 0) return;
      const m = this.merges.get((ids[pos] as number) * this.width + (ids[right] as number));
      if (m) heap.push(m.rank, pos, m.id);
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    while (heap.size > 0) {
      heap.pop();
      const { pos, id } = heap;
      if (!alive[pos]) continue;
      const right = next[pos] as number;
      if (right < 0) continue;
      // Stale entry: the pair at pos changed since it was queued.
      const m = this.merges.get((ids[pos] as number) * this.width + (ids[right] as number));
      if (!m || m.id !== id) continue;
      ids[pos] = id;
      alive[right] = 0;
      next[pos] = next[right] as number;
      if ((next[pos] as number) >= 0) prev[next[pos] as number] = pos;
      if ((prev[pos] as number) >= 0) consider(prev[pos] as number);
      consider(pos);
    }
    const out: number[] = [];
    for (let i = 0; i >= 0; i = next[i] as number) out.push(ids[i] as number);
    return out;
  }
}

/**
 * A binary min-heap of candidate merges (rank, position, new id), ordered by rank then
 * position, in typed arrays: one float64 key per entry (rank * 2^32 + position, exact below
 * 2^53) and its id beside it, so a push or pop allocates nothing (tuples per entry made a
 * 1 MB SentencePiece "word" take 11 s).
 */
class MergeHeap {
  private keys = new Float64Array(1024);
  private ids = new Int32Array(1024);
  size = 0;
  /** the position and new id of the entry the last pop() removed */
  pos = 0;
  id = 0;

  push(rank: number, pos: number, id: number): void {
    if (this.size === this.keys.length) this.grow();
    const key = rank * 2 ** 32 + pos;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((this.keys[parent] as number) <= key) break;
      this.keys[i] = this.keys[parent] as number;
      this.ids[i] = this.ids[parent] as number;
      i = parent;
    }
    this.keys[i] = key;
    this.ids[i] = id;
  }

  /** Removes the smallest entry; its position and id are left in `pos` and `id`. */
  pop(): void {
    const key = this.keys[0] as number;
    this.pos = key % 2 ** 32;
    this.id = this.ids[0] as number;
    const n = --this.size;
    const lastKey = this.keys[n] as number;
    const lastId = this.ids[n] as number;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && (this.keys[child + 1] as number) < (this.keys[child] as number)) child++;
      if ((this.keys[child] as number) >= lastKey) break;
      this.keys[i] = this.keys[child] as number;
      this.ids[i] = this.ids[child] as number;
      i = child;
    }
    this.keys[i] = lastKey;
    this.ids[i] = lastId;
  }

  private grow(): void {
    const keys = new Float64Array(this.keys.length * 2);
    const ids = new Int32Array(this.ids.length * 2);
    keys.set(this.keys);
    ids.set(this.ids);
    this.keys = keys;
    this.ids = ids;
  }
}
