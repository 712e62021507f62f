// Vision models: the ViT encoder and projector inside GPT-2 and Llama, against a float64
// reference (the loss, and every parameter's gradient against central finite differences).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type ModelConfig, makeConfig } from "../src/model/config.ts";
import { initModel } from "../src/model/model.ts";
import { defaultVision, patchesPerImage, pixelsPerImage, type VisionConfig } from "../src/model/vision.ts";
import { backward, crossEntropy } from "../src/tensor/index.ts";
import { relError, rng } from "./helpers.ts";
import { type RefParams, loss as refLoss, visionVectors } from "./reference/models.ts";

const TINY_VISION: VisionConfig = defaultVision({
  imageSize: 8,
  patchSize: 4,
  hidden: 8,
  layers: 2,
  heads: 2,
  intermediate: 12,
});

function checkVisionModel(config: ModelConfig, B = 2, T = 12): void {
  const vision = config.vision as VisionConfig;
  const model = initModel(config, 5);
  const r = rng(11);
  for (const t of model.params.values())
    for (let i = 0; i < t.size; i++) t.data[i] = (t.data[i] as number) * 10 + (r() - 0.5) * 0.2;
  const N = patchesPerImage(vision);
  // Two images: one in each sequence, at different offsets.
  const rows = Int32Array.from([
    ...Array.from({ length: N }, (_, i) => 2 + i),
    ...Array.from({ length: N }, (_, i) => T + 5 + i),
  ]);
  const count = 2;
  const pixels = Float32Array.from({ length: count * pixelsPerImage(vision) }, () => r() * 2 - 1);
  const idx = Int32Array.from({ length: B * T }, () => Math.floor(r() * config.vocabSize));
  const targets = Int32Array.from({ length: B * T }, (_, i) => (i === 3 ? -1 : Math.floor(r() * config.vocabSize)));

  const loss = crossEntropy(model.forward(idx, B, T, { images: { pixels, count, rows } }), targets);
  const lossValue = loss.item();
  backward(loss);

  const p: RefParams = new Map([...model.params].map(([n, t]) => [n, Float64Array.from(t.data)]));
  const px = Float64Array.from(pixels);
  const reference = () =>
    refLoss(config, p, idx, targets, B, T, { rows, vectors: visionVectors(vision, p, px, count, config.nEmbd) });
  const expected = reference();
  assert.ok(Math.abs(lossValue - expected) / expected < 1e-5, `loss ${lossValue} vs reference ${expected}`);

  const h = 1e-5;
  for (const [name, values] of p) {
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
    const grad = model.params.get(name)?.grad;
    assert.ok(grad, `${name} has no gradient`);
    const err = relError(grad, numeric);
    assert.ok(err < 1e-4, `${name}: gradient relative error ${err.toExponential(2)}`);
  }
}

describe("vision models against a float64 reference", () => {
  test("ViT (bidirectional attention) + MLP projector in GPT-2: loss and every parameter gradient", () => {
    checkVisionModel(
      makeConfig({ arch: "gpt2", vocabSize: 11, blockSize: 16, nLayer: 1, nHead: 2, nEmbd: 8, vision: TINY_VISION }),
    );
  });
  test("ViT + linear projector in Llama: loss and every parameter gradient", () => {
    checkVisionModel(
      makeConfig({
        arch: "llama",
        vocabSize: 11,
        blockSize: 16,
        nLayer: 1,
        nHead: 2,
        nEmbd: 8,
        intermediateSize: 12,
        vision: { ...TINY_VISION, projector: "linear" },
      }),
    );
  });
});
