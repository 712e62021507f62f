// Binds the native addon (native/). Every function works in place on typed arrays that
// JavaScript owns; see native/src/kernels.h for the meaning of each argument.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

type F32 = Float32Array;
type F32OrNull = Float32Array | null;
/** fp32 values, or bf16 values in a Uint16Array (only where bf16 matmuls are native) */
type F32OrBf16 = Float32Array | Uint16Array;

export interface NativeAddon {
  setThreads(n: number): void;
  getThreads(): number;
  bf16Native(): boolean;
  /** c may be bf16 only without accumulate */
  matmul(
    a: F32OrBf16,
    b: F32OrBf16,
    c: F32OrBf16,
    bias: F32OrNull,
    batch: number,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    accumulate: boolean,
    bf16: boolean,
    broadcastB: boolean,
  ): void;
  roundBf16(src: F32, dst: F32, n: number): void;
  /** dst = src rounded to bf16 (round to nearest even), as raw 16-bit values */
  toBf16(src: F32, dst: Uint16Array, n: number): void;
  /** dst = src widened from bf16 to fp32 (exact) */
  fromBf16(src: Uint16Array, dst: F32, n: number): void;
  embeddingForward(out: F32, idx: Int32Array, wte: F32, wpe: F32OrNull, b: number, t: number, c: number): void;
  embeddingBackward(
    dout: F32,
    idx: Int32Array,
    dwte: F32OrNull,
    dwpe: F32OrNull,
    b: number,
    t: number,
    c: number,
  ): void;
  /** With sum and y, the residual add runs in the same pass: sum = x + y, out = LayerNorm(sum). */
  layerNormForward(
    out: F32OrBf16,
    mean: F32,
    rstd: F32,
    x: F32,
    w: F32,
    b: F32OrNull,
    n: number,
    c: number,
    eps: number,
    sum?: F32,
    y?: F32OrBf16,
  ): void;
  /** dx += (accumulate) or = the input gradient; dw and db are added to */
  layerNormBackward(
    dx: F32,
    dw: F32OrNull,
    db: F32OrNull,
    dout: F32OrBf16,
    x: F32,
    w: F32,
    mean: F32,
    rstd: F32,
    n: number,
    c: number,
    accumulate: boolean,
  ): void;
  /** With sum and y, as layerNormForward: sum = x + y, out = RMSNorm(sum). */
  rmsNormForward(
    out: F32OrBf16,
    rstd: F32,
    x: F32,
    w: F32,
    n: number,
    c: number,
    eps: number,
    sum?: F32,
    y?: F32OrBf16,
  ): void;
  rmsNormBackward(
    dx: F32,
    dw: F32OrNull,
    dout: F32OrBf16,
    x: F32,
    w: F32,
    rstd: F32,
    n: number,
    c: number,
    accumulate: boolean,
  ): void;
  geluForward(out: F32OrBf16, x: F32OrBf16, n: number): void;
  /** dx (+)= dout * gelu'(x): accumulate false overwrites dx (a fresh gradient buffer; bf16 only so) */
  geluBackward(dx: F32OrBf16, dout: F32OrBf16, x: F32OrBf16, n: number, accumulate: boolean): void;
  swigluForward(out: F32OrBf16, gate: F32, up: F32, n: number): void;
  swigluBackward(dgate: F32, dup: F32, dout: F32, gate: F32, up: F32, n: number): void;
  rope(
    out: F32,
    x: F32,
    b: number,
    t: number,
    h: number,
    d: number,
    invFreq: F32,
    pos0: number,
    inverse: boolean,
  ): void;
  /** b may be bf16 */
  add(out: F32, a: F32, b: F32OrBf16, n: number): void;
  accumulate(dst: F32, src: F32, scale: number, n: number): void;
  scale(x: F32, s: number, n: number): void;
  /** x[0..n) = value, on all threads */
  fill(x: F32, value: number, n: number): void;
  /** dst[0..n) = src[0..n), on all threads */
  copy(dst: F32, src: F32, n: number): void;
  dropout(out: F32, x: F32, n: number, p: number, seed: number, accumulate: boolean): void;
  /** Whether the bf16 attention kernels take head dimension d (avx512_bf16, d a multiple of 16). */
  attentionBf16(d: number): boolean;
  /** out, q, k and v may be bf16 with the bf16 kernel (bf16 set and attentionBf16(d)) */
  attentionForward(
    out: F32OrBf16,
    lse: F32,
    q: F32OrBf16,
    k: F32OrBf16,
    v: F32OrBf16,
    b: number,
    t: number,
    hq: number,
    hkv: number,
    d: number,
    qStride: number,
    kvStride: number,
    scale: number,
    /** bf16 tile products where the CPU has avx512_bf16 (and D is a multiple of 16) */
    bf16: boolean,
    /** each query sees the keys up to itself (a language model); false: every key (a vision encoder) */
    causal: boolean,
  ): void;
  /** as attentionForward; dq, dk and dv bf16 only when written over (and hq = hkv for dk, dv) */
  attentionBackward(
    dq: F32OrBf16,
    dk: F32OrBf16,
    dv: F32OrBf16,
    dout: F32OrBf16,
    out: F32OrBf16,
    lse: F32,
    q: F32OrBf16,
    k: F32OrBf16,
    v: F32OrBf16,
    b: number,
    t: number,
    hq: number,
    hkv: number,
    d: number,
    qStride: number,
    kvStride: number,
    scale: number,
    bf16: boolean,
    causal: boolean,
    /** add into dq (else write over it: a fresh buffer), and likewise dk and dv */
    addQ: boolean,
    addK: boolean,
    addV: boolean,
  ): void;
  crossEntropyForward(
    losses: F32,
    lse: F32,
    /** fp32 or bf16 */
    logits: F32OrBf16,
    targets: Int32Array,
    n: number,
    v: number,
    ignoreIndex: number,
  ): number;
  crossEntropyBackward(
    /** bf16 only when written over (accumulate false) */
    dlogits: F32OrBf16,
    logits: F32OrBf16,
    lse: F32,
    targets: Int32Array,
    n: number,
    v: number,
    ignoreIndex: number,
    scale: number,
    /** false: dlogits is fresh and is written instead of added to */
    accumulate: boolean,
  ): void;
  sumSquares(x: F32, n: number): number;
  attentionCached(
    out: F32,
    q: F32,
    kcache: F32,
    vcache: F32,
    b: number,
    tn: number,
    hq: number,
    hkv: number,
    d: number,
    slots: Int32Array,
    pos: Int32Array,
    capacity: number,
    scale: number,
  ): void;
  embeddingForwardAt(
    out: F32,
    idx: Int32Array,
    positions: Int32Array,
    wte: F32,
    wpe: F32OrNull,
    n: number,
    c: number,
  ): void;
  ropeAt(out: F32, x: F32, positions: Int32Array, n: number, h: number, d: number, invFreq: F32): void;
  /** A read-only, memory-mapped view of a whole file. */
  mapFile(path: string): ArrayBuffer;
  adamwStep(
    param: F32,
    grad: F32,
    m: F32,
    v: F32,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    step: number,
    gradScale: number,
  ): void;
}

