// OpenAI tool calling on the chat completions API: request messages (assistant tool_calls,
// tool results) into the chat format, the request's tools and tool_choice into what the
// template renders and how the answer starts, and the generated calls back into OpenAI's
// tool_calls. The client runs the tools, as with OpenAI's API.
import { parseToolCalls, TOOL_CALL_START } from "../agent/loop.ts";
import { type ChatMessage, type ToolCall, type ToolSpec, toolArguments, toolSpecOf } from "../infer/chat.ts";
import type { ChatRequest } from "./schemas.ts";

export class ToolRequestError extends Error {
  constructor(
    message: string,
    readonly param: string,
  ) {
    super(message);
  }
}

/** The request's messages in the chat format (tool call arguments parsed from their JSON strings). */
export function chatMessages(body: ChatRequest): ChatMessage[] {
  return body.messages.map((m, i) => {
    const content =
      m.content == null ? "" : typeof m.content === "string" ? m.content : m.content.map((p) => p.text).join("");
    const toolCalls: ToolCall[] | undefined = m.tool_calls?.map((c, k) => {
      const param = `messages.${i}.tool_calls.${k}.function.arguments`;
      try {
        return { id: c.id, name: c.function.name, arguments: toolArguments(c.function.arguments) };
      } catch (e) {
        throw new ToolRequestError(`${param}: ${(e as Error).message}`, param);
      }
    });
    return {
      role: m.role === "developer" ? "system" : m.role,
      content,
      ...(toolCalls?.length ? { toolCalls } : {}),
      ...(m.tool_call_id ? { toolCallId: m.tool_call_id } : {}),
    };
  });
}

export interface ToolSetup {
  specs: ToolSpec[];
  /** what the answer is made to start with: a call (tool_choice required or a named function) */
  prefix: string;
}

/** The tools to render and the forced start of the answer, or null when no tools are in play. */
export function toolSetup(body: ChatRequest): ToolSetup | null {
  const tools = body.tools ?? [];
  const choice = body.tool_choice ?? "auto";
  if (tools.length === 0) {
    if (typeof choice === "object" || choice === "required")
      throw new ToolRequestError("tool_choice needs tools", "tool_choice");
    return null;
  }
  if (choice === "none") return null;
  const specs = tools.map((t) => toolSpecOf(t.function));
  if (choice === "auto") return { specs, prefix: "" };
  if (choice === "required") return { specs, prefix: TOOL_CALL_START };
  if (!specs.some((s) => s.name === choice.function.name))
    throw new ToolRequestError(`tool_choice names "${choice.function.name}", which is not in tools`, "tool_choice");
  // The same JSON layout as the chat template writes calls in.
  return { specs, prefix: `${TOOL_CALL_START}{"name": ${JSON.stringify(choice.function.name)}, "arguments": ` };
}

export interface OpenAiToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** The calls in a generated answer (its raw text, special tokens written out), in OpenAI's shape. */
export function answerToolCalls(raw: string): { content: string; calls: OpenAiToolCall[] } {
  const parsed = parseToolCalls(raw, () => `call_${Math.random().toString(36).slice(2, 14)}`);
  return {
    content: parsed.content,
    calls: parsed.calls.map((c) => ({
      id: c.id,
      type: "function",
      function: { name: c.name, arguments: JSON.stringify(c.arguments) },
    })),
  };
}
