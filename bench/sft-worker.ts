// Peak memory and step time of one fine-tuning mode on a benchmark configuration, in its
// own process: a few SFT steps on random token sequences with assistant-only targets.
import { native } from "../src/backend/native.ts";
import { makeConfig } from "../src/model/config.ts";
import { initModel } from "../src/model/model.ts";
import { Rng } from "../src/nn/random.ts";
import type { EncodedConversation } from "../src/posttrain/encode.ts";
import { defaultLoraTargets, runSft, type SftMode } from "../src/posttrain/sft.ts";
import { BENCH_CONFIGS, type BenchConfigName, median } from "./configs.ts";

const [name, mode, fa, threads] = process.argv.slice(2) as [BenchConfigName, SftMode, string, string];
native.setThreads(Number(threads));
const c = BENCH_CONFIGS[name];
const model = initModel(makeConfig({ arch: "gpt2", bias: false, ...c }));
const rng = new Rng(1);
// Full-length sequences, the last half as the "assistant's" tokens.
const data: EncodedConversation[] = Array.from({ length: c.batch * 4 }, () => {
  const tokens = Array.from({ length: c.blockSize }, () => rng.int(c.vocabSize));
  return { tokens, targets: tokens.map((t, i) => (i >= c.blockSize / 2 ? t : -1)) };
});
const times: number[] = [];
let last = performance.now();
const r = runSft(
  model,
  data,
  {
    mode,
    trainableLayers: 2,
    trainHead: false,
    lora: { r: 8, alpha: 16, dropout: 0, targets: defaultLoraTargets(model), fa: fa === "fa" },
    epochs: 1,
    batchSize: c.batch,
    lr: 1e-4,
    warmupIters: 1,
    weightDecay: 0,
    gradClip: 1,
    seed: 1,
  },
  () => {
    const now = performance.now();
    times.push(now - last);
    last = now;
  },
);
process.stdout.write(
  `${JSON.stringify({ peak_rss_mb: process.resourceUsage().maxRSS / 1024, ms_per_step: median(times.slice(1)), trainable_params: r.trainableParams })}\n`,
);
