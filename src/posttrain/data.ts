// Conversations for post-training, from JSONL in three common shapes, validated with the
// file and line of every problem:
//   OpenAI chat:  {"messages": [{"role": "user", "content": "..."}, ...]}
//   ShareGPT:     {"conversations": [{"from": "human" | "gpt" | "system", "value": "..."}]}
//   Alpaca:       {"instruction": "...", "input": "...", "output": "..."}
import { readFileSync } from "node:fs";
import { decodeText } from "../io/text.ts";

export type Role = "system" | "user" | "assistant";

export interface Message {
  role: Role;
  content: string;
}

export interface Conversation {
  messages: Message[];
  /** file:line, for error messages */
  source: string;
  /** free-form metadata (synth writes {"task": ...}) */
  meta?: Record<string, unknown>;
}

const SHAREGPT_ROLES: Record<string, Role> = {
  human: "user",
  user: "user",
  gpt: "assistant",
  assistant: "assistant",
  system: "system",
};

function parseLine(value: unknown, where: string): Conversation {
  const v = value as Record<string, unknown>;
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`${where}: expected a JSON object`);
  const meta = typeof v.meta === "object" && v.meta !== null ? (v.meta as Record<string, unknown>) : undefined;
  let messages: Message[];
  if (Array.isArray(v.messages)) {
    messages = v.messages.map((m: unknown, i: number) => {
      const { role, content } = (m ?? {}) as { role?: unknown; content?: unknown };
      if (role !== "system" && role !== "user" && role !== "assistant") {
        throw new Error(`${where}: messages[${i}]: unknown role ${JSON.stringify(role)} (system, user or assistant)`);
      }
      if (typeof content !== "string") throw new Error(`${where}: messages[${i}]: content must be a string`);
      return { role, content };
    });
  } else if (Array.isArray(v.conversations)) {
    messages = v.conversations.map((m: unknown, i: number) => {
      const { from, value: text } = (m ?? {}) as { from?: unknown; value?: unknown };
      const role = SHAREGPT_ROLES[String(from)];
      if (!role)
        throw new Error(`${where}: conversations[${i}]: unknown role ${JSON.stringify(from)} (human, gpt or system)`);
      if (typeof text !== "string") throw new Error(`${where}: conversations[${i}]: value must be a string`);
      return { role, content: text };
    });
  } else if (typeof v.instruction === "string") {
    if (typeof v.output !== "string") throw new Error(`${where}: an Alpaca record needs a string "output"`);
    const input = typeof v.input === "string" && v.input.trim() ? `\n\n${v.input}` : "";
    messages = [
      { role: "user", content: v.instruction + input },
      { role: "assistant", content: v.output },
    ];
  } else {
    throw new Error(`${where}: not a conversation (expected "messages", "conversations" or "instruction")`);
  }
  messages.forEach((m, i) => {
    if (m.role === "assistant" && m.content.trim() === "")
      throw new Error(`${where}: message ${i} is an empty assistant turn`);
  });
  if (!messages.some((m) => m.role === "assistant"))
    throw new Error(`${where}: the conversation has no assistant turn to learn from`);
  return { messages, source: where, ...(meta ? { meta } : {}) };
}

export function readConversations(paths: string[]): Conversation[] {
  const out: Conversation[] = [];
  for (const path of paths) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch {
      throw new Error(`${path}: cannot read`);
    }
    const text = decodeText(bytes, path);
    text.split("\n").forEach((line, i) => {
      if (!line.trim()) return;
      const where = `${path}:${i + 1}`;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw new Error(`${where}: malformed JSON`);
      }
      out.push(parseLine(value, where));
    });
  }
  if (out.length === 0) throw new Error(`${paths.join(", ")}: no conversations`);
  return out;
}
