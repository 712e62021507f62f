// The fine-tuning stage as `llmfab sft` runs it: model and tokenizer from a directory,
// conversations encoded with its chat template, SFT, then a model or adapter directory.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { renderChat } from "../infer/chat.ts";
import { writeDirAtomic } from "../io/atomic.ts";
import { modelFiles } from "../model/directory.ts";
import { adapterFiles, loadAnyModel } from "../model/peft.ts";
import { readConversations } from "../posttrain/data.ts";
import { encodeConversation } from "../posttrain/encode.ts";
import { defaultLoraTargets, runSft, type SftMode } from "../posttrain/sft.ts";
import { loadChatCodec } from "./codec.ts";

export const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "tokenizer.tiktoken", "char_tokenizer.json"];

/** The tokenizer files of a model directory, to carry into a derived one. */
export function tokenizerFilesOf(dir: string): Record<string, string> {
  return Object.fromEntries(
    TOKENIZER_FILES.filter((f) => existsSync(join(dir, f))).map((f) => [f, readFileSync(join(dir, f), "utf8")]),
  );
}

export function refuseExisting(out: string): void {
  if (existsSync(out) && readdirSync(out).length > 0) throw new Error(`${out} already exists; choose another --out`);
}

export interface SftCommand {
  model: string;
  data: string[];
  mode: SftMode;
  trainableLayers: number;
  trainHead: boolean;
  loraRank: number;
  loraAlpha: number;
  loraDropout: number;
  loraTargets?: string[];
  loraFa: boolean;
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  out: string;
  quiet?: boolean;
}

export function runSftCommand(o: SftCommand): {
  out: string;
  steps: number;
  finalLoss: number;
  trainableParams: number;
} {
  refuseExisting(o.out);
  const model = loadAnyModel(o.model);
  const codec = loadChatCodec(o.model);
  const render = (messages: Parameters<typeof renderChat>[1], addGenerationPrompt: boolean) =>
    codec.encode(renderChat(codec.chatTemplate, messages, addGenerationPrompt), true);
  const data = readConversations(o.data).map((c) => encodeConversation(c, render, model.config.blockSize));
  const lora = {
    r: o.loraRank,
    alpha: o.loraAlpha,
    dropout: o.loraDropout,
    targets: o.loraTargets ?? defaultLoraTargets(model.config.arch),
    fa: o.loraFa,
  };
  const every = Math.max(1, Math.floor((Math.ceil(data.length / o.batchSize) * o.epochs) / 20));
  const r = runSft(model, data, { ...o, lora, warmupIters: 20, weightDecay: 0, gradClip: 1 }, (s) => {
    if (!o.quiet && (s.step % every === 0 || s.step === s.total - 1)) {
      process.stderr.write(
        `sft step ${s.step + 1}/${s.total}: loss ${s.loss.toFixed(4)}, lr ${s.lr.toExponential(2)}\n`,
      );
    }
  });
  const files = o.mode === "lora" ? adapterFiles(model, lora, resolve(o.model)) : modelFiles(model);
  writeDirAtomic(o.out, { ...files, ...tokenizerFilesOf(o.model) });
  return { out: o.out, ...r };
}
