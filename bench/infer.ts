// `npm run bench -- infer`: decode tok/s (batch 1, 200 new tokens, KV cache) and prefill
// tok/s for configs B and C, beside PyTorch's generation in the same run (nanoGPT's
// generate: greedy, recomputing the whole window every token, no cache).
import { native } from "../src/backend/native.ts";
import { Engine } from "../src/infer/engine.ts";
import { makeConfig } from "../src/model/config.ts";
import { initModel } from "../src/model/model.ts";
import { BENCH_CONFIGS, type BenchConfigName, median } from "./configs.ts";
import type { BenchRow } from "./tokenizer.ts";
import { torchAvailable, torchBest } from "./torch-ref.ts";

const NEW_TOKENS = 200;

export function inferBench(
  emit: (row: BenchRow, text: string) => void,
  configs: BenchConfigName[],
  threadList: number[],
): void {
  const haveTorch = torchAvailable();
  for (const name of configs) {
    const c = BENCH_CONFIGS[name];
    const model = initModel(makeConfig({ arch: "gpt2", bias: false, ...c }));
    const tokenizer = {
      vocabSize: model.config.vocabSize,
      stopIds: new Set<number>(),
      streamDecoder: () => ({ push: () => "", flush: () => "" }),
      tokenBytes: benchTokenBytes,
    };
    for (const threads of threadList) {
      native.setThreads(threads);
      const engine = new Engine(model, tokenizer, 1);
      engine.generate([0], { temperature: 0, maxTokens: 10 }); // warm-up
      const decode: number[] = [];
      const prefill: number[] = [];
      for (let i = 0; i < 3; i++) {
        let t = performance.now();
        // A different first token each time, so nothing is served from the cache.
        engine.generate([i + 1], { temperature: 0, maxTokens: NEW_TOKENS });
        decode.push(NEW_TOKENS / ((performance.now() - t) / 1000));
        const prompt = Array.from({ length: c.blockSize - 1 }, (_, j) => (j * 7 + i) % c.vocabSize);
        t = performance.now();
        engine.generate(prompt, { temperature: 0, maxTokens: 1 });
        prefill.push(prompt.length / ((performance.now() - t) / 1000));
      }
      const ref = haveTorch
        ? torchBest(["--config", name, "--infer", "--new_tokens", String(NEW_TOKENS)], threads, false)
        : null;
      const ours = median(decode);
      const ratio = ref ? ours / ref.tok_per_s : null;
      emit(
        {
          bench: "infer",
          metric: "decode_tok_per_s",
          config: name,
          threads,
          ours: round(ours),
          ref: ref ? round(ref.tok_per_s) : null,
          ratio: ratio && round(ratio, 2),
          ref_setting: ref?.setting ?? null,
        },
        `${name} ${threads}t decode (batch 1, ${NEW_TOKENS} tokens): ours ${ours.toFixed(1)} tok/s${ref ? ` | torch (no cache) ${ref.tok_per_s.toFixed(1)} tok/s (${ref.setting}) | ratio ${ratio?.toFixed(2)}x` : ""}`,
      );
      const constrained = constrainedDecode(engine);
      emit(
        {
          bench: "infer",
          metric: "decode_tok_per_s_json_schema",
          config: name,
          threads,
          ours: round(constrained),
          ref: round(ours),
          ratio: round(constrained / ours, 2),
          ref_setting: "ours without a schema",
        },
        `${name} ${threads}t decode with a JSON schema: ${constrained.toFixed(1)} tok/s | without ${ours.toFixed(1)} tok/s | ratio ${(constrained / ours).toFixed(2)}x (target >= 0.8)`,
      );
      emit(
        {
          bench: "infer",
          metric: "prefill_tok_per_s",
          config: name,
          threads,
          ours: round(median(prefill)),
          ref: null,
          ratio: null,
        },
        `${name} ${threads}t prefill (${c.blockSize - 1} tokens): ours ${median(prefill).toFixed(0)} tok/s`,
      );
    }
  }
}

/** 65 characters that spell JSON: the bench models' tokens are these, alone or in pairs. */
const ALPHABET = ' "{}[]:,.-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS';

function benchTokenBytes(id: number): Uint8Array {
  const n = ALPHABET.length;
  const text = id < n ? (ALPHABET[id] as string) : `${ALPHABET[id % n]}${ALPHABET[Math.floor(id / n) % n]}`;
  return new TextEncoder().encode(text);
}

const BENCH_SCHEMA = {
  type: "object",
  properties: {
    name: { type: "string" },
    age: { type: "integer" },
    tags: { type: "array", items: { type: "string" } },
  },
  required: ["name", "age", "tags"],
};

/** Decode tok/s under a JSON schema (median of 3; a generation may end early when the JSON closes). */
function constrainedDecode(engine: Engine): number {
  engine.generate([0], { temperature: 1, maxTokens: 20, seed: 9, jsonSchema: BENCH_SCHEMA }); // masks warm up
  const rates: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const r = engine.generate([i + 1], { temperature: 1, maxTokens: NEW_TOKENS, seed: i, jsonSchema: BENCH_SCHEMA });
    rates.push(r.ids.length / ((performance.now() - t) / 1000));
  }
  return median(rates);
}

function round(x: number, d = 1): number {
  return Math.round(x * 10 ** d) / 10 ** d;
}
