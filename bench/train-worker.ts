// One training benchmark in its own process (so peak RSS is its own): forward, backward,
// gradient clipping and an AdamW step on random tokens, as torch_gpt_bench.py does.
import { native } from "../src/backend/native.ts";
import { makeConfig } from "../src/model/config.ts";
import { initModel, nonEmbeddingParams } from "../src/model/model.ts";
import { trainable } from "../src/nn/parameters.ts";
import { Rng } from "../src/nn/random.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { clipScale, globalGradNorm } from "../src/optim/clip.ts";
import { backward, crossEntropy, type Precision, setPrecision } from "../src/tensor/index.ts";
import { BENCH_CONFIGS, type BenchConfigName, median } from "./configs.ts";

const [name, threads, precision, steps, warmup] = process.argv.slice(2) as [
  BenchConfigName,
  string,
  Precision,
  string,
  string,
];
const c = BENCH_CONFIGS[name];
native.setThreads(Number(threads));
setPrecision(precision);
const model = initModel(makeConfig({ arch: "gpt2", bias: false, ...c }));
const params = trainable(model.params);
const opt = new AdamW(params, { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
const rng = new Rng(1337);
const tokens = c.batch * c.blockSize;
const times: number[] = [];
let firstLoss = 0;
let lastLoss = 0;
for (let i = 0; i < Number(warmup) + Number(steps); i++) {
  const x = Int32Array.from({ length: tokens }, () => rng.int(c.vocabSize));
  const y = Int32Array.from({ length: tokens }, () => rng.int(c.vocabSize));
  const t0 = performance.now();
  const loss = crossEntropy(model.forward(x, c.batch, c.blockSize), y);
  lastLoss = loss.item();
  backward(loss);
  opt.step(1e-3, clipScale(globalGradNorm(params), 1));
  for (const [, p] of params) p.zeroGrad();
  const ms = performance.now() - t0;
  if (i === 0) firstLoss = lastLoss;
  if (i >= Number(warmup)) times.push(ms);
}
const ms = median(times);
const flopsPerToken = 6 * nonEmbeddingParamsWithHead() + 12 * c.nLayer * c.nEmbd * c.blockSize;
process.stdout.write(
  `${JSON.stringify({
    ms_per_step: ms,
    tok_per_s: (tokens / ms) * 1000,
    gflops: (flopsPerToken * tokens) / ms / 1e6,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    loss_first: firstLoss,
    loss_last: lastLoss,
  })}\n`,
);

/** The README's N: every parameter but the position embeddings (the tied head counts). */
function nonEmbeddingParamsWithHead(): number {
  return nonEmbeddingParams(model) + c.vocabSize * c.nEmbd;
}
