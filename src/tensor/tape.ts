// The define-by-run autograd tape. Each op that produces a tensor from inputs needing
// gradients records a closure; backward() runs the closures in reverse order.
import type { Tensor } from "./tensor.ts";

type BackwardFn = () => void;

let enabled = true;
let tape: BackwardFn[] = [];

export function gradEnabled(): boolean {
  return enabled;
}

/** Runs fn without recording anything: for inference and evaluation. */
export function noGrad<T>(fn: () => T): T {
  const previous = enabled;
  enabled = false;
  try {
    return fn();
  } finally {
    enabled = previous;
  }
}

/** True when an op on these inputs must be recorded. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  return enabled && inputs.some((t) => t?.requiresGrad === true);
}

/** Records the backward closure of an op whose output is `out`. */
export function record(out: Tensor, backward: BackwardFn): void {
  out.requiresGrad = true;
  tape.push(backward);
}

/**
 * Backpropagates from `out` and clears the tape. `seed` is d(objective)/d(out): 1 for a
 * scalar loss, or a full array (a vector-Jacobian product, used by gradient checks).
 */
export function backward(out: Tensor, seed: number | Float32Array = 1): void {
  if (typeof seed === "number") {
    if (out.size !== 1) throw new Error("backward() from a non-scalar tensor needs a seed gradient of its size");
    out.ensureGrad()[0] = seed;
  } else {
    out.ensureGrad().set(seed);
  }
  const steps = tape;
  tape = [];
  for (let i = steps.length - 1; i >= 0; i--) (steps[i] as BackwardFn)();
}

/** Forgets everything recorded (after an aborted forward pass). */
export function clearTape(): void {
  tape = [];
}
