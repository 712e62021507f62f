// Prompt optimisation by measurement, in the manner of DSPy's bootstrap few-shot random
// search: the tasks are split into train, dev and test; demonstrations are drawn from the
// train conversations the model already answers right (its own successful traces); trials
// (the default, each candidate system prompt alone, then candidates with k demonstrations)
// are scored on dev with the `eval --tasks` scorer; the best trial is then measured on test,
// which no choice has seen, beside the default prompt (no system prompt, no demonstrations).
import type { PromptFile } from "../infer/prompt-file.ts";
import type { Model } from "../model/model.ts";
import { Rng } from "../nn/random.ts";
import type { Conversation } from "../posttrain/data.ts";
import { shuffle } from "../posttrain/sft.ts";
import { answerChatTasks } from "./chat-eval.ts";
import type { ChatCodec } from "./codec.ts";

export interface OptimizeOptions {
  /** system prompts to try ("" is no system prompt) */
  candidates: string[];
  /** most demonstrations in a trial */
  shots: number;
  trials: number;
  seed: number;
  /** shares of the tasks for train and dev; the rest is test */
  split: { train: number; dev: number };
  /**
   * How many standard errors (of the paired per-task difference on dev) the best trial must
   * beat the default by to be chosen: a gain within dev's noise keeps the default.
   */
  margin: number;
  onTrial?: (trial: Trial) => void;
}

export interface Trial {
  n: number;
  system: string;
  shots: number;
  dev: number;
}

export interface OptimizeResult {
  /** the chosen prompt, with how it was chosen */
  best: PromptFile;
  trials: Trial[];
  sizes: { train: number; dev: number; test: number };
  /** test-split accuracy of the default prompt and of the chosen one */
  test: { default: number; chosen: number };
  /** dev-split accuracy of the default prompt and of the chosen one */
  dev: { default: number; chosen: number };
  /** the best trial on dev, its gain over the default and that gain's standard error */
  top: { trial: number; gain: number; standardError: number };
}

/** The items in an order drawn from rng (the same seed, the same split and trials). */
const shuffled = <T>(items: T[], rng: Rng): T[] => shuffle(items.length, rng).map((i) => items[i] as T);

/** A plain question-and-answer conversation as a demonstration; tool conversations are not. */
function demonstration(c: Conversation): { user: string; assistant: string } | null {
  if (c.tools?.length) return null;
  const turns = c.messages.filter((m) => m.role !== "system");
  const [user, assistant] = turns.slice(-2);
  if (user?.role !== "user" || assistant?.role !== "assistant") return null;
  return { user: user.content, assistant: assistant.content };
}

/** Which tasks the model gets right with the prompt. */
async function correctness(model: Model, codec: ChatCodec, tasks: Conversation[], prompt?: PromptFile) {
  return (await answerChatTasks(model, codec, tasks, { prompt })).map((a) => a.correct);
}

const mean = (xs: boolean[]) => xs.filter(Boolean).length / Math.max(1, xs.length);

/** The standard error of the mean per-task difference between two prompts' correctness. */
export function pairedStandardError(a: boolean[], b: boolean[]): number {
  const d = a.map((x, i) => Number(x) - Number(b[i]));
  const m = d.reduce((s, x) => s + x, 0) / d.length;
  const variance = d.reduce((s, x) => s + (x - m) ** 2, 0) / Math.max(1, d.length - 1);
  return Math.sqrt(variance / d.length);
}

export async function optimizePrompt(
  model: Model,
  codec: ChatCodec,
  tasks: Conversation[],
  o: OptimizeOptions,
): Promise<OptimizeResult> {
  const rng = new Rng(o.seed);
  const all = shuffled(tasks, rng);
  const nTrain = Math.round(all.length * o.split.train);
  const nDev = Math.round(all.length * o.split.dev);
  const [train, dev, test] = [all.slice(0, nTrain), all.slice(nTrain, nTrain + nDev), all.slice(nTrain + nDev)];
  if (dev.length === 0 || test.length === 0)
    throw new Error(`${tasks.length} tasks are too few to split into train, dev and test; give more`);

  // Bootstrap: the train conversations the model answers right with no prompt are the demonstrations.
  const trainAnswers = await answerChatTasks(model, codec, train);
  const solved = train.filter((_, i) => trainAnswers[i]?.correct);
  const pool = (solved.length ? solved : train).map(demonstration).filter((d) => d !== null);

  const trials: Trial[] = [];
  const prompts: PromptFile[] = [];
  const devCorrect: boolean[][] = [];
  const run = async (prompt: PromptFile) => {
    const correct = await correctness(model, codec, dev, prompt);
    const trial = { n: trials.length, system: prompt.system, shots: prompt.shots.length, dev: mean(correct) };
    trials.push(trial);
    prompts.push(prompt);
    devCorrect.push(correct);
    o.onTrial?.(trial);
  };
  // First the default, then each candidate alone, then candidates with demonstrations at random.
  const systems = [...new Set(o.candidates)].filter((c) => c !== "");
  await run({ system: "", shots: [] });
  for (const system of systems.slice(0, o.trials - 1)) await run({ system, shots: [] });
  for (let t = trials.length; t < o.trials; t++) {
    const system = o.candidates[rng.int(o.candidates.length)] ?? "";
    const k = Math.min(pool.length, rng.int(o.shots + 1));
    await run({ system, shots: shuffled(pool, rng).slice(0, k) });
  }
  // The best on dev (among equals the first), if it beats the default by more than dev's
  // noise; else the default: no gain, no change.
  const best = trials.reduce((b, t, i) => (t.dev > (trials[b] as Trial).dev ? i : b), 0);
  const standardError = pairedStandardError(devCorrect[best] as boolean[], devCorrect[0] as boolean[]);
  const gain = (trials[best] as Trial).dev - (trials[0] as Trial).dev;
  const bestIndex = gain > o.margin * standardError ? best : 0;
  const chosen = prompts[bestIndex] as PromptFile;
  const test0 = mean(await correctness(model, codec, test));
  const test1 = bestIndex === 0 ? test0 : mean(await correctness(model, codec, test, chosen));
  const result = {
    trials,
    sizes: { train: train.length, dev: dev.length, test: test.length },
    top: { trial: best, gain, standardError },
    test: { default: test0, chosen: test1 },
    dev: { default: (trials[0] as Trial).dev, chosen: (trials[bestIndex] as Trial).dev },
  };
  return {
    ...result,
    best: { ...chosen, chosen_by: { trial: bestIndex, seed: o.seed, margin: o.margin, ...result } },
  };
}
