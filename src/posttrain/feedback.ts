// Feedback people leave on answers (the chat page's 👍 / 👎 and "regenerate"), kept as
// JSONL, and turned into preference pairs for DPO: an answer kept after regenerating is
// preferred to the ones it replaced; to the same conversation, a 👍 answer is preferred
// to a 👎 one.
import { appendFileSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";
import { parseJsonText } from "../io/json.ts";

const message = z.object({ role: z.enum(["system", "user", "assistant"]), content: z.string() });

/** What the chat page sends: the conversation before the answer, the answer, and what the user did. */
export const feedbackSchema = z.object({
  messages: z.array(message).min(1).max(256),
  answer: z.string().max(100_000),
  rating: z.enum(["up", "down"]).nullish(),
  /** answers generated for the same turn that the user regenerated away from */
  replaced: z.array(z.string().max(100_000)).max(16).default([]),
  sampling: z.record(z.string(), z.unknown()).optional(),
});
export type Feedback = z.infer<typeof feedbackSchema>;

export interface FeedbackRecord extends Feedback {
  time: string;
  model: string;
}

export function appendFeedback(file: string, record: FeedbackRecord): void {
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${JSON.stringify(record)}\n`);
}

export interface PreferenceLine {
  prompt: z.infer<typeof message>[];
  chosen: { role: "assistant"; content: string }[];
  rejected: { role: "assistant"; content: string }[];
}

/** Preference pairs (TRL's message format, what `llmfab dpo` reads) from a feedback file. */
export function feedbackPairs(file: string): PreferenceLine[] {
  const records: FeedbackRecord[] = [];
  readFileSync(file, "utf8")
    .split("\n")
    .forEach((line, i) => {
      if (!line.trim()) return;
      const record = parseJsonText(line, feedbackSchema, `${file}:${i + 1}`, "not a feedback record");
      records.push({ ...record, time: "", model: "" });
    });
  const pairs: PreferenceLine[] = [];
  const seen = new Set<string>();
  const pair = (prompt: PreferenceLine["prompt"], chosen: string, rejected: string) => {
    const key = JSON.stringify([prompt, chosen, rejected]);
    if (chosen === rejected || seen.has(key)) return;
    seen.add(key);
    pairs.push({
      prompt,
      chosen: [{ role: "assistant", content: chosen }],
      rejected: [{ role: "assistant", content: rejected }],
    });
  };
  for (const r of records) for (const old of r.replaced) pair(r.messages, r.answer, old);
  const byPrompt = new Map<string, FeedbackRecord[]>();
  for (const r of records) {
    if (!r.rating) continue;
    const key = JSON.stringify(r.messages);
    byPrompt.set(key, [...(byPrompt.get(key) ?? []), r]);
  }
  for (const rs of byPrompt.values()) {
    for (const up of rs.filter((r) => r.rating === "up"))
      for (const down of rs.filter((r) => r.rating === "down")) pair(up.messages, up.answer, down.answer);
  }
  return pairs;
}
