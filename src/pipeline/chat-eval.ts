// Exact-match evaluation on held-out chat tasks. Plain tasks are answered greedily in
// batches; tasks that offer tools run through the agent loop, as `llmfab chat` runs them:
// the model may call the built-in tools (the clock reads the moment the task was written
// for), reads their results and answers.
import { builtinTools, type FixedClock } from "../agent/builtin.ts";
import { agentTurn } from "../agent/loop.ts";
import type { ChatMessage } from "../infer/chat.ts";
import { Engine } from "../infer/engine.ts";
import { applyPrompt, type PromptFile } from "../infer/prompt-file.ts";
import type { Model } from "../model/model.ts";
import type { Conversation } from "../posttrain/data.ts";
import { engineGenerate } from "./agent.ts";
import type { ChatCodec } from "./codec.ts";
import { imagesOf, visionPrompt, withoutImages } from "./vision.ts";

export interface TaskScore {
  task: string;
  correct: number;
  total: number;
  accuracy: number;
}

/** One held-out conversation's reference answer and what the model generated. */
export interface TaskAnswer {
  task: string;
  /** the last user turn */
  question: string;
  expected: string;
  got: string;
  correct: boolean;
  /** tool tasks: the tools the model called, in order */
  calls?: string[];
}

export interface TaskEvalOptions {
  /** longest answer in tokens (default 32; at least 128 for answers that may call tools) */
  maxTokens?: number;
  /** tool tasks asked with no tools offered: what the model answers with nothing to call */
  withoutTools?: boolean;
  /** a system prompt and demonstrations put before every conversation */
  prompt?: PromptFile;
  /** image tasks asked without their images (a vision model's text-only comparison; always so for text models) */
  withoutImages?: boolean;
}

/** Per-task and overall accuracy of the chat model on the conversations. */
export async function evaluateChatTasks(
  model: Model,
  codec: ChatCodec,
  conversations: Conversation[],
  o: TaskEvalOptions = {},
): Promise<TaskScore[]> {
  return scoreAnswers(await answerChatTasks(model, codec, conversations, o));
}

/** Answers every conversation's last assistant turn greedily and checks it. */
export async function answerChatTasks(
  model: Model,
  codec: ChatCodec,
  conversations: Conversation[],
  o: TaskEvalOptions = {},
): Promise<TaskAnswer[]> {
  const maxTokens = o.maxTokens ?? 32;
  const engine = new Engine(model, codec, 4);
  const answers: TaskAnswer[] = [];
  const withTools: [Conversation, TaskAnswer][] = [];
  for (const c of conversations) {
    const answer = taskAnswer(c);
    answers.push(answer);
    if (c.tools?.length && !o.withoutTools) {
      withTools.push([c, answer]);
      continue;
    }
    const asked = applyPrompt(o.prompt, askedPart(c));
    const vision = o.withoutImages ? undefined : model.config.vision;
    const text = codec.renderChat(vision ? asked : withoutImages(asked));
    const { prompt, images } = vision
      ? await visionPrompt(codec, vision, text, imagesOf(asked), c.source)
      : { prompt: codec.encode(text, true), images: undefined };
    engine.submit({
      // A prompt with images is never cut (its patches would be); one too long is refused by the engine.
      prompt: images ? prompt : prompt.slice(-(engine.contextLength - maxTokens - 1)),
      ...(images ? { images } : {}),
      options: { temperature: 0, maxTokens },
      onDone: (r) => check(answer, r.text),
      onError: (e) => {
        throw e;
      },
    });
  }
  engine.runToCompletion();
  // A tool call's JSON is longer than a short answer.
  const generate = engineGenerate(engine, codec, { temperature: 0, maxTokens: Math.max(maxTokens, 128) });
  for (const [c, answer] of withTools) {
    const added = await agentTurn(applyPrompt(o.prompt, askedPart(c)), { generate, tools: taskTools(c) });
    answer.calls = added.flatMap((m) => m.toolCalls?.map((call) => call.name) ?? []);
    check(answer, added.at(-1)?.content ?? "");
  }
  return answers;
}

function taskAnswer(c: Conversation): TaskAnswer {
  const last = c.messages.map((m) => m.role).lastIndexOf("assistant");
  return {
    task: typeof c.meta?.task === "string" ? c.meta.task : "all",
    question: c.messages.slice(0, last).findLast((m) => m.role === "user")?.content ?? "",
    expected: (c.messages[last]?.content ?? "").trim(),
    got: "",
    correct: false,
  };
}

function check(answer: TaskAnswer, text: string): void {
  answer.got = text.trim();
  answer.correct = answer.got === answer.expected;
}

/**
 * What the model is asked: a plain task's conversation up to its last assistant turn; a
 * tool task's up to its first (the calls, results and answer are the model's to make).
 */
function askedPart(c: Conversation): ChatMessage[] {
  const roles = c.messages.map((m) => m.role);
  return c.messages.slice(0, c.tools?.length ? roles.indexOf("assistant") : roles.lastIndexOf("assistant"));
}

/** The built-in tools a task offers, the clock reading the moment in its meta (synth writes it). */
function taskTools(c: Conversation): ReturnType<typeof builtinTools> {
  const names = (c.tools ?? []).map((t) => t.name);
  const meta = c.meta?.clock as { now?: unknown; timezone?: unknown } | undefined;
  const clock: FixedClock | undefined =
    typeof meta?.now === "string"
      ? {
          now: () => new Date(meta.now as string),
          ...(typeof meta.timezone === "string" ? { timezone: meta.timezone } : {}),
        }
      : undefined;
  try {
    return builtinTools(names, clock);
  } catch (e) {
    throw new Error(`${c.source}: ${(e as Error).message}; tool tasks run the built-in tools only`);
  }
}

/**
 * pass@k of plain tasks: the share of conversations for which at least one of k answers
 * sampled at `temperature` is exactly right (each sample seeded, so the figure repeats).
 */
export function passAtK(
  model: Model,
  codec: ChatCodec,
  conversations: Conversation[],
  k: number,
  o: { temperature: number; maxTokens?: number; seed?: number } = { temperature: 1 },
): number {
  const engine = new Engine(model, codec, Math.min(64, conversations.length * k));
  const solved = new Set<number>();
  conversations.forEach((c, i) => {
    const expected = taskAnswer(c).expected;
    const prompt = codec.encode(codec.renderChat(askedPart(c)), true);
    for (let j = 0; j < k; j++) {
      engine.submit({
        prompt,
        options: {
          temperature: o.temperature,
          maxTokens: o.maxTokens ?? 32,
          seed: (o.seed ?? 1) * 100_003 + i * k + j,
        },
        onDone: (r) => {
          if (r.text.trim() === expected) solved.add(i);
        },
        onError: (e) => {
          throw e;
        },
      });
    }
  });
  engine.runToCompletion();
  return conversations.length ? solved.size / conversations.length : 0;
}

export function scoreAnswers(answers: TaskAnswer[]): TaskScore[] {
  const scores = new Map<string, { correct: number; total: number }>();
  for (const a of answers) {
    const s = scores.get(a.task) ?? { correct: 0, total: 0 };
    s.total++;
    if (a.correct) s.correct++;
    scores.set(a.task, s);
  }
  const rows = [...scores].sort().map(([task, s]) => ({ task, ...s, accuracy: s.correct / s.total }));
  const correct = rows.reduce((a, r) => a + r.correct, 0);
  const total = rows.reduce((a, r) => a + r.total, 0);
  return [...rows, { task: "overall", correct, total, accuracy: total ? correct / total : 0 }];
}
