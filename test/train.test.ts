// Pretraining: determinism, exact resume, mixed precision, and the files it leaves.

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { loadModel } from "../src/model/directory.ts";
import { runPretrain } from "../src/pipeline/pretrain.ts";
import { setPrecision } from "../src/tensor/index.ts";
import { parsePretrainConfig } from "../src/train/config.ts";
import { tempDir } from "./tmp.ts";

const corpus = readFileSync(new URL("../../shared/data/tinyshakespeare.txt", import.meta.url), "utf8").slice(0, 40_000);

function workdir(): string {
  const dir = tempDir("train");
  writeFileSync(join(dir, "corpus.txt"), corpus);
  return dir;
}

function tinyConfig(dir: string, train: Record<string, unknown> = {}, model: Record<string, unknown> = {}) {
  return parsePretrainConfig(
    {
      data: join(dir, "corpus.txt"),
      model: { n_layer: 2, n_head: 2, n_embd: 32, block_size: 32, ...model },
      train: {
        batch_size: 4,
        max_iters: 12,
        lr_decay_iters: 12,
        warmup_iters: 2,
        eval_interval: 6,
        eval_iters: 2,
        log_interval: 1,
        checkpoint_interval: 6,
        precision: "fp32",
        ...train,
      },
      sample: { count: 1, max_tokens: 20 },
    },
    "test config",
  );
}

interface Metric {
  step: number;
  loss?: number;
  val_loss?: number;
}

function metrics(out: string): Metric[] {
  return readFileSync(join(out, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Metric);
}

const losses = (out: string) => metrics(out).filter((m) => m.loss !== undefined);

async function run(dir: string, name: string, config: ReturnType<typeof tinyConfig>, resume = false) {
  return runPretrain({ config, out: join(dir, name), resume, quiet: true, threads: 2 });
}

describe("pretrain", () => {
  test("the same seed and threads give the same losses", async () => {
    const dir = workdir();
    const a = await run(dir, "a", tinyConfig(dir));
    const b = await run(dir, "b", tinyConfig(dir));
    assert.deepEqual(
      losses(join(dir, "a")).map((m) => m.loss),
      losses(join(dir, "b")).map((m) => m.loss),
    );
    assert.equal(a.valLoss, b.valLoss);
    assert.ok(a.valLoss < Math.log(65), `the model learned something (val loss ${a.valLoss})`);
  });

  test("a resumed run's losses equal an uninterrupted run's", async () => {
    const dir = workdir();
    const full = await run(dir, "full", tinyConfig(dir));
    // Stop after 6 steps (the checkpoint), then resume to 12 with the same schedule.
    await run(dir, "split", tinyConfig(dir, { max_iters: 6 }));
    const resumed = await run(dir, "split", tinyConfig(dir), true);
    assert.deepEqual(
      losses(join(dir, "split")).map((m) => [m.step, m.loss]),
      losses(join(dir, "full")).map((m) => [m.step, m.loss]),
    );
    assert.equal(resumed.valLoss, full.valLoss);
    assert.equal(resumed.steps, 12);
  });

  test("grad_accum 2 equals a batch twice the size", async () => {
    const dir = workdir();
    await run(dir, "accum", tinyConfig(dir, { batch_size: 4, grad_accum: 2 }));
    await run(dir, "whole", tinyConfig(dir, { batch_size: 8, grad_accum: 1 }));
    const [accum, whole] = [losses(join(dir, "accum")), losses(join(dir, "whole"))];
    assert.equal(accum.length, whole.length);
    for (const [i, m] of accum.entries()) {
      const w = whole[i]?.loss as number;
      assert.ok(Math.abs((m.loss as number) - w) < 1e-4 * w, `step ${m.step}: ${m.loss} vs ${w}`);
    }
  });

  test("the run directory holds a loadable Hugging Face model directory", async () => {
    const dir = workdir();
    const r = await run(dir, "out", tinyConfig(dir));
    const model = loadModel(r.modelDir);
    const config = JSON.parse(readFileSync(join(r.modelDir, "config.json"), "utf8"));
    assert.equal(config.model_type, "gpt2");
    assert.equal(config.n_embd, 32);
    assert.equal(model.config.bias, false);
    assert.equal(r.samples.length, 1);
  });

  test("Llama trains too", async () => {
    const dir = workdir();
    const r = await run(dir, "llama", tinyConfig(dir, {}, { arch: "llama", n_head: 4, n_kv_head: 2 }));
    assert.ok(Number.isFinite(r.valLoss) && r.valLoss < Math.log(65));
  });

  test("bf16 matmuls track the fp32 loss curve", async () => {
    const dir = workdir();
    const steps = { max_iters: 30, lr_decay_iters: 30, eval_interval: 30, checkpoint_interval: 30 };
    await run(dir, "fp32", tinyConfig(dir, { ...steps, precision: "fp32" }));
    await run(dir, "bf16", tinyConfig(dir, { ...steps, precision: "bf16" }));
    setPrecision("fp32");
    const a = losses(join(dir, "fp32"));
    const b = losses(join(dir, "bf16"));
    const worst = Math.max(...a.map((m, i) => Math.abs((m.loss as number) - (b[i]?.loss as number))));
    assert.ok(worst < 0.05, `bf16 loss differs from fp32 by up to ${worst}`);
    assert.notDeepEqual(
      a.map((m) => m.loss),
      b.map((m) => m.loss),
      "bf16 actually changed the arithmetic",
    );
  });
});
