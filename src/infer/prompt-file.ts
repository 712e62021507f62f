// A prompt file (PROMPT.json, written by `llmfab prompt optimize`): a system prompt and
// few-shot demonstrations that go before every conversation in `llmfab chat`, `serve` and
// `eval --tasks`. The optimizer's measurements are kept beside them for the reader.
import { z } from "zod";
import { readJsonFile } from "../io/json.ts";
import type { ChatMessage } from "./chat.ts";

export const promptFileSchema = z.object({
  system: z.string(),
  shots: z.array(z.object({ user: z.string(), assistant: z.string() })),
  /** how it was chosen: accuracies and the trials (free form, for the reader) */
  chosen_by: z.record(z.string(), z.unknown()).optional(),
});

export type PromptFile = z.infer<typeof promptFileSchema>;

export function readPromptFile(path: string): PromptFile {
  return readJsonFile(path, promptFileSchema);
}

/**
 * The conversation with the prompt in front: its system prompt joins the conversation's own
 * (the prompt first), and its demonstrations come before the first turn.
 */
export function applyPrompt(prompt: PromptFile | undefined, messages: ChatMessage[]): ChatMessage[] {
  if (!prompt) return messages;
  const own = messages[0]?.role === "system" ? (messages[0] as ChatMessage) : undefined;
  const system = [prompt.system, own?.content ?? ""].filter((s) => s !== "").join("\n");
  const shots = prompt.shots.flatMap((s): ChatMessage[] => [
    { role: "user", content: s.user },
    { role: "assistant", content: s.assistant },
  ]);
  return [...(system ? [{ role: "system" as const, content: system }] : []), ...shots, ...messages.slice(own ? 1 : 0)];
}
