// Open models' architectures as the Hub ships them: a tiny random model per family,
// written in the exact tensor names and config.json fields of the released models,
// loaded by llmfab, against an independent float64 forward pass of that architecture.

import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { loadModel, readModelConfig } from "../src/model/directory.ts";
import { noGrad } from "../src/tensor/index.ts";
import { HUB_CONFIGS, writeHubModel } from "./hub-models.ts";
import { logits as referenceLogits } from "./reference/models.ts";
import { tempDir } from "./tmp.ts";

function tmp(): string {
  return tempDir("arch");
}

/** Largest logit difference relative to the largest logit. */
function relativeMaxError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs((a[i] as number) - (b[i] as number)));
    scale = Math.max(scale, Math.abs(b[i] as number));
  }
  return diff / scale;
}

describe("open model architectures against a float64 reference", () => {
  const B = 2;
  const T = 20;
  const cases: [string, { dtype?: "F32" | "BF16"; shards?: number }][] = [
    ["smollm2", {}],
    ["llama3.2", { dtype: "BF16" }],
    ["tinyllama", { shards: 3 }],
    ["mistral", {}],
    ["qwen2.5", { dtype: "BF16", shards: 2 }],
    ["qwen3", {}],
  ];
  for (const [name, o] of cases) {
    test(`${name}: logits to 1e-4`, () => {
      const dir = tmp();
      const weights = writeHubModel(dir, HUB_CONFIGS[name] as Record<string, unknown>, { ...o, seed: name.length });
      const model = loadModel(dir);
      const idx = Int32Array.from({ length: B * T }, (_, i) => (i * 13 + 5) % 32);
      const ours = noGrad(() => model.forward(idx, B, T).data);
      const expected = referenceLogits(model.config, weights, idx, B, T);
      const err = relativeMaxError(ours, expected);
      assert.ok(err < 1e-4, `${name}: logits differ by ${err.toExponential(2)} of the largest`);
    });
  }

  test("Mistral's sliding window caps the context; Qwen's unused window does not", () => {
    const dir = tmp();
    writeHubModel(dir, HUB_CONFIGS.mistral as Record<string, unknown>);
    assert.equal(readModelConfig(dir).blockSize, 32);
    writeHubModel(dir, HUB_CONFIGS["qwen2.5"] as Record<string, unknown>);
    assert.equal(readModelConfig(dir).blockSize, 64);
  });

  test("unsupported architectures and options are errors naming the file and the field", () => {
    const dir = tmp();
    const write = (patch: Record<string, unknown>) =>
      writeFileSync(join(dir, "config.json"), JSON.stringify({ ...HUB_CONFIGS.smollm2, ...patch }));
    write({ model_type: "falcon" });
    assert.throws(() => readModelConfig(dir), /config\.json: model_type "falcon" is not supported \(gpt2, llama/);
    write({ hidden_act: "gelu" });
    assert.throws(() => readModelConfig(dir), /config\.json: hidden_act "gelu" is not supported/);
    write({ rope_scaling: { rope_type: "yarn", factor: 4 } });
    assert.throws(() => readModelConfig(dir), /config\.json: rope_scaling\.rope_type "yarn" is not supported/);
    write({ num_hidden_layers: "two" });
    assert.throws(() => readModelConfig(dir), /config\.json: invalid Llama config: num_hidden_layers/);
  });

  test("sharded weights: a shard missing, or a tensor not where the index says, names the index", () => {
    const dir = tmp();
    writeHubModel(dir, HUB_CONFIGS.tinyllama as Record<string, unknown>, { shards: 2 });
    const index = JSON.parse(readFileSync(join(dir, "model.safetensors.index.json"), "utf8"));
    index.weight_map["model.extra.weight"] = "model-00001-of-00002.safetensors";
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify(index));
    assert.throws(() => loadModel(dir), /index\.json: weight_map puts model\.extra\.weight in model-00001-of-00002/);
    rmSync(join(dir, "model-00002-of-00002.safetensors"));
    assert.throws(
      () => loadModel(dir),
      /index\.json: weight_map names model-00002-of-00002\.safetensors, which is missing/,
    );
  });
});
