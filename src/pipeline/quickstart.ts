// The quickstart pipeline (`npm start`): synthetic chat data -> tokenizer -> pretraining
// -> supervised fine-tuning -> reinforcement learning on sums and weekdays -> an evaluation table
// of the base, chat and RL models. Each stage writes its own folder under the run directory and is skipped when
// that folder is complete, so an interrupted quickstart resumes.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sotuText } from "../data/corpora.ts";
import { writeJsonLinesAtomic } from "../io/atomic.ts";
import { loadModel } from "../model/directory.ts";
import { Rng } from "../nn/random.ts";
import { type Conversation, readConversations } from "../posttrain/data.ts";
import { shuffle } from "../posttrain/sft.ts";
import { saveTokenizer } from "../tokenizer/files.ts";
import { trainTokenizer } from "../tokenizer/train.ts";
import { readPretrainConfig } from "../train/config.ts";
import { evaluateChatTasks, passAtK, type TaskScore } from "./chat-eval.ts";
import { loadChatCodec } from "./codec.ts";
import { runPretrain } from "./pretrain.ts";
import { runRlCommand } from "./rl.ts";
import { runSftCommand } from "./sft.ts";
import { chatText, heldoutPathOf, synthesizeFromSotu, writeSynthetic } from "./synth.ts";

/** How many times the chat conversations' text counts in the tokenizer's training text. */
const CHAT_WEIGHT = 8;

export interface QuickstartOptions {
  out: string;
  threads: number;
  log: (line: string) => void;
}

/** One model's scores on the held-out tasks (the same rows in every column). */
export interface ScoreColumn {
  name: string;
  scores: TaskScore[];
}

export interface QuickstartResult {
  baseModel: string;
  chatModel: string;
  rlModel: string;
  /** pass@8 on the held-out arithmetic questions: the chat model's and the RL model's */
  arithmeticPassAt8: [number, number];
  columns: ScoreColumn[];
  samples: string[];
}

export async function runQuickstart(o: QuickstartOptions): Promise<QuickstartResult> {
  const dir = (name: string) => join(o.out, name);

  const train = dir("synth.jsonl");
  const heldout = heldoutPathOf(train);
  if (!existsSync(heldout)) {
    o.log("1/6 writing synthetic conversations (identity, weekday, date, arithmetic, in-context, tool use)");
    // Arithmetic needs many distinct examples to generalise to held-out sums; its conversations are
    // short, so they cost little SFT time. Weekday questions through the clock are the tool task
    // trained here (a sixth of the conversations, each about 230 tokens with the tools listed);
    // tool-date and tool-sum need digits copied from a tool's result, which this small model does
    // not learn, and trained beside it they cost the weekday its accuracy, so they are only evaluated.
    const mix = { arithmetic: 18, "in-context": 1, "tool-weekday": 6, "tool-date": 0, "tool-sum": 0 };
    const sets = synthesizeFromSotu(10_000, 1, { mix, heldout: 560 });
    writeSynthetic(train, sets);
  }

  const tokenizerDir = dir("tokenizer");
  if (!existsSync(join(tokenizerDir, "tokenizer.json"))) {
    o.log("2/6 training a BPE tokenizer on the State of the Union corpus and the chat conversations");
    // The conversations' text (tool lists and results included), counted eight times, earns its
    // own merges: a conversation with the tools listed fits the context in fewer tokens, and
    // every weekday ("Saturday", "六") is one token, in the clock's reading and in the answer.
    const [corpus, chat] = [dir("sotu.txt"), dir("chat.txt")];
    writeFileSync(corpus, sotuText());
    writeFileSync(chat, chatText(readConversations([train])));
    const { tokenizer } = await trainTokenizer({
      files: [corpus, chat],
      weights: [1, CHAT_WEIGHT],
      vocabSize: 2048,
      pattern: "gpt4-digits", // one token per digit: sums are learned digit by digit
      threads: o.threads,
    });
    saveTokenizer(tokenizerDir, tokenizer);
  }

  o.log("3/6 pretraining the base model");
  const config = readPretrainConfig(new URL("../../configs/quickstart.yaml", import.meta.url).pathname);
  config.tokenizer = tokenizerDir;
  const resume = existsSync(join(dir("pretrain"), "model", "trainer_state.json"));
  const pre = await runPretrain({ config, out: dir("pretrain"), resume, quiet: false, threads: o.threads });

  const chatModel = dir("chat");
  if (!existsSync(join(chatModel, "model.safetensors"))) {
    o.log("4/6 supervised fine-tuning on the synthetic conversations");
    await runSftCommand({
      model: pre.modelDir,
      data: [train],
      valData: [heldout],
      valFraction: 0,
      ...FULL_FINE_TUNING,
      epochs: 6,
      warmup: 20,
      batchSize: 32,
      lr: 1e-3,
      seed: 1,
      out: chatModel,
      threads: o.threads,
    });
  }

  const rlModel = dir("rl");
  if (!existsSync(join(rlModel, "model.safetensors"))) {
    o.log("5/6 reinforcement learning (GRPO), rewarded by exact match: sums and weekday questions, then the clock's");
    const [sumsTasks, toolTasks, sumsModel] = [dir("rl-tasks.jsonl"), dir("rl-tool-tasks.jsonl"), dir("rl-sums")];
    const records = readFileSync(train, "utf8")
      .split("\n")
      .filter((line) => line.trim())
      .map((line) => JSON.parse(line) as SynthRecord);
    writeRlTasks(records, sumsTasks, ["arithmetic", "weekday"]);
    writeRlTasks(records, toolTasks, ["tool-weekday"]);
    if (!existsSync(join(sumsModel, "model.safetensors")))
      runRlCommand({ model: chatModel, tasks: [sumsTasks], out: sumsModel, ...RL, threads: o.threads });
    runRlCommand({ model: sumsModel, tasks: [toolTasks], out: rlModel, ...RL_TOOLS, threads: o.threads });
  }

  o.log("6/6 evaluating the base, chat and RL models on the held-out tasks");
  const tasks = readConversations([heldout]);
  const [base, chat, rl] = [
    await heldOutScores(pre.modelDir, tasks),
    await heldOutScores(chatModel, tasks),
    await heldOutScores(rlModel, tasks),
  ];
  const columns = [
    { name: "base", scores: base.scores },
    { name: "chat", scores: chat.scores },
    { name: "rl", scores: rl.scores },
  ];
  const arithmeticPassAt8: [number, number] = [chat.arithmeticPassAt8, rl.arithmeticPassAt8];
  return { baseModel: pre.modelDir, chatModel, rlModel, columns, arithmeticPassAt8, samples: pre.samples };
}

