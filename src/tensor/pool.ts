// Recycles large buffers between training steps: float data and gradients, and the bf16
// copies of matmul operands. Fresh large typed arrays cost a page fault per 4 KiB on first
// touch plus zero-filling; a training step allocates the same sizes every time, so handing
// buffers back after backward() removes that cost. Buffers are made in size classes (at
// most 1/4 larger than asked) and handed out as views of the asked length, so steps whose
// shapes differ a little (padded batches of varying length) reuse each other's buffers.

import { native } from "../backend/native.ts";

const MIN_POOLED = 1 << 14; // smaller arrays are cheap to allocate
const MAX_POOLED_BYTES = 2 ** 32; // at most 4 GiB held idle
let pooledBytes = 0;

/** The length a buffer for n elements is made with: n rounded up to a quarter of its power of two. */
function capacityOf(n: number): number {
  if (n < MIN_POOLED) return n;
  const step = 2 ** (Math.floor(Math.log2(n)) - 2);
  return Math.ceil(n / step) * step;
}

type Typed = Float32Array | Uint16Array;

/** Idle buffers of one element type, by capacity. */
class FreeLists<T extends Typed> {
  private readonly lists = new Map<number, ArrayBuffer[]>();

  constructor(
    private readonly bytesPerElement: number,
    private readonly view: (buffer: ArrayBuffer, n: number) => T,
  ) {}

  /** The length each buffer handed out was handed out with: only that view comes back. */
  private readonly loans = new WeakMap<ArrayBufferLike, number>();

  /** A view of n elements: on an idle buffer of n's size class, or on a new one. */
  take(n: number): { buf: T; fresh: boolean } {
    if (n < MIN_POOLED) return { buf: this.view(new ArrayBuffer(n * this.bytesPerElement), n), fresh: true };
    const capacity = capacityOf(n);
    const idle = this.lists.get(capacity)?.pop();
    if (idle) pooledBytes -= idle.byteLength;
    const buf = this.view(idle ?? new ArrayBuffer(capacity * this.bytesPerElement), n);
    this.loans.set(buf.buffer, n);
    return { buf, fresh: !idle };
  }

  /** Takes back a buffer handed out by take(), as it was handed out; anything else (a slice, a second return) is ignored. */
  give(buf: T): void {
    if (buf.byteOffset !== 0 || this.loans.get(buf.buffer) !== buf.length) return;
    this.loans.delete(buf.buffer);
    if (!(buf.buffer instanceof ArrayBuffer) || pooledBytes + buf.buffer.byteLength > MAX_POOLED_BYTES) return;
    const capacity = buf.buffer.byteLength / this.bytesPerElement;
    let list = this.lists.get(capacity);
    if (!list) {
      list = [];
      this.lists.set(capacity, list);
    }
    list.push(buf.buffer);
    pooledBytes += buf.buffer.byteLength;
  }

  clear(): void {
    this.lists.clear();
  }
}

const floats = new FreeLists<Float32Array>(4, (buffer, n) => new Float32Array(buffer, 0, n));
const bf16s = new FreeLists<Uint16Array>(2, (buffer, n) => new Uint16Array(buffer, 0, n));

/** Buffers handed out inside the current recycling scope (null: none open). */
let scopeLoans: Typed[] | null = null;

/** A buffer of n floats: zero-filled when `zero`, else with unspecified contents. */
export function take(n: number, zero: boolean): Float32Array {
  const { buf, fresh } = floats.take(n);
  if (zero && !fresh) zeroFill(buf); // a new one is zero already
  if (scopeLoans && n >= MIN_POOLED) scopeLoans.push(buf);
  return buf;
}

/**
 * Runs fn and then hands back to the pool every buffer it took, except those
 * `kept(result)` names (none by default: a loss or a step that returns no tensor): for inference steps, whose intermediate activations nobody holds
 * once the step is done (without a tape, nothing else returns them, and every step paid
 * fresh allocations, page faults and garbage collection). fn must not keep tensors it made
 * anywhere but in its result. Scopes do not nest: an inner one runs fn plainly.
 */
export function recyclingBuffers<T>(fn: () => T, kept: (result: T) => ArrayBufferLike[] = () => []): T {
  if (scopeLoans) return fn();
  const loans: Typed[] = [];
  scopeLoans = loans;
  let result: T;
  try {
    result = fn();
  } finally {
    scopeLoans = null;
  }
  const keep = new Set(kept(result));
  for (const buf of loans) {
    if (keep.has(buf.buffer)) continue;
    if (buf instanceof Float32Array) floats.give(buf);
    else bf16s.give(buf);
  }
  return result;
}

/** Returns a buffer for reuse; the caller must not touch it afterwards. */
export function give(buf: Float32Array): void {
  floats.give(buf);
}

/** A buffer for n bf16 values (contents unspecified), for operands converted once and reused. */
export function takeBf16(n: number): Uint16Array {
  const { buf } = bf16s.take(n);
  if (scopeLoans && n >= MIN_POOLED) scopeLoans.push(buf);
  return buf;
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
