// Recycles large buffers between training steps: float data and gradients, and the bf16
// copies of matmul operands. Fresh large typed arrays cost a page fault per 4 KiB on first
// touch plus zero-filling; a training step allocates the same sizes every time, so handing
// buffers back after backward() removes that cost.

import { native } from "../backend/native.ts";

const MIN_POOLED = 1 << 14; // smaller arrays are cheap to allocate
const MAX_POOLED_BYTES = 2 ** 31; // at most 2 GiB held idle
let pooledBytes = 0;

/** Idle buffers of one element type, by length. */
class FreeLists<T extends Float32Array | Uint16Array> {
  private readonly lists = new Map<number, T[]>();

  /** An idle buffer of length n, or undefined (the caller then allocates one). */
  reuse(n: number): T | undefined {
    const buf = n >= MIN_POOLED ? this.lists.get(n)?.pop() : undefined;
    if (buf) pooledBytes -= buf.byteLength;
    return buf;
  }

  give(buf: T): void {
    const n = buf.length;
    if (n < MIN_POOLED || buf.byteOffset !== 0 || buf.buffer.byteLength !== buf.byteLength) return;
    if (pooledBytes + buf.byteLength > MAX_POOLED_BYTES) return;
    let list = this.lists.get(n);
    if (!list) {
      list = [];
      this.lists.set(n, list);
    }
    list.push(buf);
    pooledBytes += buf.byteLength;
  }

  clear(): void {
    this.lists.clear();
  }
}

const floats = new FreeLists<Float32Array>();
const bf16s = new FreeLists<Uint16Array>();

/** A buffer of n floats: zero-filled when `zero`, else with unspecified contents. */
export function take(n: number, zero: boolean): Float32Array {
  const buf = floats.reuse(n);
  if (!buf) return new Float32Array(n); // zero already
  if (zero) zeroFill(buf);
  return buf;
}

/** Returns a buffer for reuse; the caller must not touch it afterwards. */
export function give(buf: Float32Array): void {
  floats.give(buf);
}

/** A buffer for n bf16 values (contents unspecified), for operands converted once and reused. */
export function takeBf16(n: number): Uint16Array {
  return bf16s.reuse(n) ?? new Uint16Array(n);
}

export function giveBf16(buf: Uint16Array): void {
  bf16s.give(buf);
}

/** Drops every idle buffer (after training, before a phase with different shapes). */
export function clearPool(): void {
  floats.clear();
  bf16s.clear();
  pooledBytes = 0;
}

/** Zeroes a buffer; large ones on all compute threads (a single-threaded fill left a core idle). */
export function zeroFill(buf: Float32Array): void {
  if (buf.length >= MIN_POOLED) native.fill(buf, 0, buf.length);
  else buf.fill(0);
}
