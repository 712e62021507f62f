// One training benchmark in its own process (so peak RSS is its own): forward, backward,
// gradient clipping and an AdamW step on random tokens, as torch_gpt_bench.py does.
import { nonEmbeddingParams } from "../src/model/model.ts";
import type { Precision } from "../src/tensor/index.ts";
import { BENCH_CONFIGS, type BenchConfigName, median } from "./configs.ts";
import { benchTrainer } from "./step.ts";

const [name, threads, precision, steps, warmup] = process.argv.slice(2) as [
  BenchConfigName,
  string,
  Precision,
  string,
  string,
];
const c = BENCH_CONFIGS[name];
const trainer = benchTrainer(name, Number(threads), precision);
const times: number[] = [];
let firstLoss = 0;
let lastLoss = 0;
for (let i = 0; i < Number(warmup) + Number(steps); i++) {
  const t0 = performance.now();
  lastLoss = trainer.step();
  const ms = performance.now() - t0;
  if (i === 0) firstLoss = lastLoss;
  if (i >= Number(warmup)) times.push(ms);
}
const ms = median(times);
// The README's N: every parameter but the position embeddings (the tied head counts).
const n = nonEmbeddingParams(trainer.model) + c.vocabSize * c.nEmbd;
const flopsPerToken = 6 * n + 12 * c.nLayer * c.nEmbd * c.blockSize;
process.stdout.write(
  `${JSON.stringify({
    ms_per_step: ms,
    tok_per_s: (trainer.tokens / ms) * 1000,
    gflops: (flopsPerToken * trainer.tokens) / ms / 1e6,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    loss_first: firstLoss,
    loss_last: lastLoss,
  })}\n`,
);
