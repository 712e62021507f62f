// Task evaluation of a chat model: for each held-out conversation, generate the last
// assistant turn greedily from everything before it and compare it, exactly (after
// trimming), with the reference. Accuracy per task (meta.task) and overall.
import { renderChat } from "../infer/chat.ts";
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

export function evaluateChatTasks(
  model: Model,
  codec: ChatCodec,
  conversations: Conversation[],
  maxTokens = 32,
): TaskScore[] {
  const engine = new Engine(model, codec, 4);
  const scores = new Map<string, { correct: number; total: number }>();
  const pending: { task: string; expected: string; got?: string }[] = [];
  for (const c of conversations) {
    const last = c.messages.map((m) => m.role).lastIndexOf("assistant");
    const prompt = codec.encode(renderChat(codec.chatTemplate, c.messages.slice(0, last)), true);
    const item: { task: string; expected: string; got?: string } = {
      task: typeof c.meta?.task === "string" ? c.meta.task : "all",
      expected: (c.messages[last]?.content ?? "").trim(),
    };
    pending.push(item);
    engine.submit({
      prompt: prompt.slice(-(engine.contextLength - maxTokens - 1)),
      options: { temperature: 0, maxTokens },
      onDone: (r) => {
        item.got = r.text.trim();
      },
    });
  }
  engine.runToCompletion();
  for (const p of pending) {
    const s = scores.get(p.task) ?? { correct: 0, total: 0 };
    s.total++;
    if (p.got === p.expected) s.correct++;
    scores.set(p.task, s);
  }
  const rows = [...scores].sort().map(([task, s]) => ({ task, ...s, accuracy: s.correct / s.total }));
  const correct = rows.reduce((a, r) => a + r.correct, 0);
  const total = rows.reduce((a, r) => a + r.total, 0);
  return [...rows, { task: "overall", correct, total, accuracy: total ? correct / total : 0 }];
}
