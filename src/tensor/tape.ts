// The define-by-run autograd tape. Each op that produces a tensor from inputs needing
// gradients records a closure; backward() runs the closures in reverse order.
import type { Tensor } from "./tensor.ts";

type BackwardFn = () => void;

let enabled = true;
let tape: BackwardFn[] = [];
/** Op outputs recorded on the tape: intermediates, recycled once backward() is done. */
let outputs: Tensor[] = [];

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
  outputs.push(out);
}

/**
 * Backpropagates from `out` and clears the tape. Every intermediate tensor the tape
 * recorded (each op's output, `out` included) is then recycled: read values you need
 * (the loss) before calling backward(). `seed` is d(objective)/d(out): 1 for a
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
  const recorded = outputs;
  tape = [];
  outputs = [];
  for (let i = steps.length - 1; i >= 0; i--) {
    (steps[i] as BackwardFn)();
    // Every consumer of this output ran its backward earlier: its gradient is spent.
    (recorded[i] as Tensor).recycleGrad();
  }
  for (const t of recorded) t.recycle();
}

/** Forgets everything recorded (after an aborted forward pass). */
export function clearTape(): void {
  tape = [];
  outputs = [];
}
