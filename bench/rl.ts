// `npm run bench -- rl`: one GRPO step's two halves on config C — sampling (4 prompts x 8
// answers of 64 tokens, batched by the engine) and training (forward and backward over the
// 32 prompt + answer sequences, optimizer step) — in tokens per second. The reward (an
// answer's first letter) only has to split each group so that every step trains.
import { native } from "../src/backend/native.ts";
import { makeConfig } from "../src/model/config.ts";
import { initModel } from "../src/model/model.ts";
import { runGrpo } from "../src/posttrain/grpo.ts";
import { BENCH_CONFIGS, median } from "./configs.ts";
import type { BenchRow } from "./tokenizer.ts";

export function rlBench(emit: (row: BenchRow, text: string) => void, threadList: number[]): void {
  const c = BENCH_CONFIGS.C;
  const model = initModel(makeConfig({ arch: "gpt2", bias: false, ...c }));
  const letters = {
    vocabSize: c.vocabSize,
    stopIds: new Set<number>(),
    streamDecoder: () => ({
      push: (ids: number[]) => ids.map((i) => String.fromCharCode(97 + (i % 26))).join(""),
      flush: () => "",
    }),
  };
  const tasks = Array.from({ length: 4 }, (_, p) => ({
    prompt: Array.from({ length: 32 }, (_, i) => (i * 31 + p * 7) % c.vocabSize),
    expected: "",
    source: `prompt ${p}`,
  }));
  for (const threads of threadList) {
    native.setThreads(threads);
    const sampling: number[] = [];
    const training: number[] = [];
    runGrpo(
      model,
      letters,
      tasks,
      {
        mode: "full",
        trainableLayers: 1,
        trainHead: false,
        lora: { r: 8, alpha: 16, dropout: 0, targets: [], fa: false },
        lr: 1e-5,
        warmupIters: 1,
        weightDecay: 0,
        gradClip: 1,
        seed: 1,
        steps: 4,
        promptsPerStep: 4,
        group: 8,
        temperature: 1,
        maxTokens: 64,
        reward: (a) => (a.charCodeAt(0) % 2 === 0 ? 1 : 0),
        scaleByStd: false,
        updates: 1,
        clip: 0.2,
        klBeta: 0,
      },
      (s) => {
        if (s.step === 0) return; // warm-up
        sampling.push(s.sampleTokPerSec);
        if (s.trainTokPerSec > 0) training.push(s.trainTokPerSec);
      },
    );
    const [sample, train] = [median(sampling), median(training)];
    emit(
      {
        bench: "rl",
        metric: "grpo_sample_tok_per_s",
        config: "C",
        threads,
        ours: Math.round(sample),
        ref: null,
        ratio: null,
      },
      `C ${threads}t GRPO step: sampling ${sample.toFixed(0)} tok/s (32 answers of 64 tokens, batched) | training ${train.toFixed(0)} tok/s`,
    );
    emit(
      {
        bench: "rl",
        metric: "grpo_train_tok_per_s",
        config: "C",
        threads,
        ours: Math.round(train),
        ref: null,
        ratio: null,
      },
      "",
    );
  }
}