/**
 * RL's tasks, training conversations of the given kinds, shuffled so every step mixes them.
 * The sums come with the weekday questions answered from the system prompt's date, so that
 * learning to add does not cost the weekday; the clock's weekday questions, whose prompts
 * carry the tool list (ten times the tokens), get a shorter stage of their own.
 */
function writeRlTasks(records: SynthRecord[], out: string, kinds: string[]): void {
  const chosen = records.filter((r) => kinds.includes(r.meta?.task ?? ""));
  writeJsonLinesAtomic(
    out,
    shuffle(chosen.length, new Rng(7)).map((i) => chosen[i]),
  );
}

/** A line of the synthetic conversations file, as far as RL's task choice reads it. */
type SynthRecord = { meta?: { task?: string } };

/** SFT and RL train every weight (the freeze and LoRA settings are unused). */
const FULL_FINE_TUNING = {
  mode: "full",
  trainableLayers: 1,
  trainHead: false,
  loraRank: 8,
  loraAlpha: 16,
  loraDropout: 0,
  loraFa: false,
} as const;

/**
 * The GRPO stage's settings: groups of 8 answers to 64 questions a step, each batch used for
 * two updates, full fine-tuning. (16 questions a step, or a rate of 3e-4, raised the training
 * reward but not held-out accuracy, or cost the tool task its answers.)
 */
const RL = {
  reward: "exact",
  steps: 80,
  promptsPerStep: 64,
  group: 8,
  updates: 2,
  temperature: 1,
  maxTokens: 8,
  scaleByStd: false,
  ...FULL_FINE_TUNING,
  warmup: 10,
  lr: 1e-4,
  seed: 1,
} as const;

/** The clock's answers: 16 questions a step (each prompt about 400 tokens), 30 steps. */
const RL_TOOLS = { ...RL, steps: 30, promptsPerStep: 16 } as const;

/**
 * A model's held-out scores, with tool tasks asked twice: with the tools (through the
 * agent loop, the clock reading the task's moment) and with none, where only a guess is
 * left; and its pass@8 on the arithmetic questions. The model is loaded once for all.
 */
async function heldOutScores(
  dir: string,
  tasks: Conversation[],
): Promise<{ scores: TaskScore[]; arithmeticPassAt8: number }> {
  const [model, codec] = [loadModel(dir), loadChatCodec(dir)];
  const scores = await evaluateChatTasks(model, codec, tasks);
  const toolTasks = tasks.filter((c) => c.tools?.length);
  const without = await evaluateChatTasks(model, codec, toolTasks, { withoutTools: true });
  const overall = scores.pop() as TaskScore;
  const sums = tasks.filter((c) => c.meta?.task === "arithmetic");
  return {
    scores: [...scores, ...without.slice(0, -1).map((s) => ({ ...s, task: `${s.task} (no tool)` })), overall],
    arithmeticPassAt8: passAtK(model, codec, sums, 8, { temperature: 1, maxTokens: 8 }),
  };
}

/** The scores as a Markdown table: a row per task, a column per model. */
export function scoreTable(columns: ScoreColumn[]): string {
  const first = columns[0]?.scores ?? [];
  const width = Math.max(11, ...first.map((s) => s.task.length));
  const header = `| ${"task".padEnd(width)} | ${columns.map((c) => c.name.padStart(6)).join(" | ")} | items |`;
  const rule = `|${"-".repeat(width + 2)}|${columns.map(() => "--------").join("|")}|-------|`;
  const rows = first.map((s, i) => {
    const cells = columns.map((c) => `${(100 * (c.scores[i]?.accuracy ?? 0)).toFixed(1).padStart(5)}%`);
    return `| ${s.task.padEnd(width)} | ${cells.join(" | ")} | ${String(s.total).padStart(5)} |`;
  });
  return [header, rule, ...rows].join("\n");
}
