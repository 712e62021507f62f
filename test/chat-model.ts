// Tiny chat models for the server, browser and agent tests: an untrained one, and one
// fine-tuned to call a tool.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ToolSpec } from "../src/infer/chat.ts";
import { writeDirAtomic } from "../src/io/atomic.ts";
import { makeConfig } from "../src/model/config.ts";
import { modelFiles } from "../src/model/directory.ts";
import { initModel } from "../src/model/model.ts";
import { runSftCommand } from "../src/pipeline/sft.ts";
import { tokenizerFiles } from "../src/tokenizer/files.ts";
import { trainTokenizer } from "../src/tokenizer/train.ts";
import { tempDir } from "./tmp.ts";

/**
 * A tiny untrained model with a BPE tokenizer that has the chat special tokens.
 * paddedRows: embedding rows beyond the tokenizer's vocabulary, as many published models have.
 */
export async function tinyChatModel(paddedRows = 0, blockSize = 96): Promise<string> {
  const dir = tempDir("serve");
  writeFileSync(join(dir, "text.txt"), "Hello there, how are you today? I am fine, thank you. ".repeat(50));
  const { tokenizer } = await trainTokenizer({
    files: [join(dir, "text.txt")],
    vocabSize: 320,
    pattern: "gpt4",
    threads: 1,
  });
  const model = initModel(
    makeConfig({
      arch: "gpt2",
      vocabSize: tokenizer.vocabSize + paddedRows,
      blockSize,
      nLayer: 1,
      nHead: 2,
      nEmbd: 32,
    }),
    1,
  );
  const modelDir = join(dir, "model");
  writeDirAtomic(modelDir, { ...modelFiles(model), ...tokenizerFiles(tokenizer) });
  return modelDir;
}

/** Fine-tuning settings for tiny test models (a test adds model, data, mode and out). */
export const sftDefaults = {
  trainableLayers: 1,
  trainHead: false,
  loraRank: 4,
  loraAlpha: 8,
  loraDropout: 0,
  loraFa: false,
  epochs: 1,
  batchSize: 8,
  lr: 1e-2,
  seed: 3,
  warmup: 20,
  valFraction: 0,
  threads: 1,
  quiet: true,
};

/**
 * One tool-use exchange in OpenAI's fine-tuning format: "What day is it?" -> a clock call
 * with these arguments -> the clock's answer -> "It is Saturday.".
 */
export function clockExchange(clock: ToolSpec, callId: string, args: string, result = '{"weekday":"Saturday"}') {
  return {
    tools: [{ type: "function", function: clock }],
    messages: [
      { role: "user", content: "What day is it?" },
      {
        role: "assistant",
        content: null,
        tool_calls: [{ id: callId, type: "function", function: { name: "clock", arguments: args } }],
      },
      { role: "tool", tool_call_id: callId, content: result },
      { role: "assistant", content: "It is Saturday." },
    ],
  };
}

/**
 * A tiny model fine-tuned (by llmfab sft's stage, on OpenAI's fine-tuning format) on one
 * tool-use exchange until it reproduces it: asked "What day is it?" with the clock tool
 * offered, it calls the clock, and given the clock's answer (`result`) it says the weekday. A real
 * trained model for tests of the tool-calling API.
 */
export async function toolCallingModel(clock: ToolSpec, result?: string): Promise<string> {
  const base = await tinyChatModel(0, 768);
  const dir = tempDir("tools");
  const line = clockExchange(clock, "call_1", "{}", result);
  writeFileSync(join(dir, "tool-use.jsonl"), `${JSON.stringify(line)}\n`);
  const out = join(dir, "model");
  await runSftCommand({
    ...sftDefaults,
    model: base,
    data: [join(dir, "tool-use.jsonl")],
    mode: "full",
    epochs: 300,
    warmup: 10,
    batchSize: 1,
    seed: 1,
    out,
  });
  return out;
}
