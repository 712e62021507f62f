// Model FLOPs utilisation: achieved FLOP/s over the peak this machine actually reaches, as
// measured once per process by a short matmul probe at the precision and thread count in
// use (a nominal clock x vector width overstates or understates it: turbo, AMX, noisy
// neighbours).
import { gemm, native } from "../backend/native.ts";
import { precision } from "../tensor/precision.ts";

const measured = new Map<string, number>();
const PROBE = 1024;

/** FLOP/s of a 1024^3 matmul on `threads` threads at the current matmul precision (best of 5). */
export function peakFlops(threads: number): number {
  const bf16 = precision() === "bf16";
  const key = `${threads}:${bf16}`;
  const known = measured.get(key);
  if (known) return known;
  const previous = native.getThreads();
  native.setThreads(threads);
  const a = new Float32Array(PROBE * PROBE).fill(0.5);
  const b = new Float32Array(PROBE * PROBE).fill(0.25);
  const out = new Float32Array(PROBE * PROBE);
  let best = 0;
  for (let i = 0; i < 6; i++) {
    const t = performance.now();
    gemm({ out, a, b, M: PROBE, N: PROBE, K: PROBE, bf16 });
    const seconds = (performance.now() - t) / 1000;
    if (i > 0) best = Math.max(best, (2 * PROBE ** 3) / seconds); // the first run builds the primitive
  }
  native.setThreads(previous);
  measured.set(key, best);
  return best;
}
