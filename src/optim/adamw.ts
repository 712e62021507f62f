// AdamW with decoupled weight decay, applied only to parameters of two or more
// dimensions (matrices and embeddings), as nanoGPT and most LLM recipes do.
import { native } from "../backend/native.ts";
import type { Tensor } from "../tensor/index.ts";

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export interface AdamWState {
  step: number;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

export class AdamW {
  readonly state: AdamWState = { step: 0, m: new Map(), v: new Map() };

  /** params: the trainable parameters only; frozen ones get no moments. */
  constructor(
    private readonly params: [string, Tensor][],
    private readonly opts: AdamWOptions,
  ) {
    for (const [name, t] of params) {
      this.state.m.set(name, new Float32Array(t.size));
      this.state.v.set(name, new Float32Array(t.size));
    }
  }

  /** One update with learning rate lr; gradScale multiplies every gradient (clipping). */
  step(lr: number, gradScale = 1): void {
    this.state.step++;
    const { beta1, beta2, eps, weightDecay } = this.opts;
    for (const [name, t] of this.params) {
      const g = t.grad;
      if (!g) continue;
      const wd = t.shape.length >= 2 ? weightDecay : 0;
      const m = this.state.m.get(name) as Float32Array;
      const v = this.state.v.get(name) as Float32Array;
      native.adamwStep(t.data, g, m, v, t.size, lr, beta1, beta2, eps, wd, this.state.step, gradScale);
    }
  }

  /** Restores moments and step count from a checkpoint; every trainable parameter must be present. */
  load(state: AdamWState, where: string): void {
    for (const [name, t] of this.params) {
      const m = state.m.get(name);
      const v = state.v.get(name);
      if (!m || !v || m.length !== t.size || v.length !== t.size) {
        throw new Error(`${where}: optimizer state for ${name} is missing or has the wrong size`);
      }
      this.state.m.set(name, m);
      this.state.v.set(name, v);
    }
    this.state.step = state.step;
  }
}