const addonPath = fileURLToPath(new URL("../../native/build/Release/llmfab_native.node", import.meta.url));

function load(): NativeAddon {
  if (!existsSync(addonPath)) {
    throw new Error(
      `llmfab: the native addon is not built (${addonPath}); run \`npm install\` or \`npm run build:native\``,
    );
  }
  return createRequire(import.meta.url)(addonPath) as NativeAddon;
}

export const native: NativeAddon = load();

/** out[batch][M][N] (+)= op(a)[M][K] · op(b)[K][N], as llm.c's matmul_forward(out, inp, weight, ...). */
export interface GemmArgs {
  /** fp32, or bf16 (a Uint16Array: rounded once as stored; not with accumulate) */
  out: F32OrBf16;
  /** fp32, or bf16 (when bf16 matmuls are native) */
  a: F32OrBf16;
  b: F32OrBf16;
  bias?: F32 | null;
  M: number;
  N: number;
  K: number;
  /** independent products stacked along the first dimension (default 1) */
  batch?: number;
  /** a is stored [K, M] */
  transA?: boolean;
  /** b is stored [N, K] */
  transB?: boolean;
  /** add into out instead of overwriting it */
  accumulate?: boolean;
  /** bf16 operands, fp32 accumulation */
  bf16?: boolean;
  /** one b for every batch entry */
  broadcastB?: boolean;
}

/** The addon's matmul with named arguments (general matrix multiply). */
export function gemm(o: GemmArgs): void {
  native.matmul(
    o.a,
    o.b,
    o.out,
    o.bias ?? null,
    o.batch ?? 1,
    o.M,
    o.N,
    o.K,
    o.transA ?? false,
    o.transB ?? false,
    o.accumulate ?? false,
    o.bf16 ?? false,
    o.broadcastB ?? false,
  );
}
