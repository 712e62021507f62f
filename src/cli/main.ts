#!/usr/bin/env node
// The llmfab command line. Each command is a thin layer over a library stage.
import { mkdirSync } from "node:fs";
import { cpus } from "node:os";
import { Command, InvalidArgumentError, Option } from "commander";
import { native } from "../backend/native.ts";
import { loadCorpus } from "../data/corpora.ts";
import { copyProbe, modelPredict } from "../eval/copy.ts";
import { evaluateLoss } from "../eval/loss.ts";
import { writeJsonLinesAtomic } from "../io/atomic.ts";
import { generate } from "../model/generate.ts";
import type { Model } from "../model/model.ts";
import { loadAnyModel } from "../model/peft.ts";
import { answerChatTasks, scoreAnswers } from "../pipeline/chat-eval.ts";
import { loadChatCodec, loadModelCodec } from "../pipeline/codec.ts";
import { runPretrain } from "../pipeline/pretrain.ts";
import { runQuickstart, scoreTable } from "../pipeline/quickstart.ts";
import { readConversations } from "../posttrain/data.ts";
import { type ServeOptions, startServer } from "../server/serve.ts";
import { resolvePrecision, setPrecision } from "../tensor/index.ts";
import { readPretrainConfig } from "../train/config.ts";
import { registerWeb } from "../web/routes.ts";
import { runChat } from "./chat.ts";
import { registerCorpusCommands } from "./corpus.ts";
import { registerPosttrainCommands } from "./posttrain.ts";
import { registerTokenizerCommands } from "./tokenizer.ts";

function int(name: string, min = 0) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

