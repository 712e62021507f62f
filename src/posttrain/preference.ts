// Preference pairs in TRL's formats: {"prompt", "chosen", "rejected"} as plain text (the
// prompt becomes the user's turn, each answer the assistant's) or as message lists (the
// prompt's messages, then the chosen or rejected assistant turn). Each side is encoded
// with the model's chat template; only the final assistant turn carries targets.
import { readFileSync } from "node:fs";
import { z } from "zod";
import { parseJsonText } from "../io/json.ts";
import { IGNORE_INDEX } from "../tensor/index.ts";
import type { Message } from "./data.ts";
import type { ChatRenderer, EncodedConversation } from "./encode.ts";

const message = z.object({ role: z.enum(["system", "user", "assistant"]), content: z.string() });
const side = z.union([z.string(), z.array(message).min(1)]);
const pairSchema = z.object({ prompt: side, chosen: side, rejected: side });

export interface PreferencePair {
  prompt: Message[];
  chosen: Message[];
  rejected: Message[];
  /** file:line */
  source: string;
}

const asMessages = (v: z.infer<typeof side>, role: "user" | "assistant"): Message[] =>
  typeof v === "string" ? [{ role, content: v }] : v;

/** Every pair of the files; a bad line is an error naming its file and line. */
export function readPreferencePairs(paths: string[]): PreferencePair[] {
  const out: PreferencePair[] = [];
  for (const path of paths) {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch {
      throw new Error(`${path}: cannot read the preference file`);
    }
    text.split("\n").forEach((line, i) => {
      if (!line.trim()) return;
      const source = `${path}:${i + 1}`;
      const row = parseJsonText(line, pairSchema, source, "not a preference pair");
      const pair = {
        prompt: asMessages(row.prompt, "user"),
        chosen: asMessages(row.chosen, "assistant"),
        rejected: asMessages(row.rejected, "assistant"),
        source,
      };
      if (JSON.stringify(pair.chosen) === JSON.stringify(pair.rejected))
        throw new Error(`${source}: chosen and rejected are the same answer: nothing to prefer`);
      out.push(pair);
    });
  }
  return out;
}

export interface EncodedPair {
  chosen: EncodedConversation;
  rejected: EncodedConversation;
  source: string;
}

/** One side: the prompt and the answer rendered together; targets only on the answer's tokens. */
function encodeSide(prompt: Message[], answer: Message[], render: ChatRenderer, maxTokens: number, source: string) {
  const tokens = render([...prompt, ...answer], false);
  const start = render(prompt, true).length;
  if (tokens.length > maxTokens + 1)
    throw new Error(`${source}: ${tokens.length} tokens, longer than the context of ${maxTokens}`);
  const targets = tokens.slice(1).map((t, i) => (i + 1 >= start ? t : IGNORE_INDEX));
  return { tokens: tokens.slice(0, -1), targets };
}

export function encodePair(p: PreferencePair, render: ChatRenderer, maxTokens: number): EncodedPair {
  return {
    chosen: encodeSide(p.prompt, p.chosen, render, maxTokens, p.source),
    rejected: encodeSide(p.prompt, p.rejected, render, maxTokens, p.source),
    source: p.source,
  };
}
