import { native } from "../backend/native.ts";
import type { Tensor } from "../tensor/index.ts";

/** The L2 norm of all gradients together. */
export function globalGradNorm(params: [string, Tensor][]): number {
  let sum = 0;
  for (const [, t] of params) if (t.grad) sum += native.sumSquares(t.grad, t.size);
  return Math.sqrt(sum);
}

/** The factor that brings the global norm down to maxNorm (1 when already below, or no clipping). */
export function clipScale(norm: number, maxNorm: number): number {
  return maxNorm > 0 && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
}
