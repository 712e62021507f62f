// `npm run bench -- infer` rows against llama.cpp (node-llama-cpp's prebuilt binaries):
// decode tok/s at batch 1 on the same weights, the same GGUF file, the same threads.
// The model is the config's GPT with a byte-level vocabulary (llama.cpp needs a real
// tokenizer; at least 257 tokens), exported by llmfab and read back by both engines.
// llama.cpp runs as it does by default (fp16 KV cache, its choice of flash attention), in a
// process of its own so that no idle thread pool of ours competes with its threads;
// llmfab runs the GGUF's weights dequantized (it has no q8_0 kernels), at its best of fp32
// and, where the CPU has native bf16, bf16 (weights converted once for the engine).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { native } from "../src/backend/native.ts";
import type { GgufType } from "../src/hub/gguf.ts";
import { exportGguf, importGguf } from "../src/hub/gguf-model.ts";
import { Engine, type EngineTokenizer } from "../src/infer/engine.ts";
import { writeDirAtomic } from "../src/io/atomic.ts";
import { makeConfig } from "../src/model/config.ts";
import { loadModel, modelFiles } from "../src/model/directory.ts";
import { initModel, type Model } from "../src/model/model.ts";
import { cpuHasBf16, type Precision, setPrecision } from "../src/tensor/index.ts";
import { tokenizerFiles } from "../src/tokenizer/files.ts";
import { PATTERN_SOURCES } from "../src/tokenizer/patterns.ts";
import { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { BENCH_CONFIGS, type BenchConfigName, median } from "./configs.ts";
import { runWorker } from "./measure.ts";
import type { BenchRow } from "./tokenizer.ts";

const NEW_TOKENS = 200;
const TYPES: GgufType[] = ["f32", "q8_0"];

/** 256 byte tokens and an end-of-text token: the smallest vocabulary llama.cpp's BPE loads. */
function byteTokenizer(): Tokenizer {
  const ranks = new Map(Array.from({ length: 256 }, (_, b) => [String.fromCharCode(b), b] as [string, number]));
  return new Tokenizer({ pattern: PATTERN_SOURCES.gpt2, ranks, specialTokens: new Map([["<|endoftext|>", 256]]) });
}

/** The engine's view of a tokenizer, for timing: nothing stops a generation, nothing is decoded. */
function silentTokenizer(vocabSize: number): EngineTokenizer {
  return { vocabSize, stopIds: new Set<number>(), streamDecoder: () => ({ push: () => "", flush: () => "" }) };
}

/** Our precisions worth trying: fp32, and bf16 where the CPU runs it natively. */
function ourPrecisions(): Precision[] {
  return cpuHasBf16() ? ["fp32", "bf16"] : ["fp32"];
}

/** Our decode tok/s: the median of 3 greedy generations after a warm-up, at a precision. */
function ourDecode(model: Model, vocabSize: number, p: Precision): number {
  setPrecision(p);
  try {
    const engine = new Engine(model, silentTokenizer(vocabSize), 1);
    engine.generate([0], { temperature: 0, maxTokens: 10 }); // warm-up (and bf16 weights made)
    const rates: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      engine.generate([i + 1], { temperature: 0, maxTokens: NEW_TOKENS });
      rates.push(NEW_TOKENS / ((performance.now() - t) / 1000));
    }
    return median(rates);
  } finally {
    setPrecision("fp32");
  }
}

/** llama.cpp's decode tok/s, measured in a process of its own (llama-cpp-worker.ts). */
function llamaCppDecode(gguf: string, threads: number, contextSize: number): number {
  const worker = fileURLToPath(new URL("./llama-cpp-worker.ts", import.meta.url));
  const args = ["--import", "tsx", worker, gguf, String(threads), String(contextSize), String(NEW_TOKENS)];
  return runWorker<{ tok_per_s: number }>("llama.cpp bench worker", args).tok_per_s;
}

export function llamaCppInferBench(
  emit: (row: BenchRow, text: string) => void,
  configs: BenchConfigName[],
  threadList: number[],
): void {
  const dir = mkdtempSync(join(tmpdir(), "llmfab-bench-gguf-"));
  try {
    for (const name of configs) {
      const c = BENCH_CONFIGS[name];
      const vocabSize = Math.max(c.vocabSize, 257);
      const modelDir = join(dir, name);
      const model = initModel(makeConfig({ arch: "gpt2", bias: false, ...c, vocabSize }));
      writeDirAtomic(modelDir, { ...modelFiles(model), ...tokenizerFiles(byteTokenizer()) });
      for (const type of TYPES) {
        const gguf = join(dir, `${name}-${type}.gguf`);
        exportGguf(modelDir, type, gguf);
        const imported = join(dir, `${name}-${type}`);
        importGguf(gguf, imported);
        const ours = loadModel(imported);
        for (const threads of threadList) {
          native.setThreads(threads);
          const [best, o] = ourPrecisions()
            .map((p) => [p, ourDecode(ours, vocabSize, p)] as const)
            .reduce((a, b) => (b[1] > a[1] ? b : a));
          const r = llamaCppDecode(gguf, threads, c.blockSize);
          emit(
            {
              bench: "infer",
              metric: `decode_tok_per_s_vs_llama_cpp_${type}`,
              config: name,
              threads,
              ours: Math.round(o * 10) / 10,
              ref: Math.round(r * 10) / 10,
              ratio: Math.round((o / r) * 100) / 100,
              setting: best,
              ref_setting: `llama.cpp ${type} (node-llama-cpp)`,
            },
            `${name} ${threads}t decode (batch 1, ${NEW_TOKENS} tokens, vocab ${vocabSize}, GGUF ${type}): ours ${o.toFixed(1)} tok/s (${best}) | llama.cpp ${r.toFixed(1)} tok/s | ratio ${(o / r).toFixed(2)}x`,
          );
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
