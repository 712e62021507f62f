// A conversation as training tokens: the chat template over the whole conversation, with
// targets only on what the assistant says (its words and its end-of-turn token). Every
// other position gets the ignore index, so the loss never teaches the prompt.
import { IGNORE_INDEX } from "../tensor/index.ts";
import type { Conversation, Message } from "./data.ts";

/** Renders messages with the chat template and tokenizes (special tokens parsed). */
export type ChatRenderer = (messages: Message[], addGenerationPrompt: boolean) => number[];

export interface EncodedConversation {
  tokens: number[];
  /** targets[t] is the token to predict after tokens[t], or IGNORE_INDEX */
  targets: number[];
  /** a vision model's images: preprocessed pixels, and where each one's placeholder tokens start */
  images?: { pixels: Float32Array[]; starts: number[] };
}

/**
 * The template is concatenative: rendering the first i messages is a prefix of
 * rendering i + 1. An assistant turn is the difference between the conversation
 * rendered up to it with the generation prompt and rendered through it.
 */
export function encodeConversation(c: Conversation, render: ChatRenderer, maxTokens: number): EncodedConversation {
  const tokens = render(c.messages, false);
  const learn = new Uint8Array(tokens.length);
  c.messages.forEach((m, i) => {
    if (m.role !== "assistant") return;
    const start = render(c.messages.slice(0, i), true).length;
    const end = render(c.messages.slice(0, i + 1), false).length;
    learn.fill(1, start, end);
  });
  if (tokens.length > maxTokens + 1) {
    throw new Error(
      `${c.source}: the conversation is ${tokens.length} tokens, longer than the context of ${maxTokens}; shorten it or train a longer context`,
    );
  }
  const targets = tokens.slice(1).map((t, i) => (learn[i + 1] ? t : IGNORE_INDEX));
  return { tokens: tokens.slice(0, -1), targets };
}
