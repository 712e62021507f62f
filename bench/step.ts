// The training step every speed benchmark times, as torch_gpt_bench.py runs it: forward,
// backward, gradient clipping and an AdamW step on random tokens.
import { native } from "../src/backend/native.ts";
import { makeConfig } from "../src/model/config.ts";
import { initModel, type Model } from "../src/model/model.ts";
import { trainable } from "../src/nn/parameters.ts";
import { Rng } from "../src/nn/random.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { clipScale, globalGradNorm } from "../src/optim/clip.ts";
import { backward, type Precision, setPrecision } from "../src/tensor/index.ts";
import { BENCH_CONFIGS, type BenchConfigName } from "./configs.ts";

export interface BenchTrainer {
  model: Model;
  tokens: number;
  /** one step; returns the loss */
  step(): number;
}

export function benchTrainer(name: BenchConfigName, threads: number, precision: Precision): BenchTrainer {
  const c = BENCH_CONFIGS[name];
  native.setThreads(threads);
  setPrecision(precision);
  const model = initModel(makeConfig({ arch: "gpt2", bias: false, ...c }));
  const params = trainable(model.params);
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
  const rng = new Rng(1337);
  const tokens = c.batch * c.blockSize;
  return {
    model,
    tokens,
    step() {
      const x = Int32Array.from({ length: tokens }, () => rng.int(c.vocabSize));
      const y = Int32Array.from({ length: tokens }, () => rng.int(c.vocabSize));
      const loss = model.loss(x, y, c.batch, c.blockSize);
      const value = loss.item();
      backward(loss);
      opt.step(1e-3, clipScale(globalGradNorm(params), 1));
      for (const [, p] of params) p.zeroGrad();
      return value;
    },
  };
}
