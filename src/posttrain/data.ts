// Conversations for post-training, from JSONL in three common shapes, validated with the
// file and line of every problem:
//   OpenAI chat:  {"messages": [{"role": "user", "content": "..."}, ...], "tools": [...]}
//                 (as OpenAI's fine-tuning format: assistant "tool_calls", "tool" turns)
//   ShareGPT:     {"conversations": [{"from": "human" | "gpt" | "system", "value": "..."}]}
//   Alpaca:       {"instruction": "...", "input": "...", "output": "..."}
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import {
  type ChatMessage,
  IMAGE_PLACEHOLDER,
  type ToolCall,
  type ToolSpec,
  toolArguments,
  toolSpecOf,
} from "../infer/chat.ts";
import { decodeText } from "../io/text.ts";

export type Role = ChatMessage["role"];
export type Message = ChatMessage;

export interface Conversation {
  messages: Message[];
  /** the tools offered to the model in this conversation (rendered by the chat template) */
  tools?: ToolSpec[];
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

function parseLine(value: unknown, where: string, folder: string): Conversation {
  const v = value as Record<string, unknown>;
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`${where}: expected a JSON object`);
  const meta = typeof v.meta === "object" && v.meta !== null ? (v.meta as Record<string, unknown>) : undefined;
  let messages: Message[];
  let tools: ToolSpec[] | undefined;
  if (Array.isArray(v.messages)) {
    messages = v.messages.map((m: unknown, i: number) => openAiMessage(m, `${where}: messages[${i}]`, folder));
    if (v.tools !== undefined) tools = toolSpecs(v.tools, `${where}: tools`);
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
    if (m.role === "assistant" && m.content.trim() === "" && !m.toolCalls?.length)
      throw new Error(`${where}: message ${i} is an empty assistant turn`);
  });
  if (!messages.some((m) => m.role === "assistant"))
    throw new Error(`${where}: the conversation has no assistant turn to learn from`);
  return { messages, source: where, ...(tools ? { tools } : {}), ...(meta ? { meta } : {}) };
}

const ROLES = ["system", "user", "assistant", "tool"];

/**
 * A content list of text and image_url parts as text with IMAGE_PLACEHOLDER where each
 * image stands, and the images' sources (file paths relative to the data file's folder).
 */
function contentParts(parts: unknown[], where: string, folder: string): { text: string; images: string[] } {
  let text = "";
  const images: string[] = [];
  parts.forEach((part, j) => {
    const p = (part ?? {}) as { type?: unknown; text?: unknown; image_url?: { url?: unknown } };
    if (p.type === "text" && typeof p.text === "string") text += p.text;
    else if (p.type === "image_url" && typeof p.image_url?.url === "string") {
      const url = p.image_url.url;
      const local = !/^(data:|https?:\/\/)/i.test(url) && !isAbsolute(url);
      images.push(local ? resolve(folder, url) : url);
      text += IMAGE_PLACEHOLDER;
    } else throw new Error(`${where}: content[${j}] must be a text part or an image_url part with a url`);
  });
  return { text, images };
}

/** One OpenAI chat message: content, and for the assistant its tool calls, for a tool its call id. */
function openAiMessage(m: unknown, where: string, folder: string): Message {
  const { role, tool_calls, tool_call_id } = (m ?? {}) as Record<string, unknown>;
  let { content } = (m ?? {}) as Record<string, unknown>;
  if (typeof role !== "string" || !ROLES.includes(role))
    throw new Error(`${where}: unknown role ${JSON.stringify(role)} (system, user, assistant or tool)`);
  const calls = role === "assistant" && tool_calls != null ? toolCalls(tool_calls, `${where}.tool_calls`) : undefined;
  let images: string[] = [];
  if (Array.isArray(content)) ({ text: content, images } = contentParts(content, where, folder));
  if (typeof content !== "string" && !(content == null && calls?.length))
    throw new Error(`${where}: content must be a string or a list of text and image_url parts`);
  if (role === "tool" && typeof tool_call_id !== "string")
    throw new Error(`${where}: a tool message needs its tool_call_id`);
  return {
    role: role as Role,
    content: typeof content === "string" ? content : "",
    ...(calls?.length ? { toolCalls: calls } : {}),
    ...(role === "tool" ? { toolCallId: tool_call_id as string } : {}),
    ...(images.length ? { images } : {}),
  };
}

function toolCalls(value: unknown, where: string): ToolCall[] {
  if (!Array.isArray(value)) throw new Error(`${where}: must be an array`);
  return value.map((c: unknown, i: number) => {
    const { id, function: fn } = (c ?? {}) as { id?: unknown; function?: { name?: unknown; arguments?: unknown } };
    if (typeof fn?.name !== "string") throw new Error(`${where}[${i}]: function.name must be a string`);
    let args: Record<string, unknown>;
    try {
      args = toolArguments(fn.arguments);
    } catch (e) {
      throw new Error(`${where}[${i}]: function.arguments is ${(e as Error).message}`);
    }
    return { id: typeof id === "string" ? id : `call_${i + 1}`, name: fn.name, arguments: args };
  });
}

function toolSpecs(value: unknown, where: string): ToolSpec[] {
  if (!Array.isArray(value)) throw new Error(`${where}: must be an array`);
  return value.map((t: unknown, i: number) => {
    const fn = (t as { function?: { name?: unknown; description?: unknown; parameters?: unknown } })?.function;
    if (typeof fn?.name !== "string") throw new Error(`${where}[${i}]: function.name must be a string`);
    return toolSpecOf({ ...fn, name: fn.name });
  });
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
      out.push(parseLine(value, where, dirname(path)));
    });
  }
  if (out.length === 0) throw new Error(`${paths.join(", ")}: no conversations`);
  return out;
}
