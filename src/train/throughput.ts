// Model FLOPs utilisation: achieved FLOP/s over an estimate of the CPU's fp32 peak.
import { cpus } from "node:os";
import { cpuFlags } from "../tensor/precision.ts";

/** Peak fp32 FLOP/s of `threads` cores: 2 FMA pipes x vector lanes x 2 FLOPs x clock. */
export function peakFlops(threads: number): number {
  const lanes = cpuFlags().has("avx512f") ? 16 : cpuFlags().has("avx2") ? 8 : 4;
  const mhz = cpus()[0]?.speed || 3000;
  return threads * 2 * lanes * 2 * mhz * 1e6;
}
