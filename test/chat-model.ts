// Tiny chat models for the server, browser and agent tests: an untrained one, and one
// fine-tuned to call a tool.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChatMessage, ToolSpec } from "../src/infer/chat.ts";
import { renderChat } from "../src/infer/chat.ts";
import { writeDirAtomic } from "../src/io/atomic.ts";
import { makeConfig } from "../src/model/config.ts";
import { loadModel, modelFiles } from "../src/model/directory.ts";
import { initModel } from "../src/model/model.ts";
import { loadChatCodec } from "../src/pipeline/codec.ts";
import { tokenizerFilesOf } from "../src/pipeline/sft.ts";
import type { Message } from "../src/posttrain/data.ts";
import { encodeConversation } from "../src/posttrain/encode.ts";
import { runSft } from "../src/posttrain/sft.ts";
import { tokenizerFiles } from "../src/tokenizer/files.ts";
import { trainTokenizer } from "../src/tokenizer/train.ts";

/**
 * A tiny untrained model with a BPE tokenizer that has the chat special tokens.
 * paddedRows: embedding rows beyond the tokenizer's vocabulary, as many published models have.
 */
export async function tinyChatModel(paddedRows = 0, blockSize = 96): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "llmfab-serve-"));
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

/**
 * A tiny model fine-tuned on one tool-use exchange until it reproduces it: asked "What day
 * is it?" with the clock tool offered, it calls the clock, and given the clock's answer it
 * says the weekday. A real trained model for tests of the tool-calling API.
 */
export async function toolCallingModel(clock: ToolSpec): Promise<string> {
  const base = await tinyChatModel(0, 768);
  const model = loadModel(base);
  const codec = loadChatCodec(base);
  const render = (messages: Message[], generationPrompt: boolean) =>
    codec.encode(renderChat(codec.chatTemplate, messages as ChatMessage[], generationPrompt, [clock]), true);
  const call = { id: "call_1", name: "clock", arguments: {} };
  const messages: ChatMessage[] = [
    { role: "user", content: "What day is it?" },
    { role: "assistant", content: "", toolCalls: [call] },
    { role: "tool", content: '{"weekday":"Saturday"}', toolCallId: "call_1" },
    { role: "assistant", content: "It is Saturday." },
  ];
  // The SFT reader does not take tool turns yet; the encoder only needs them rendered.
  const data = [encodeConversation({ messages: messages as unknown as Message[], source: "tool-use" }, render, 768)];
  runSft(model, data, {
    mode: "full",
    trainableLayers: 1,
    trainHead: false,
    lora: { r: 4, alpha: 8, dropout: 0, targets: [], fa: false },
    epochs: 300,
    batchSize: 1,
    lr: 1e-2,
    warmupIters: 10,
    weightDecay: 0,
    gradClip: 1,
    seed: 1,
  });
  const dir = join(mkdtempSync(join(tmpdir(), "llmfab-tools-")), "model");
  writeDirAtomic(dir, { ...modelFiles(model), ...tokenizerFilesOf(base) });
  return dir;
}
