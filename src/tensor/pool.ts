// Recycles large float buffers between training steps. Fresh large typed arrays cost a
// page fault per 4 KiB on first touch plus zero-filling; a training step allocates the
// same sizes every time, so handing buffers back after backward() removes that cost.

import { native } from "../backend/native.ts";

const MIN_POOLED = 1 << 14; // smaller arrays are cheap to allocate
const free = new Map<number, Float32Array[]>();
let pooledFloats = 0;
const MAX_POOLED_FLOATS = 2 ** 31 / 4; // at most 2 GiB held idle

/** A buffer of n floats: zero-filled when `zero`, else with unspecified contents. */
export function take(n: number, zero: boolean): Float32Array {
  if (n >= MIN_POOLED) {
    const buf = free.get(n)?.pop();
    if (buf) {
      pooledFloats -= n;
      if (zero) zeroFill(buf);
      return buf;
    }
  }
  return new Float32Array(n);
}

/** Returns a buffer for reuse; the caller must not touch it afterwards. */
export function give(buf: Float32Array): void {
  const n = buf.length;
  if (n < MIN_POOLED || buf.byteOffset !== 0 || buf.buffer.byteLength !== n * 4) return;
  if (pooledFloats + n > MAX_POOLED_FLOATS) return;
  let list = free.get(n);
  if (!list) {
    list = [];
    free.set(n, list);
  }
  list.push(buf);
  pooledFloats += n;
}

/** Drops every idle buffer (after training, before a phase with different shapes). */
export function clearPool(): void {
  free.clear();
  freeBf16.clear();
  pooledFloats = 0;
}

/** Zeroes a buffer; large ones on all compute threads (a single-threaded fill left a core idle). */
export function zeroFill(buf: Float32Array): void {
  if (buf.length >= MIN_POOLED) native.fill(buf, 0, buf.length);
  else buf.fill(0);
}

const freeBf16 = new Map<number, Uint16Array[]>();

/** A buffer for n bf16 values (contents unspecified), for operands converted once and reused. */
export function takeBf16(n: number): Uint16Array {
  return freeBf16.get(n)?.pop() ?? new Uint16Array(n);
}

export function giveBf16(buf: Uint16Array): void {
  if (buf.length < MIN_POOLED) return;
  let list = freeBf16.get(buf.length);
  if (!list) {
    list = [];
    freeBf16.set(buf.length, list);
  }
  list.push(buf);
}