function num(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number`);
    return n;
  };
}

const program = new Command("llmfab")
  .description("Make your own large language model, end to end.")
  .addOption(new Option("--threads <n>", "compute threads (default: all cores)").argParser(int("--threads", 1)))
  .addOption(
    new Option("--precision <p>", "matmul precision (auto: bf16 where the CPU has avx512_bf16)").choices([
      "auto",
      "fp32",
      "bf16",
    ]),
  )
  .hook("preAction", (cmd) => {
    const { threads, precision } = cmd.opts<{ threads?: number; precision?: "auto" | "fp32" | "bf16" }>();
    native.setThreads(threads ?? cpus().length);
    setPrecision(resolvePrecision(precision ?? "auto"));
  });

function threads(): number {
  return native.getThreads();
}

program
  .command("pretrain")
  .description("pretrain a model on a text corpus (nanoGPT-style)")
  .requiredOption("--config <file>", "YAML config (see configs/)")
  .option("--data <path>", "corpus: a text file, or a built-in name (sotu, tinyshakespeare); overrides the config")
  .option("--out <dir>", "run directory (checkpoints in <dir>/model, metrics in <dir>/metrics.jsonl)", "runs/pretrain")
  .option("--resume", "continue the run in --out from its last checkpoint", false)
  .option("--json", "print one JSON line with the results at the end", false)
  .action(async (o: { config: string; data?: string; out: string; resume: boolean; json: boolean }) => {
    const config = readPretrainConfig(o.config);
    const precision = program.opts<{ precision?: "auto" | "fp32" | "bf16" }>().precision;
    if (precision) config.train.precision = precision;
    const r = await runPretrain({
      config,
      data: o.data,
      out: o.out,
      resume: o.resume,
      quiet: false,
      threads: threads(),
    });
    if (o.json) {
      const summary = {
        val_loss: r.valLoss,
        train_loss: r.trainLoss,
        steps: r.steps,
        tokens: r.tokens,
        wall_s: r.wallSeconds,
        tok_per_s: r.tokPerSec,
        out: r.modelDir,
      };
      process.stdout.write(`${JSON.stringify(summary)}\n`);
      return;
    }
    printPretrainResult(r);
  });

function printPretrainResult(r: Awaited<ReturnType<typeof runPretrain>>): void {
  console.log(`\nval loss ${r.valLoss.toFixed(4)}, train loss ${r.trainLoss.toFixed(4)} after ${r.steps} steps`);
  console.log(
    `${r.tokens.toLocaleString()} tokens in ${r.wallSeconds.toFixed(1)} s (${Math.round(r.tokPerSec)} tok/s)`,
  );
  r.samples.forEach((s, i) => {
    console.log(`\n--- sample ${i + 1} ---\n${s}`);
  });
  console.log(`\nmodel directory: ${r.modelDir}`);
}

program
  .command("eval")
  .description("mean next-token loss over a text file, exact-match accuracy on held-out chat tasks, or the copy probe")
  .requiredOption("--model <dir>", "model directory (or LoRA adapter directory)")
  .option("--data <path>", "text file (or a built-in corpus name): report the loss")
  .option("--tasks <file>", "chat JSONL (e.g. from llmfab synth): accuracy of the last assistant turn")
  .option("--answers <file>", "with --tasks: write each question, expected and generated answer as JSONL")
  .option("--copy", "with --data: accuracy on repeated windows of the text, first copy against second", false)
  .option("--json", "print the result as JSON", false)
  .action(async (o: EvalOptions) => {
    if (!o.data === !o.tasks)
      throw new Error("give exactly one of --data (loss, or with --copy the copy probe) or --tasks");
    if (o.copy && !o.data) throw new Error("--copy needs --data: the text whose windows are repeated");
    if (o.answers && !o.tasks) throw new Error("--answers needs --tasks: the conversations whose answers are written");
    const model = loadAnyModel(o.model);
    if (o.tasks) return evaluateTasks(model, o.tasks, o);
    const tokens = loadModelCodec(o.model).encode(await loadCorpus(o.data as string));
    if (o.copy) return evaluateCopy(model, tokens, o.json);
    const r = evaluateLoss(model, tokens);
    if (o.json) process.stdout.write(`${JSON.stringify(r)}\n`);
    else console.log(`loss ${r.loss.toFixed(4)} over ${r.tokens.toLocaleString()} tokens`);
  });

interface EvalOptions {
  model: string;
  data?: string;
  tasks?: string;
  answers?: string;
  copy: boolean;
  json: boolean;
}

function evaluateTasks(model: Model, tasks: string, o: EvalOptions): void {
  const answers = answerChatTasks(model, loadChatCodec(o.model), readConversations([tasks]));
  if (o.answers) writeJsonLinesAtomic(o.answers, answers);
  const scores = scoreAnswers(answers);
  if (o.json) process.stdout.write(`${JSON.stringify(scores)}\n`);
  else
    for (const s of scores)
      console.log(`${s.task.padEnd(12)} ${(100 * s.accuracy).toFixed(1).padStart(5)}%  (${s.correct}/${s.total})`);
}

function evaluateCopy(model: Model, tokens: ArrayLike<number>, json: boolean): void {
  const c = copyProbe(modelPredict(model), tokens, model.config.vocabSize, {
    length: Math.min(40, Math.floor(model.config.blockSize / 2)),
  });
  if (json) process.stdout.write(`${JSON.stringify(c)}\n`);
  else
    console.log(
      `copy probe (${c.windows} windows of ${c.length} tokens, each repeated): next-token accuracy ${(100 * c.firstCopy).toFixed(1)}% on the first copy, ${(100 * c.secondCopy).toFixed(1)}% on the second`,
    );
}

program
  .command("sample")
  .description("generate text from a model")
  .requiredOption("--model <dir>", "model directory")
  .option("--prompt <text>", "text to continue", "\n")
  .option("--max-tokens <n>", "tokens to generate", int("--max-tokens", 1), 200)
  .option("--temperature <t>", "sampling temperature (0: greedy)", num("--temperature"), 0.8)
  .option("--top-k <k>", "sample among the k most likely tokens (0: all)", int("--top-k"), 200)
  .option("--seed <n>", "random seed", int("--seed"), 1337)
  .action(
    (o: { model: string; prompt: string; maxTokens: number; temperature: number; topK: number; seed: number }) => {
      const model = loadAnyModel(o.model);
      const codec = loadModelCodec(o.model);
      const ids = generate(model, codec.encode(o.prompt), o);
      process.stdout.write(`${o.prompt}${codec.decode(ids)}\n`);
    },
  );

program
  .command("quickstart")
  .description("the whole pipeline on the built-in corpus: tokenizer, pretraining, SFT, evaluation (npm start)")
  .option("--out <dir>", "run directory", "runs/quickstart")
  .action(async (o: { out: string }) => {
    mkdirSync(o.out, { recursive: true });
    const r = await runQuickstart({ out: o.out, threads: threads(), log: (line) => console.log(`\n== ${line}`) });
    console.log(`\n--- a sample from the base model ---\n${r.samples[0] ?? ""}`);
    console.log("\nheld-out chat tasks, exact-match accuracy:\n");
    console.log(scoreTable(r.base, r.chat));
    console.log(`\nbase model: ${r.baseModel}\nchat model: ${r.chatModel}`);
    console.log(`talk to it:  npx llmfab chat --model ${r.chatModel}`);
    console.log(`or serve it: npx llmfab serve --model ${r.chatModel}`);
  });

registerCorpusCommands(program, threads);
registerTokenizerCommands(program, threads);
registerPosttrainCommands(program);

program
  .command("chat")
  .description("chat with a model in the terminal")
  .requiredOption("--model <dir>", "model directory")
  .option("--temperature <t>", "sampling temperature (0: greedy)", num("--temperature"), 0.7)
  .option("--top-p <p>", "nucleus sampling", num("--top-p"), 0.95)
  .option("--max-tokens <n>", "longest answer in tokens", int("--max-tokens", 1), 256)
  .option("--seed <n>", "random seed", int("--seed"), 0)
  .action(async (o: { model: string; temperature: number; topP: number; maxTokens: number; seed: number }) => {
    await runChat(o.model, { temperature: o.temperature, topP: o.topP, maxTokens: o.maxTokens, seed: o.seed });
  });

program
  .command("serve")
  .description("serve a model: OpenAI-compatible API, chat page and training dashboard")
  .requiredOption("--model <dir>", "model directory")
  .option("--host <host>", "address to bind", "127.0.0.1")
  .option("--port <n>", "port", int("--port"), 8080)
  .option("--api-key <key>", "require Authorization: Bearer <key> on /v1 routes")
  .option("--slots <n>", "sequences generated at once", int("--slots", 1), 4)
  .option("--max-queue <n>", "requests waiting beyond the slots before 429", int("--max-queue"), 16)
  .option("--runs <dir>", "run directories for the training dashboard", "runs")
  .action(async (o: Omit<ServeOptions, "threads" | "register"> & { runs: string }) => {
    const server = await startServer({
      ...o,
      threads: threads(),
      register: (app) => registerWeb(app, { runsDir: o.runs }),
    });
    console.log(
      `llmfab serving ${o.model} at ${server.url} (chat page: ${server.url}/, dashboard: ${server.url}/dashboard)`,
    );
    const shutdown = () => {
      console.log("shutting down: finishing in-flight requests");
      server.close().then(() => process.exit(0));
    };
    process.once("SIGINT", shutdown);
    process.once("SIGTERM", shutdown);
  });

program.showHelpAfterError();
program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`llmfab: ${e instanceof Error ? e.message : String(e)}\n`);
  if (process.env.LLMFAB_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
