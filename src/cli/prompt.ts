// `llmfab prompt optimize`: a system prompt and demonstrations chosen by measured accuracy.
import type { Command } from "commander";
import { modelDirArg, numberArg } from "./options.ts";

interface OptimizeFlags {
  model: string;
  tasks: string;
  candidates?: string;
  shots: number;
  trials: number;
  seed: number;
  margin: number;
  out: string;
}

/** Tried when no --candidates file is given ("" is no system prompt at all). */
export const DEFAULT_CANDIDATES = [
  "",
  "You are a helpful assistant.",
  "Answer with the answer only.",
  "Answer the question exactly and briefly.",
];

/** A candidates file: a JSON array of strings, or one system prompt per line. */
async function readCandidates(path: string): Promise<string[]> {
  const { readFileSync } = await import("node:fs");
  const text = readFileSync(path, "utf8");
  if (path.endsWith(".json")) {
    const value: unknown = JSON.parse(text);
    if (!Array.isArray(value) || !value.every((v) => typeof v === "string"))
      throw new Error(`${path}: expected a JSON array of system prompts (strings)`);
    return value;
  }
  const lines = text.split("\n").map((l) => l.trim());
  const candidates = lines.filter((l) => l !== "");
  if (candidates.length === 0) throw new Error(`${path}: no system prompts in it (one per line)`);
  return candidates;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function registerPromptCommands(program: Command): void {
  const prompt = program.command("prompt").description("prompts chosen by measurement");
  prompt
    .command("optimize")
    .description(
      "choose a system prompt and few-shot demonstrations by accuracy on a dev split; report it on a test split",
    )
    .requiredOption("--model <dir>", "model directory (or LoRA adapter directory)", modelDirArg)
    .requiredOption(
      "--tasks <file>",
      "chat tasks JSONL (as llmfab eval --tasks reads), split 40/30/30 into train/dev/test",
    )
    .option("--candidates <file>", "system prompts to try: one per line, or a JSON array (default: a few general ones)")
    .option("--shots <k>", "most demonstrations in a prompt", numberArg("heldout"), 4)
    .option(
      "--trials <n>",
      "prompts tried: the default (no system prompt, no demonstrations), each candidate alone, then candidates with demonstrations",
      numberArg("steps"),
      12,
    )
    .option("--seed <n>", "seed of the split and the trials", numberArg("seed"), 1)
    .option(
      "--margin <se>",
      "standard errors (of the paired difference on dev) the best prompt must beat the default by",
      numberArg("margin"),
      1,
    )
    .requiredOption("--out <file>", "where the chosen prompt goes (PROMPT.json, for --prompt in chat, serve and eval)")
    .action(async (o: OptimizeFlags) => {
      const { loadAnyModel } = await import("../model/peft.ts");
      const { loadChatCodec } = await import("../pipeline/codec.ts");
      const { readConversations } = await import("../posttrain/data.ts");
      const { optimizePrompt } = await import("../pipeline/prompt-optimize.ts");
      const { writeFileAtomic } = await import("../io/atomic.ts");
      const candidates = o.candidates ? await readCandidates(o.candidates) : DEFAULT_CANDIDATES;
      console.log("trial  shots  dev acc  system prompt");
      const r = await optimizePrompt(loadAnyModel(o.model), loadChatCodec(o.model), readConversations([o.tasks]), {
        candidates,
        shots: o.shots,
        trials: o.trials,
        seed: o.seed,
        split: { train: 0.4, dev: 0.3 },
        margin: o.margin,
        onTrial: (t) =>
          console.log(
            `${String(t.n).padStart(5)}  ${String(t.shots).padStart(5)}  ${pct(t.dev).padStart(7)}  ${JSON.stringify(t.system)}`,
          ),
      });
      writeFileAtomic(o.out, `${JSON.stringify(r.best, null, 2)}\n`);
      const chosen = (r.best.chosen_by as { trial: number }).trial;
      const { trial, gain, standardError } = r.top;
      const why =
        chosen === trial
          ? `the best on dev, ${(100 * gain).toFixed(1)} points above the default (standard error ${(100 * standardError).toFixed(1)})`
          : `the default kept: the best on dev, trial ${trial}, was ${(100 * gain).toFixed(1)} points above it, within ${o.margin} standard error(s) of ${(100 * standardError).toFixed(1)}`;
      console.log(
        `chosen: trial ${chosen}, ${why} (${r.sizes.train} train, ${r.sizes.dev} dev, ${r.sizes.test} test tasks)\n` +
          `dev:  default ${pct(r.dev.default)}, chosen ${pct(r.dev.chosen)}\n` +
          `test: default ${pct(r.test.default)}, chosen ${pct(r.test.chosen)}\nwrote ${o.out}`,
      );
    });
}
