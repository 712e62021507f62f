// OpenAI tool calling on the chat completions API: request messages (assistant tool_calls,
// tool results) into the chat format, the request's tools and tool_choice into what the
// template renders and how the answer starts, and the generated calls back into OpenAI's
// tool_calls. The client runs the tools, as with OpenAI's API.
import { parseToolCalls, TOOL_CALL_START } from "../agent/loop.ts";
import { type ChatMessage, type ToolCall, type ToolSpec, toolArguments, toolSpecOf } from "../infer/chat.ts";

import { compileSchema, SchemaError } from "../infer/json-schema.ts";
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
      m.content == null
        ? ""
        : typeof m.content === "string"
          ? m.content
          : m.content.map((p) => (p.type === "text" ? p.text : "")).join("");
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
  /** the tools a call may name (one under a named tool_choice) */
  callable: ToolSpec[];
  /** the tool calls' JSON is held to the tools' schemas by constrained decoding */
  constrained: boolean;
}

/**
 * The tools to render and the forced start of the answer, or null when no tools are in play.
 * canHoldCalls: the model's vocabulary marks tool calls, so their JSON can be constrained.
 */
export function toolSetup(body: ChatRequest, canHoldCalls: boolean): ToolSetup | null {
  const tools = body.tools ?? [];
  const choice = body.tool_choice ?? "auto";
  if (tools.length === 0) {
    if (typeof choice === "object" || choice === "required")
      throw new ToolRequestError("tool_choice needs tools", "tool_choice");
    return null;
  }
  if (choice === "none") return null;
  const specs = tools.map((t) => toolSpecOf(t.function));
  const constrained = canConstrain(body, canHoldCalls);
  if (choice === "auto") return { specs, prefix: "", callable: specs, constrained };
  if (choice === "required") return { specs, prefix: TOOL_CALL_START, callable: specs, constrained };
  const named = specs.filter((s) => s.name === choice.function.name);
  if (named.length === 0)
    throw new ToolRequestError(`tool_choice names "${choice.function.name}", which is not in tools`, "tool_choice");
  // Unconstrained, the answer starts with the call's name, in the JSON layout the chat template writes calls in.
  const prefix = constrained
    ? TOOL_CALL_START
    : `${TOOL_CALL_START}{"name": ${JSON.stringify(choice.function.name)}, "arguments": `;
  return { specs, prefix, callable: named, constrained };
}

/**
 * Whether the calls can be held to the tools' schemas: the model has tool-call markers and
 * every parameters schema is in the enforced subset. A tool marked strict whose schema is
 * not is an error naming it; otherwise such tools are called unconstrained.
 */
function canConstrain(body: ChatRequest, hasMarkers: boolean): boolean {
  if (!hasMarkers) return false;
  for (const [i, t] of (body.tools ?? []).entries()) {
    try {
      compileSchema(toolSpecOf(t.function).parameters);
    } catch (e) {
      if (!(e instanceof SchemaError)) throw e;
      if (t.function.strict) throw new ToolRequestError(`tools.${i}.function.parameters: ${e.message}`, `tools.${i}`);
      return false;
    }
  }
  return true;
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
