// The dedup index: a compact set of 64-bit keys (open addressing on one Uint32Array, 16
// bytes per key at most 50% load), saved and restored byte for byte so a resumed run
// sees exactly the keys the interrupted run had committed.

export class KeySet {
  private table: Uint32Array;
  private used = 0;

  constructor(capacity = 1024) {
    let size = 1024;
    while (size < 2 * capacity) size *= 2;
    this.table = new Uint32Array(2 * size);
  }

  get size(): number {
    return this.used;
  }

  /** Adds (hi, lo); returns false if it was already there. The all-zero key is stored as (0, 1). */
  add(hi: number, lo: number): boolean {
    if (hi === 0 && lo === 0) lo = 1;
    if (2 * (this.used + 1) > this.table.length / 2) this.grow();
    return this.insert(hi >>> 0, lo >>> 0);
  }

  has(hi: number, lo: number): boolean {
    if (hi === 0 && lo === 0) lo = 1;
    const slots = this.table.length / 2;
    for (let s = this.slotOf(hi >>> 0, lo >>> 0, slots); ; s = (s + 1) & (slots - 1)) {
      const a = this.table[2 * s] as number;
      const b = this.table[2 * s + 1] as number;
      if (a === 0 && b === 0) return false;
      if (a === hi >>> 0 && b === lo >>> 0) return true;
    }
  }

  private slotOf(hi: number, lo: number, slots: number): number {
    return (Math.imul(hi ^ Math.imul(lo, 0x9e3779b1), 0x85ebca6b) >>> 0) & (slots - 1);
  }

  private insert(hi: number, lo: number): boolean {
    const slots = this.table.length / 2;
    for (let s = this.slotOf(hi, lo, slots); ; s = (s + 1) & (slots - 1)) {
      const a = this.table[2 * s] as number;
      const b = this.table[2 * s + 1] as number;
      if (a === 0 && b === 0) {
        this.table[2 * s] = hi;
        this.table[2 * s + 1] = lo;
        this.used++;
        return true;
      }
      if (a === hi && b === lo) return false;
    }
  }

  private grow(): void {
    const old = this.table;
    this.table = new Uint32Array(old.length * 2);
    this.used = 0;
    for (let i = 0; i < old.length; i += 2) {
      const a = old[i] as number;
      const b = old[i + 1] as number;
      if (a !== 0 || b !== 0) this.insert(a, b);
    }
  }

  /** The table as bytes (a little-endian [used, ...table] array). */
  toBytes(): Uint8Array {
    const out = new Uint32Array(1 + this.table.length);
    out[0] = this.used;
    out.set(this.table, 1);
    return new Uint8Array(out.buffer);
  }

  static fromBytes(bytes: Uint8Array): KeySet {
    const words = new Uint32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    const set = new KeySet();
    set.table = words.slice(1);
    set.used = words[0] as number;
    return set;
  }
}

/**
 * One key set per dedup step. A document is a duplicate at a step if any of its keys is
 * in that step's set; a document that is not gets all its keys added.
 */
export class DedupIndex {
  constructor(readonly sets: KeySet[]) {}

  static empty(steps: number): DedupIndex {
    return new DedupIndex(Array.from({ length: steps }, () => new KeySet()));
  }

  /** True if seen before; otherwise records the keys and returns false. */
  seen(step: number, keys: Uint32Array): boolean {
    const set = this.sets[step] as KeySet;
    for (let i = 0; i < keys.length; i += 2) if (set.has(keys[i] as number, keys[i + 1] as number)) return true;
    for (let i = 0; i < keys.length; i += 2) set.add(keys[i] as number, keys[i + 1] as number);
    return false;
  }

  /** All sets in one buffer: [count, (byteLength, bytes)...]. */
  toBytes(): Uint8Array {
    const parts = this.sets.map((s) => s.toBytes());
    const total = 4 + parts.reduce((n, p) => n + 4 + p.length, 0);
    const out = new Uint8Array(total);
    const view = new DataView(out.buffer);
    view.setUint32(0, parts.length, true);
    let off = 4;
    for (const p of parts) {
      view.setUint32(off, p.length, true);
      out.set(p, off + 4);
      off += 4 + p.length;
    }
    return out;
  }

  static fromBytes(bytes: Uint8Array): DedupIndex {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = view.getUint32(0, true);
    const sets: KeySet[] = [];
    let off = 4;
    for (let i = 0; i < n; i++) {
      const len = view.getUint32(off, true);
      sets.push(KeySet.fromBytes(bytes.subarray(off + 4, off + 4 + len)));
      off += 4 + len;
    }
    return new DedupIndex(sets);
  }
}
