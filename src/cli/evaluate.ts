// `llmfab eval` and `llmfab sample`.
import type { Command } from "commander";
import { jsonLine } from "../io/json.ts";
import type { Model } from "../model/model.ts";
import { modelDirArg, numberArg } from "./options.ts";

interface EvalFlags {
  model: string;
  data?: string;
  tasks?: string;
  answers?: string;
  copy: boolean;
  tools: boolean;
  images: boolean;
  json: boolean;
  prompt?: string;
}

interface SampleFlags {
  model: string;
  prompt: string;
  maxTokens: number;
  temperature: number;
  topK: number;
  seed: number;
}

export function registerEvalCommands(program: Command): void {
  program
    .command("eval")
    .description("loss and perplexity over a text, exact-match accuracy on held-out chat tasks, or the copy probe")
    .requiredOption("--model <dir>", "model directory (or LoRA adapter directory)", modelDirArg)
    .option("--data <path>", "text file (or a built-in corpus name): report the loss and perplexity")
    .option(
      "--tasks <file>",
      "chat JSONL (e.g. from llmfab synth): accuracy of the last assistant turn; tasks that offer tools run through the agent loop",
    )
    .option("--answers <file>", "with --tasks: write each question, expected and generated answer as JSONL")
    .option(
      "--no-tools",
      "with --tasks: ask tool tasks with no tools offered (what the model says with nothing to call)",
    )
    .option("--prompt <file>", "with --tasks: a system prompt and demonstrations to put first (llmfab prompt optimize)")
    .option("--no-images", "with --tasks: ask image tasks without their images (a text model is always asked so)")
    .option("--copy", "with --data: accuracy on repeated windows of the text, first copy against second", false)
    .option("--json", "print the result as JSON", false)
    .action(async (o: EvalFlags) => {
      if (!o.data === !o.tasks)
        throw new Error("give exactly one of --data (loss, or with --copy the copy probe) or --tasks");
      if (o.copy && !o.data) throw new Error("--copy needs --data: the text whose windows are repeated");
      if (o.prompt && !o.tasks) throw new Error("--prompt needs --tasks: the conversations it goes before");
      if (o.answers && !o.tasks)
        throw new Error("--answers needs --tasks: the conversations whose answers are written");
      const { loadAnyModel } = await import("../model/peft.ts");
      const model = loadAnyModel(o.model);
      if (o.tasks) return evaluateTasks(model, o.tasks, o);
      const { loadCorpus } = await import("../data/corpora.ts");
      const { loadModelCodec } = await import("../pipeline/codec.ts");
      const tokens = loadModelCodec(o.model).encode(await loadCorpus(o.data as string));
      if (o.copy) return evaluateCopy(model, tokens, o.json);
      const { evaluateLoss } = await import("../eval/loss.ts");
      const r = evaluateLoss(model, tokens);
      if (o.json) process.stdout.write(jsonLine(r));
      else
        console.log(
          `loss ${r.loss.toFixed(4)}, perplexity ${r.perplexity.toFixed(2)} over ${r.tokens.toLocaleString()} tokens`,
        );
    });

  program
    .command("sample")
    .description("continue a prompt with a model (stops at the end-of-text or end-of-turn token)")
    .requiredOption("--model <dir>", "model directory (or LoRA adapter directory)", modelDirArg)
    .option("--prompt <text>", "text to continue", "\n")
    .option("--max-tokens <n>", "tokens to generate", numberArg("maxTokens"), 200)
    .option("--temperature <t>", "sampling temperature (0: greedy)", numberArg("temperature"), 0.8)
    .option("--top-k <k>", "sample among the k most likely tokens (0: all)", numberArg("topK"), 200)
    .option("--seed <n>", "random seed", numberArg("seed"), 1337)
    .action(async (o: SampleFlags) => {
      const { loadAnyModel } = await import("../model/peft.ts");
      const { loadChatCodec } = await import("../pipeline/codec.ts");
      const { Engine } = await import("../infer/engine.ts");
      const { continueTokens } = await import("../infer/continue.ts");
      // The chat codec encodes plain text too, streams the answer and stops at end of text or turn.
      const codec = loadChatCodec(o.model);
      const prompt = codec.encode(o.prompt, false);
      if (prompt.length === 0) throw new Error("--prompt encodes to no tokens; give some text");
      const engine = new Engine(loadAnyModel(o.model), codec, 1);
      process.stdout.write(o.prompt);
      const options = { maxTokens: o.maxTokens, temperature: o.temperature, topK: o.topK, topP: 1, seed: o.seed };
      continueTokens(engine, prompt, options, (text) => process.stdout.write(text));
      process.stdout.write("\n");
    });
}

async function evaluateTasks(model: Model, tasks: string, o: EvalFlags): Promise<void> {
  const { answerChatTasks, scoreAnswers } = await import("../pipeline/chat-eval.ts");
  const { loadChatCodec } = await import("../pipeline/codec.ts");
  const { readConversations } = await import("../posttrain/data.ts");
  const { writeJsonLinesAtomic } = await import("../io/atomic.ts");
  const { readPromptFile } = await import("../infer/prompt-file.ts");
  const answers = await answerChatTasks(model, loadChatCodec(o.model), readConversations([tasks]), {
    withoutTools: !o.tools,
    withoutImages: !o.images,
    prompt: o.prompt ? readPromptFile(o.prompt) : undefined,
  });
  if (o.answers) writeJsonLinesAtomic(o.answers, answers);
  const scores = scoreAnswers(answers);
  if (o.json) process.stdout.write(jsonLine(scores));
  else
    for (const s of scores)
      console.log(`${s.task.padEnd(12)} ${(100 * s.accuracy).toFixed(1).padStart(5)}%  (${s.correct}/${s.total})`);
}

async function evaluateCopy(model: Model, tokens: ArrayLike<number>, json: boolean): Promise<void> {
  const { copyProbe, modelPredict } = await import("../eval/copy.ts");
  const c = copyProbe(modelPredict(model), tokens, model.config.vocabSize, {
    length: Math.min(40, Math.floor(model.config.blockSize / 2)),
  });
  if (json) process.stdout.write(jsonLine(c));
  else
    console.log(
      `copy probe (${c.windows} windows of ${c.length} tokens, each repeated): next-token accuracy ${(100 * c.firstCopy).toFixed(1)}% on the first copy, ${(100 * c.secondCopy).toFixed(1)}% on the second`,
    );
}
