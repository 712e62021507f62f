// Where a training step's time goes (`npm run bench -- train --profile`): every call into
// the native addon is timed and put in a category; "other" is the rest of the step (the
// TypeScript side: the tape, allocation, bookkeeping). Matmul time includes converting
// operands it did not get in bf16 already.
import { native } from "../src/backend/native.ts";
import { makeConfig } from "../src/model/config.ts";
import { initModel } from "../src/model/model.ts";
import { trainable } from "../src/nn/parameters.ts";
import { Rng } from "../src/nn/random.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { clipScale, globalGradNorm } from "../src/optim/clip.ts";
import { backward, crossEntropy, type Precision, setPrecision } from "../src/tensor/index.ts";
import { BENCH_CONFIGS, type BenchConfigName } from "./configs.ts";

const CATEGORIES: [RegExp, string][] = [
  [/^matmul/, "matmul"],
  [/^(roundBf16|toBf16)/, "conversions"],
  [/^attention/, "attention"],
  [/^(adamw|sumSquares|scale)/, "optimizer"],
  [/./, "elementwise"], // norms, activations, embeddings, residual adds, loss
];

const [name, threads, precision, steps, detail] = process.argv.slice(2) as [
  BenchConfigName,
  string,
  Precision,
  string,
  string?,
];
const spent = new Map<string, number>();
let timing = false;
const addon = native as unknown as Record<string, unknown>;
for (const key of Object.keys(addon)) {
  const f = addon[key];
  if (typeof f !== "function") continue;
  // With a fifth argument "functions", every addon function is its own category.
  const category = detail === "functions" ? key : (CATEGORIES.find(([re]) => re.test(key)) as [RegExp, string])[1];
  addon[key] = (...args: unknown[]) => {
    if (!timing) return (f as (...a: unknown[]) => unknown)(...args);
    const t = performance.now();
    const r = (f as (...a: unknown[]) => unknown)(...args);
    spent.set(category, (spent.get(category) ?? 0) + performance.now() - t);
    return r;
  };
}

const c = BENCH_CONFIGS[name];
native.setThreads(Number(threads));
setPrecision(precision);
const model = initModel(makeConfig({ arch: "gpt2", bias: false, ...c }));
const params = trainable(model.params);
const opt = new AdamW(params, { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
const rng = new Rng(1337);
const tokens = c.batch * c.blockSize;
const warmup = 2;
let total = 0;
for (let i = 0; i < warmup + Number(steps); i++) {
  timing = i >= warmup;
  const x = Int32Array.from({ length: tokens }, () => rng.int(c.vocabSize));
  const y = Int32Array.from({ length: tokens }, () => rng.int(c.vocabSize));
  const t0 = performance.now();
  const loss = crossEntropy(model.forward(x, c.batch, c.blockSize), y);
  loss.item();
  backward(loss);
  opt.step(1e-3, clipScale(globalGradNorm(params), 1));
  for (const [, p] of params) p.zeroGrad();
  if (timing) total += performance.now() - t0;
}
const n = Number(steps);
const inNative = [...spent.values()].reduce((a, b) => a + b, 0);
const breakdown: Record<string, number> = { step: total / n };
const categories =
  detail === "functions" ? [...spent.keys()] : ["matmul", "attention", "conversions", "elementwise", "optimizer"];
for (const category of categories) breakdown[category] = (spent.get(category) ?? 0) / n;
breakdown.other = (total - inNative) / n;
process.stdout.write(`${JSON.stringify(breakdown)}\n`);
