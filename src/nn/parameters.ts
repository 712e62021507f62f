// Named parameters of a model (Hugging Face tensor names) and their initialisation.
import { Tensor } from "../tensor/index.ts";
import type { Rng } from "./random.ts";

export type Parameters = Map<string, Tensor>;

export function normalInit(shape: number[], std: number, rng: Rng): Tensor {
  const t = Tensor.zeros(shape, true);
  for (let i = 0; i < t.size; i++) t.data[i] = rng.normal() * std;
  return t;
}

export function constantInit(shape: number[], value: number): Tensor {
  const t = Tensor.zeros(shape, true);
  t.data.fill(value);
  return t;
}

export function param(params: Parameters, name: string): Tensor {
  const t = params.get(name);
  if (!t) throw new Error(`model has no parameter named ${name}`);
  return t;
}

export function countParameters(params: Parameters, filter: (name: string) => boolean = () => true): number {
  let n = 0;
  for (const [name, t] of params) if (filter(name)) n += t.size;
  return n;
}

/** Parameters that train: frozen ones (requiresGrad false) get no gradient and no optimizer state. */
export function trainable(params: Parameters): [string, Tensor][] {
  return [...params].filter(([, t]) => t.requiresGrad);
}

/** Freezes every parameter for which keep() is false. */
export function freezeExcept(params: Parameters, keep: (name: string) => boolean): void {
  for (const [name, t] of params) {
    t.requiresGrad = keep(name);
    if (!t.requiresGrad) t.freeGrad();
  }
}
