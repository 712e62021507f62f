import { Engine } from "../infer/engine.ts";
import type { Model } from "../model/model.ts";
import type { Conversation } from "../posttrain/data.ts";
import type { ChatCodec } from "./codec.ts";

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
}

/** Per-task and overall accuracy of the chat model on the conversations. */
export function evaluateChatTasks(
  model: Model,
  codec: ChatCodec,
  conversations: Conversation[],
  maxTokens = 32,
): TaskScore[] {
  return scoreAnswers(answerChatTasks(model, codec, conversations, maxTokens));
}

/** Generates every conversation's last assistant turn greedily, in batches, and checks it. */
export function answerChatTasks(
  model: Model,
  codec: ChatCodec,
  conversations: Conversation[],
  maxTokens = 32,
): TaskAnswer[] {
  const engine = new Engine(model, codec, 4);
  const answers: TaskAnswer[] = [];
  for (const c of conversations) {
    const last = c.messages.map((m) => m.role).lastIndexOf("assistant");
    const prompt = codec.encode(codec.renderChat(c.messages.slice(0, last)), true);
    const answer: TaskAnswer = {
      task: typeof c.meta?.task === "string" ? c.meta.task : "all",
      question: c.messages.slice(0, last).findLast((m) => m.role === "user")?.content ?? "",
      expected: (c.messages[last]?.content ?? "").trim(),
      got: "",
      correct: false,
    };
    answers.push(answer);
    engine.submit({
      prompt: prompt.slice(-(engine.contextLength - maxTokens - 1)),
      options: { temperature: 0, maxTokens },
      onDone: (r) => {
        answer.got = r.text.trim();
        answer.correct = answer.got === answer.expected;
      },
      onError: (e) => {
        throw e;
      },
    });
  }
  engine.runToCompletion();
  return answers;
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
