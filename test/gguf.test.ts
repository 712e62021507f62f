// GGUF both ways: llmfab's export loads in the real llama.cpp (node-llama-cpp's prebuilt
// binaries) and continues a prompt greedily as llmfab does; GGUF files read back into
// model directories; broken files are clear errors.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp";
import { readGguf } from "../src/hub/gguf.ts";
import { exportGguf, importGguf } from "../src/hub/gguf-model.ts";
import { writeDirAtomic } from "../src/io/atomic.ts";
import { type ModelConfig, makeConfig } from "../src/model/config.ts";
import { loadModel, modelFiles } from "../src/model/directory.ts";
import { generate } from "../src/model/generate.ts";
import { initModel } from "../src/model/model.ts";
import { noGrad } from "../src/tensor/index.ts";
import { tokenizerFiles } from "../src/tokenizer/files.ts";
import type { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { trainTokenizer } from "../src/tokenizer/train.ts";
import { tempDir } from "./tmp.ts";

const dir = tempDir("gguf");

async function tokenizer(pattern: "gpt4" | "gpt4-digits"): Promise<Tokenizer> {
  const text = join(dir, "text.txt");
  writeFileSync(
    text,
    readFileSync(join(import.meta.dirname, "../../shared/data/tinyshakespeare.txt"), "utf8").slice(0, 60_000),
  );
  return (await trainTokenizer({ files: [text], vocabSize: 400, pattern, threads: 1 })).tokenizer;
}

/**
 * A random model whose greedy choices are clear-cut: weights larger than at init, and a
 * final norm gain that spreads the logits far apart (near-ties would let float rounding pick).
 */
function writeModel(name: string, config: ModelConfig, tok: Tokenizer): string {
  const model = initModel(config, 11);
  for (const [n, t] of model.params) {
    const scale = /^(model\.norm|transformer\.ln_f)\.weight$/.test(n) ? 30 : /norm|ln_/.test(n) ? 1 : 4;
    for (let i = 0; i < t.size; i++) t.data[i] = (t.data[i] as number) * scale;
  }
  const out = join(dir, name);
  writeDirAtomic(out, { ...modelFiles(model), ...tokenizerFiles(tok) });
  return out;
}

const shape = { blockSize: 64, nLayer: 2, nEmbd: 64, intermediateSize: 128 };

async function llamaCppGreedy(llama: Llama, path: string, prompt: number[], n: number): Promise<number[]> {
  const model = await llama.loadModel({ modelPath: path });
  try {
    // An fp32 KV cache (llama.cpp keeps fp16 by default), so an f32 model runs in f32 throughout.
    const context = await model.createContext({
      contextSize: 128,
      threads: 1,
      experimentalKvCacheKeyType: "F32",
      experimentalKvCacheValueType: "F32",
      flashAttention: false,
    });
    const out: number[] = [];
    for await (const t of context.getSequence().evaluate(prompt as never, { temperature: 0 })) {
      out.push(t as number);
      if (out.length >= n) break;
    }
    await context.dispose();
    return out;
  } finally {
    await model.dispose();
  }
}

/** libllama from node-llama-cpp's prebuilt binaries for this platform, if it has them. */
function llamaLibrary(): string | null {
  try {
    const pkg = dirname(dirname(createRequire(import.meta.url).resolve("@node-llama-cpp/linux-x64")));
    const bins = join(pkg, "bins", "linux-x64");
    const lib = readdirSync(bins).find((f) => /^libllama(\.v[\d.]+)?\.so$/.test(f));
    return lib ? join(bins, lib) : null;
  } catch {
    return null;
  }
}

function firstDivergence(a: number[], b: number[]): number {
  const i = a.findIndex((x, k) => x !== b[k]);
  return i < 0 ? a.length : i;
}

describe("GGUF", () => {
  let llama: Llama;
  let cases: [string, string][];
  before(async () => {
    llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
    const [gpt4, digits] = [await tokenizer("gpt4"), await tokenizer("gpt4-digits")];
    const rope = { type: "llama3" as const, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8 };
    cases = [
      ["gpt2", writeModel("gpt2", makeConfig({ arch: "gpt2", vocabSize: gpt4.vocabSize, nHead: 4, ...shape }), gpt4)],
      [
        "llama (GQA, llama3 RoPE scaling, padded vocabulary)",
        writeModel(
          "llama",
          makeConfig({
            arch: "llama",
            vocabSize: gpt4.vocabSize + 16,
            nHead: 4,
            nKvHead: 2,
            ropeScaling: rope,
            ...shape,
          }),
          gpt4,
        ),
      ],
      [
        "qwen2",
        writeModel(
          "qwen2",
          makeConfig({ arch: "qwen2", vocabSize: digits.vocabSize, nHead: 4, nKvHead: 2, qkvBias: true, ...shape }),
          digits,
        ),
      ],
      [
        "qwen3",
        writeModel(
          "qwen3",
          makeConfig({
            arch: "qwen3",
            vocabSize: digits.vocabSize,
            nHead: 4,
            nKvHead: 2,
            qkNorm: true,
            headDim: 32,
            ...shape,
          }),
          digits,
        ),
      ],
    ];
  });
  after(() => llama?.dispose());

  test("our f32 export continues a prompt in llama.cpp exactly as llmfab does, and reads back", async (t) => {
    for (const [label, modelDir] of cases) {
      const path = join(dir, `${label.split(" ")[0]}-f32.gguf`);
      exportGguf(modelDir, "f32", path);
      const model = loadModel(modelDir);
      const prompt = [5, 17, 42, 99, 3, 250];
      const ours = [...generate(model, Int32Array.from(prompt), { maxTokens: 32, temperature: 0, topK: 0, seed: 1 })];
      const theirs = await llamaCppGreedy(llama, path, prompt, 32);
      t.diagnostic(`${label}: llama.cpp ${theirs.slice(0, 8).join(" ")} ...`);
      assert.deepEqual(theirs, ours, `${label}: first divergence at token ${firstDivergence(theirs, ours)}`);

      const back = join(dir, `${label.split(" ")[0]}-back`);
      importGguf(path, back);
      const idx = Int32Array.from(prompt);
      const [a, b] = noGrad(() => [
        model.forward(idx, 1, idx.length).data,
        loadModel(back).forward(idx, 1, idx.length).data,
      ]);
      assert.deepEqual(b, a, `${label}: logits after the round trip`);
    }
  });

  test("q8_0 in llama.cpp against llmfab on the same quantized weights; the first divergence is reported", async (t) => {
    for (const [label, modelDir] of cases) {
      const path = join(dir, `${label.split(" ")[0]}-q8_0.gguf`);
      exportGguf(modelDir, "q8_0", path);
      const back = join(dir, `${label.split(" ")[0]}-q8-back`);
      importGguf(path, back);
      const prompt = [7, 8, 9, 120, 33];
      const ours = [
        ...generate(loadModel(back), Int32Array.from(prompt), { maxTokens: 32, temperature: 0, topK: 0, seed: 1 }),
      ];
      const theirs = await llamaCppGreedy(llama, path, prompt, 32);
      const at = firstDivergence(theirs, ours);
      t.diagnostic(`${label}: q8_0 continuations agree on ${at} of 32 tokens`);
      assert.ok(at >= 4, `${label}: q8_0 diverges at token ${at}`);
    }
  });

  test("the tokenizer travels: llama.cpp tokenizes text as llmfab does", async () => {
    const [, modelDir] = cases[1] as [string, string];
    const path = join(dir, "tok.gguf");
    exportGguf(modelDir, "f16", path);
    const model = await llama.loadModel({ modelPath: path });
    const text = "First Citizen:\nBefore we proceed any further, hear me speak. 1234 tokens!";
    const { loadChatCodec } = await import("../src/pipeline/codec.ts");
    assert.deepEqual([...model.tokenize(text, false)], loadChatCodec(modelDir).encode(text, false));
    await model.dispose();
  });

  test("a GGUF written by llama.cpp's own quantizer reads back and continues as llama.cpp does", async (t) => {
    if (process.platform !== "linux" || process.arch !== "x64")
      return t.skip("libllama is taken from the linux-x64 build");
    const lib = llamaLibrary();
    assert.ok(lib, "node-llama-cpp's linux-x64 binaries hold libllama");
    const tool = join(dir, "llama-quantize");
    const cc = spawnSync("gcc", ["-O1", "-o", tool, join(import.meta.dirname, "fixtures/llama-quantize.c"), "-ldl"]);
    assert.equal(cc.status, 0, `gcc: ${cc.stderr}`);
    const [label, modelDir] = cases[1] as [string, string];
    const f32 = join(dir, "for-llama-quantize.gguf");
    exportGguf(modelDir, "f32", f32);
    const byLlamaCpp = join(dir, "by-llama-cpp-q8_0.gguf");
    const q = spawnSync(tool, [lib, f32, byLlamaCpp, "7"], { env: { ...process.env, LD_LIBRARY_PATH: dirname(lib) } });
    assert.equal(q.status, 0, `llama_model_quantize: ${q.stderr}`);
    const file = readGguf(byLlamaCpp);
    assert.equal(file.tensors.get("blk.0.attn_q.weight")?.type, "Q8_0");
    const back = join(dir, "by-llama-cpp");
    importGguf(byLlamaCpp, back);
    const prompt = [12, 40, 7, 300];
    const ours = [
      ...generate(loadModel(back), Int32Array.from(prompt), { maxTokens: 32, temperature: 0, topK: 0, seed: 1 }),
    ];
    const theirs = await llamaCppGreedy(llama, byLlamaCpp, prompt, 32);
    const at = firstDivergence(theirs, ours);
    t.diagnostic(`${label} quantized by llama.cpp: continuations agree on ${at} of 32 tokens`);
    assert.ok(at >= 4, `diverges at token ${at}`);
    const { loadChatCodec } = await import("../src/pipeline/codec.ts");
    const text = "Before we proceed any further, hear me speak.";
    assert.deepEqual(loadChatCodec(back).encode(text, false), loadChatCodec(modelDir).encode(text, false));
    assert.equal(loadChatCodec(back).chatTemplate, loadChatCodec(modelDir).chatTemplate);
  });

  test("bad files are errors naming the file and what is wrong", () => {
    const path = join(dir, "bad.gguf");
    writeFileSync(path, Buffer.from("GGML\x03\x00\x00\x00"));
    assert.throws(() => readGguf(path), /bad\.gguf: not a valid GGUF file: bad magic "GGML"/);
    const good = readFileSync(join(dir, "gpt2-f32.gguf"));
    writeFileSync(path, good.subarray(0, 200));
    assert.throws(() => readGguf(path), /bad\.gguf: not a valid GGUF file: truncated at byte \d+/);
    // The first tensor's type field, set to a type llmfab does not read (Q4_K = 12).
    const broken = Buffer.from(good);
    const name = Buffer.from("token_embd.weight");
    const at = broken.indexOf(name) + name.length + 4 + 2 * 8;
    broken.writeUInt32LE(12, at);
    writeFileSync(path, broken);
    assert.throws(
      () => readGguf(path),
      /tensor token_embd\.weight has ggml type 12 \(F32, F16, BF16 and Q8_0 are read\)/,
    );
  });
});
