// AdamW, the schedule, clipping and frozen parameters, against plain float64 formulas.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { makeConfig } from "../src/model/config.ts";
import { initModel } from "../src/model/model.ts";
import { freezeExcept, trainable } from "../src/nn/parameters.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { clipScale, globalGradNorm } from "../src/optim/clip.ts";
import { learningRate } from "../src/optim/schedule.ts";
import { backward, crossEntropy, Tensor } from "../src/tensor/index.ts";
import { assertClose, randn } from "./helpers.ts";

describe("AdamW", () => {
  test("matches torch.optim.AdamW's update over several steps (float64 reference)", () => {
    const n = 50;
    const w0 = randn(n, 1);
    const grads = [randn(n, 2), randn(n, 3), randn(n, 4)];
    const p = new Tensor(Float32Array.from(w0), [5, 10], true);
    const opt = new AdamW([["w", p]], { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
    const [lr, scale] = [1e-2, 0.5];
    const w = Float64Array.from(p.data);
    const m = new Float64Array(n);
    const v = new Float64Array(n);
    grads.forEach((g, k) => {
      p.ensureGrad().set(Float32Array.from(g));
      opt.step(lr, scale);
      const t = k + 1;
      for (let i = 0; i < n; i++) {
        const gi = (g[i] as number) * scale;
        m[i] = 0.9 * (m[i] as number) + 0.1 * gi;
        v[i] = 0.99 * (v[i] as number) + 0.01 * gi * gi;
        w[i] = (w[i] as number) * (1 - lr * 0.1);
        w[i] =
          (w[i] as number) -
          (lr * ((m[i] as number) / (1 - 0.9 ** t))) / (Math.sqrt((v[i] as number) / (1 - 0.99 ** t)) + 1e-8);
      }
    });
    assertClose(p.data, w, 1e-5, "AdamW");
  });

  test("no weight decay on vectors (biases, norm gains)", () => {
    const p = new Tensor(new Float32Array([1, 2, 3]), [3], true);
    const opt = new AdamW([["b", p]], { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.5 });
    p.ensureGrad(); // zero gradient: only decay could move it
    opt.step(0.1);
    assert.deepEqual([...p.data], [1, 2, 3]);
  });
});

test("learning rate: linear warmup, cosine decay, floor (nanoGPT's get_lr)", () => {
  const s = { lr: 1e-3, minLr: 1e-4, warmupIters: 100, decayIters: 2000 };
  assert.equal(learningRate(0, s), 1e-3 / 101);
  assert.equal(learningRate(99, s), (1e-3 * 100) / 101);
  assert.equal(learningRate(100, s), 1e-3);
  assert.ok(Math.abs(learningRate(1050, s) - 5.5e-4) < 1e-12);
  assert.equal(learningRate(2001, s), 1e-4);
});

test("gradient clipping scales the global norm down to the limit", () => {
  const a = new Tensor(new Float32Array(2), [2], true);
  const b = new Tensor(new Float32Array(1), [1], true);
  a.ensureGrad().set([3, 0]);
  b.ensureGrad().set([4]);
  const norm = globalGradNorm([
    ["a", a],
    ["b", b],
  ]);
  assert.equal(norm, 5);
  assert.ok(Math.abs(clipScale(norm, 1) - 0.2) < 1e-6);
  assert.equal(clipScale(norm, 10), 1);
  assert.equal(clipScale(norm, 0), 1);
});

test("frozen parameters get no gradient, no optimizer state, and do not change", () => {
  const model = initModel(makeConfig({ arch: "gpt2", vocabSize: 13, blockSize: 8, nLayer: 3, nHead: 2, nEmbd: 8 }), 2);
  freezeExcept(model.params, (name) => name.startsWith("transformer.h.2.") || name.startsWith("transformer.ln_f"));
  const before = new Map([...model.params].map(([n, t]) => [n, Float32Array.from(t.data)]));
  const params = trainable(model.params);
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
  const idx = Int32Array.from({ length: 16 }, (_, i) => i % 13);
  backward(crossEntropy(model.forward(idx, 2, 8), idx));
  opt.step(1e-2);
  assert.deepEqual([...opt.state.m.keys()].sort(), params.map(([n]) => n).sort());
  for (const [name, t] of model.params) {
    const trained = name.startsWith("transformer.h.2.") || name.startsWith("transformer.ln_f");
    assert.equal(t.grad !== null, trained, `${name} gradient`);
    assert.equal(
      t.data.every((x, i) => x === before.get(name)?.[i]),
      !trained,
      `${name} changed: ${trained}`,
    );
  }
});
