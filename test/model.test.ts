// GPT-2 and Llama forward + backward on tiny models against a float64 reference:
// the loss, and every parameter's gradient against central finite differences.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type ModelConfig, makeConfig } from "../src/model/config.ts";
import { initModel } from "../src/model/model.ts";
import { backward, crossEntropy, noGrad } from "../src/tensor/index.ts";
import { assertParameterGradients, rng } from "./helpers.ts";
import { type RefParams, loss as refLoss } from "./reference/models.ts";

function checkModel(config: ModelConfig, B = 2, T = 6): void {
  const model = initModel(config, 7);
  // Larger-than-init weights so every path carries signal; a randomised LayerNorm/RMSNorm gain.
  const r = rng(3);
  for (const t of model.params.values())
    for (let i = 0; i < t.size; i++) t.data[i] = (t.data[i] as number) * 10 + (r() - 0.5) * 0.2;
  const idx = Int32Array.from({ length: B * T }, () => Math.floor(r() * config.vocabSize));
  const targets = Int32Array.from({ length: B * T }, (_, i) => (i === 3 ? -1 : Math.floor(r() * config.vocabSize)));

  // The logits' loss (what inference and the preference losses read) and the fused head loss
  // training runs: the same value; the gradients checked are the fused loss's.
  const viaLogits = noGrad(() => crossEntropy(model.forward(idx, B, T), targets).item());
  const loss = model.loss(idx, targets, B, T);
  const lossValue = loss.item();
  assert.ok(Math.abs(lossValue - viaLogits) / viaLogits < 1e-6, `fused loss ${lossValue} vs ${viaLogits}`);
  backward(loss);

  const p: RefParams = new Map([...model.params].map(([n, t]) => [n, Float64Array.from(t.data)]));
  const expected = refLoss(config, p, idx, targets, B, T);
  assert.ok(Math.abs(lossValue - expected) / expected < 1e-5, `loss ${lossValue} vs reference ${expected}`);

  assertParameterGradients(model.params, p, () => refLoss(config, p, idx, targets, B, T));
}

describe("models against a float64 reference", () => {
  test("GPT-2 (biases, tied head) loss and every parameter gradient", () => {
    checkModel(makeConfig({ arch: "gpt2", vocabSize: 11, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 8 }));
  });
  test("GPT-2 without biases, untied head", () => {
    checkModel(
      makeConfig({
        arch: "gpt2",
        vocabSize: 11,
        blockSize: 8,
        nLayer: 1,
        nHead: 2,
        nEmbd: 8,
        bias: false,
        tieEmbeddings: false,
      }),
    );
  });
  // T = 100 runs attention over two 64-row tiles (the second partial): the online-softmax rescale between tiles.
  test("GPT-2 and Llama at T=100, across attention tiles", () => {
    const shape = { vocabSize: 7, blockSize: 100, nLayer: 1, nHead: 2, nEmbd: 8 };
    checkModel(makeConfig({ arch: "gpt2", ...shape }), 1, 100);
    checkModel(makeConfig({ arch: "llama", ...shape, nHead: 4, nKvHead: 2, intermediateSize: 8 }), 1, 100);
  });
  test("Llama (grouped-query attention, untied head) loss and every parameter gradient", () => {
    checkModel(
      makeConfig({
        arch: "llama",
        vocabSize: 11,
        blockSize: 8,
        nLayer: 2,
        nHead: 4,
        nKvHead: 2,
        nEmbd: 16,
        intermediateSize: 24,
      }),
    );
  });
  test("Qwen2 (q/k/v biases) and Qwen3 (per-head q/k RMSNorm, head_dim != n_embd / n_head)", () => {
    const shape = { vocabSize: 11, blockSize: 8, nLayer: 1, nHead: 4, nKvHead: 2, nEmbd: 16, intermediateSize: 24 };
    checkModel(makeConfig({ arch: "qwen2", ...shape, qkvBias: true }));
    checkModel(makeConfig({ arch: "qwen3", ...shape, qkNorm: true, headDim: 6 }));
  });
  test("Llama 3.1 RoPE scaling", () => {
    const ropeScaling = {
      type: "llama3" as const,
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositions: 64,
    };
    // head_dim 8: wavelengths 6.3 (kept), 63 (blended), 628 and 6283 (divided by the factor)
    const shape = { vocabSize: 11, blockSize: 8, nLayer: 1, nHead: 2, nEmbd: 16, intermediateSize: 24 };
    checkModel(makeConfig({ arch: "llama", ...shape, ropeScaling }));
  });
});
