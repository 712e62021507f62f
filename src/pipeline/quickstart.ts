// The quickstart pipeline (`npm start`): tokenizer -> pretraining -> synthetic chat data
// -> supervised fine-tuning -> an evaluation table of the base model against the chat
// model. Each stage writes its own folder under the run directory and is skipped when
// that folder is complete, so an interrupted quickstart resumes.
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sotuText } from "../data/corpora.ts";
import { loadModel } from "../model/directory.ts";
import { readConversations } from "../posttrain/data.ts";
import { saveTokenizer } from "../tokenizer/files.ts";
import { trainTokenizer } from "../tokenizer/train.ts";
import { readPretrainConfig } from "../train/config.ts";
import { evaluateChatTasks, type TaskScore } from "./chat-eval.ts";
import { loadChatCodec } from "./codec.ts";
import { runPretrain } from "./pretrain.ts";
import { runSftCommand } from "./sft.ts";
import { heldoutPathOf, synthesizeFromSotu, writeSynthetic } from "./synth.ts";

export interface QuickstartOptions {
  out: string;
  threads: number;
  log: (line: string) => void;
}

export interface QuickstartResult {
  baseModel: string;
  chatModel: string;
  base: TaskScore[];
  chat: TaskScore[];
  samples: string[];
}

export async function runQuickstart(o: QuickstartOptions): Promise<QuickstartResult> {
  const dir = (name: string) => join(o.out, name);

  const tokenizerDir = dir("tokenizer");
  if (!existsSync(join(tokenizerDir, "tokenizer.json"))) {
    o.log("1/5 training a BPE tokenizer on the State of the Union corpus");
    const corpus = dir("sotu.txt");
    writeFileSync(corpus, sotuText());
    const { tokenizer } = await trainTokenizer({
      files: [corpus],
      vocabSize: 2048,
      pattern: "gpt4-digits", // one token per digit: sums are learned digit by digit
      threads: o.threads,
    });
    saveTokenizer(tokenizerDir, tokenizer);
  }

  o.log("2/5 pretraining the base model");
  const config = readPretrainConfig(new URL("../../configs/quickstart.yaml", import.meta.url).pathname);
  config.tokenizer = tokenizerDir;
  const resume = existsSync(join(dir("pretrain"), "model", "trainer_state.json"));
  const pre = await runPretrain({ config, out: dir("pretrain"), resume, quiet: false, threads: o.threads });

  const train = dir("synth.jsonl");
  const heldout = heldoutPathOf(train);
  if (!existsSync(heldout)) {
    o.log("3/5 writing synthetic conversations (identity, weekday, date, arithmetic, in-context)");
    // Arithmetic needs many distinct examples to generalise to held-out sums; its conversations are
    // short, so they cost little SFT time. 10,000 conversations: 72% arithmetic.
    const sets = synthesizeFromSotu(10_000, 1, { mix: { arithmetic: 18 }, heldout: 400 });
    writeSynthetic(train, sets);
  }

  const chatModel = dir("chat");
  if (!existsSync(join(chatModel, "model.safetensors"))) {
    o.log("4/5 supervised fine-tuning on the synthetic conversations");
    runSftCommand({
      model: pre.modelDir,
      data: [train],
      valData: [heldout],
      valFraction: 0,
      mode: "full",
      trainableLayers: 1,
      trainHead: false,
      loraRank: 8,
      loraAlpha: 16,
      loraDropout: 0,
      loraFa: false,
      epochs: 6,
      warmup: 20,
      batchSize: 32,
      lr: 1e-3,
      seed: 1,
      out: chatModel,
      threads: o.threads,
    });
  }

  o.log("5/5 evaluating base and chat models on the held-out tasks");
  const tasks = readConversations([heldout]);
  const base = evaluateChatTasks(loadModel(pre.modelDir), loadChatCodec(pre.modelDir), tasks);
  const chat = evaluateChatTasks(loadModel(chatModel), loadChatCodec(chatModel), tasks);
  return { baseModel: pre.modelDir, chatModel, base, chat, samples: pre.samples };
}

export function scoreTable(base: TaskScore[], chat: TaskScore[]): string {
  const rows = base.map((b, i) => {
    const c = chat[i] as TaskScore;
    return `| ${b.task.padEnd(11)} | ${(100 * b.accuracy).toFixed(1).padStart(5)}% | ${(100 * c.accuracy).toFixed(1).padStart(5)}% | ${String(b.total).padStart(5)} |`;
  });
  return ["| task        |  base  |  chat  | items |", "|-------------|--------|--------|-------|", ...rows].join("\n");
}
