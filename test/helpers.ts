// Shared test helpers: seeded random inputs and the finite-difference gradient check.
import assert from "node:assert/strict";
import { backward, Tensor } from "../src/tensor/index.ts";

/** A small seeded generator (mulberry32) so every test sees the same numbers. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randn(n: number, seed: number, scale = 1): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

/** Relative error of a against b, in the max norm: max|a - b| / max|b|. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let mag = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs((a[i] as number) - (b[i] as number)));
    mag = Math.max(mag, Math.abs(b[i] as number));
  }
  return diff / Math.max(mag, 1e-12);
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const err = relError(actual, expected);
  assert.ok(err <= tol, `${what}: relative error ${err.toExponential(2)} exceeds ${tol}`);
}

export interface GradCheckCase {
  /** float64 values of every differentiable input */
  inputs: Float64Array[];
  shapes: number[][];
  /** the op under test, on float32 tensors */
  op: (xs: Tensor[]) => Tensor;
  /** the float64 reference of the same op */
  ref: (xs: Float64Array[]) => Float64Array;
  forwardTol?: number;
  gradTol?: number;
  /** finite-difference step */
  h?: number;
  /** check this many elements of each input, spread evenly over it, instead of every one */
  sample?: number;
}

/**
 * Checks an op's forward against the float64 reference and its backward against central
 * finite differences of that reference, for the objective sum(out * R), R random.
 */
export function gradCheck(name: string, c: GradCheckCase): void {
  const tensors = c.inputs.map((x, i) => new Tensor(Float32Array.from(x), c.shapes[i] as number[], true));
  // Reference values come from the float32-rounded inputs, so both see the same numbers.
  const xs = tensors.map((t) => Float64Array.from(t.data));
  const out = c.op(tensors);
  const expected = c.ref(xs);
  assertClose(out.data, expected, c.forwardTol ?? 1e-5, `${name} forward`);

  const R = randn(out.size, 99);
  backward(out, Float32Array.from(R));
  const objective = (vals: Float64Array[]) => {
    const y = c.ref(vals);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += (y[i] as number) * (R[i] as number);
    return s;
  };
  const h = c.h ?? 1e-6;
  xs.forEach((x, which) => {
    const pick = rng(7 + which);
    const at =
      c.sample && c.sample < x.length
        ? Array.from({ length: c.sample }, () => Math.floor(pick() * x.length))
        : Array.from({ length: x.length }, (_, i) => i);
    const numeric = new Float64Array(at.length);
    at.forEach((i, j) => {
      const keep = x[i] as number;
      x[i] = keep + h;
      const up = objective(xs);
      x[i] = keep - h;
      const down = objective(xs);
      x[i] = keep;
      numeric[j] = (up - down) / (2 * h);
    });
    const grad = tensors[which]?.grad ?? new Float32Array(x.length);
    const analytic = at.map((i) => grad[i] as number);
    assertClose(analytic, numeric, c.gradTol ?? 1e-3, `${name} gradient of input ${which}`);
  });
}

/**
 * Every parameter's gradient against central finite differences of a float64 reference
 * loss: `reference` reads the float64 copies in `copies`, which are nudged in place.
 */
export function assertParameterGradients(
  params: Map<string, Tensor>,
  copies: Map<string, Float64Array>,
  reference: () => number,
  tol = 1e-4,
): void {
  const h = 1e-5;
  for (const [name, values] of copies) {
    const numeric = new Float64Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const keep = values[i] as number;
      values[i] = keep + h;
      const up = reference();
      values[i] = keep - h;
      const down = reference();
      values[i] = keep;
      numeric[i] = (up - down) / (2 * h);
    }
    const grad = params.get(name)?.grad;
    assert.ok(grad, `${name} has no gradient`);
    const err = relError(grad, numeric);
    assert.ok(err < tol, `${name}: gradient relative error ${err.toExponential(2)}`);
  }
}
