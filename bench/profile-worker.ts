// Where a training step's time goes (`npm run bench -- train --profile`): every call into
// the native addon is timed and put in a category; "other" is the rest of the step (the
// TypeScript side: the tape, allocation, bookkeeping). Matmul time includes converting
// operands it did not get in bf16 already.
import { native } from "../src/backend/native.ts";
import type { Precision } from "../src/tensor/index.ts";
import type { BenchConfigName } from "./configs.ts";
import { benchTrainer } from "./step.ts";

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

const trainer = benchTrainer(name, Number(threads), precision);
const warmup = 2;
let total = 0;
for (let i = 0; i < warmup + Number(steps); i++) {
  timing = i >= warmup;
  const t0 = performance.now();
  trainer.step();
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
