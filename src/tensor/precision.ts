// Matmul precision. "bf16" runs matmuls with bfloat16 operands and fp32 accumulation
// (as PyTorch autocast does on CPU); weights, gradients and optimizer state stay fp32.
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { native } from "../backend/native.ts";

export type Precision = "fp32" | "bf16";

let current: Precision = "fp32";

export function setPrecision(p: Precision): void {
  current = p;
}

export function precision(): Precision {
  return current;
}

let nativeBf16: boolean | null = null;

/** True when the CPU has native bf16 dot products (avx512_bf16); else bf16 is emulated. Asked once. */
export function cpuHasBf16(): boolean {
  nativeBf16 ??= native.bf16Native();
  return nativeBf16;
}

/** Matmuls (and attention's tile products) run in bf16 on the CPU itself, not emulated. */
export function bf16Native(): boolean {
  return precision() === "bf16" && cpuHasBf16();
}

/** "auto" picks bf16 where the CPU runs it natively, fp32 elsewhere. */
export function resolvePrecision(p: Precision | "auto"): Precision {
  if (p !== "auto") return p;
  return cpuHasBf16() ? "bf16" : "fp32";
}

let cachedFlags: Set<string> | null = null;

/** Best-effort CPU flags (Linux only), read once. */
export function cpuFlags(): Set<string> {
  cachedFlags ??= readCpuFlags();
  return cachedFlags;
}

function readCpuFlags(): Set<string> {
  try {
    const info = readFileSync("/proc/cpuinfo", "utf8");
    const line = info.split("\n").find((l) => l.startsWith("flags"));
    return new Set(line ? line.split(":")[1]?.trim().split(/\s+/) : []);
  } catch {
    return new Set();
  }
}

/** "Intel(R) Xeon(R) ... (avx2 avx512f avx512_bf16 amx)": the CPU and the features the kernels use. */
export function cpuSummary(): string {
  const flags = cpuFlags();
  const features = ["avx2", "avx512f", "avx512_bf16", "amx_bf16"].filter((f) => flags.has(f));
  const model = cpus()[0]?.model.trim() || "unknown CPU";
  return `${model} (${features.length ? features.join(" ") : "no AVX2"})`;
}

/**
 * bf16 copies of weights that do not change while an inference engine runs: converted on
 * first use, kept by the engine (a WeakMap keyed by the fp32 data), so decoding one token
 * does not re-round every weight matrix. Only inside withFrozenWeights, and only where
 * bf16 is native.
 */
export type FrozenWeights = WeakMap<Float32Array, Uint16Array>;

let frozen: FrozenWeights | null = null;

export function withFrozenWeights<T>(cache: FrozenWeights, run: () => T): T {
  const previous = frozen;
  frozen = cache;
  try {
    return run();
  } finally {
    frozen = previous;
  }
}

/** The bf16 copy of a frozen weight, or null outside an engine's forward pass (or without native bf16). */
export function frozenBf16(weight: Float32Array): Uint16Array | null {
  if (!frozen || !bf16Native()) return null;
  let copy = frozen.get(weight);
  if (!copy) {
    copy = new Uint16Array(weight.length);
    native.toBf16(weight, copy, weight.length);
    frozen.set(weight, copy);
  }
  return copy;
}
