// The agent loop: generate; if the answer calls tools, run them (each with a time limit),
// append the calls and their results to the conversation, and generate again, up to a
// step limit. Tool calls are written between <|tool_call_start|> and <|tool_call_end|> as
// {"name": ..., "arguments": {...}}, which is how llmfab's chat template renders them.
import { type ChatMessage, type ToolCall, type ToolSpec, toolArguments } from "../infer/chat.ts";
import { runTool, type Tool, toolSpecs } from "./tool.ts";

export const TOOL_CALL_START = "<|tool_call_start|>";
export const TOOL_CALL_END = "<|tool_call_end|>";

/** The token ids of TOOL_CALL_START and TOOL_CALL_END in a vocabulary. */
export interface ToolCallMarkers {
  start: number;
  end: number;
}

/**
 * A filter for streamed tokens: what a person should see, without tool calls (their
 * marker tokens and what is between them). insideAtStart: the answer was made to begin
 * inside a call (a forced tool choice).
 */
export function withoutToolCalls(
  markers: ToolCallMarkers | null,
  insideAtStart = false,
): (token: number, text: string) => string {
  let inside = insideAtStart;
  return (token, text) => {
    if (token === markers?.start) inside = true;
    else if (token === markers?.end) inside = false;
    else if (!inside) return text;
    return "";
  };
}

export interface ParsedAnswer {
  /** the answer's text outside its tool calls */
  content: string;
  calls: ToolCall[];
  /** calls that could not be read (not JSON, no name), with why */
  malformed: string[];
}

/** Splits a raw answer (special tokens written out) into its text and its tool calls. */
export function parseToolCalls(raw: string, nextId: () => string): ParsedAnswer {
  const calls: ToolCall[] = [];
  const malformed: string[] = [];
  const pattern = /<\|tool_call_start\|>([\s\S]*?)(?:<\|tool_call_end\|>|$)/g;
  for (const match of raw.matchAll(pattern)) {
    const body = (match[1] ?? "").trim();
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch {
      malformed.push(`not JSON: ${body.slice(0, 200)}`);
      continue;
    }
    const v = value as { name?: unknown; arguments?: unknown };
    if (typeof v?.name !== "string") {
      malformed.push(`no "name": ${body.slice(0, 200)}`);
      continue;
    }
    let args: Record<string, unknown>;
    try {
      args = toolArguments(v.arguments);
    } catch (e) {
      malformed.push(`arguments ${(e as Error).message}: ${body.slice(0, 200)}`);
      continue;
    }
    calls.push({ id: nextId(), name: v.name, arguments: args });
  }
  const content = raw
    .replace(pattern, "")
    .replace(/<\|[a-z_]+\|>/g, "")
    .trim();
  return { content, calls, malformed };
}

export interface AgentStep {
  call: ToolCall;
  result: string;
  ok: boolean;
}

export interface AgentOptions {
  /** produces the raw answer (special tokens written out) to a conversation with these tools */
  generate(messages: ChatMessage[], tools: ToolSpec[]): Promise<string> | string;
  tools: Tool[];
  /** answers generated at most (each may call tools) */
  maxSteps?: number;
  toolTimeoutMs?: number;
  onToolCall?(step: AgentStep): void;
}

/**
 * One user turn: returns the messages it adds (assistant turns with their tool calls,
 * the tools' results, and the final answer). Unknown tools and malformed calls get an
 * error result the model can read; nothing throws for a tool's sake.
 */
export async function agentTurn(conversation: ChatMessage[], o: AgentOptions): Promise<ChatMessage[]> {
  const specs = toolSpecs(o.tools);
  const byName = new Map(o.tools.map((t) => [t.name, t]));
  const added: ChatMessage[] = [];
  let counter = 0;
  const nextId = () => `call_${++counter}`;
  const maxSteps = o.maxSteps ?? 4;
  for (let step = 0; step < maxSteps; step++) {
    const raw = await o.generate([...conversation, ...added], specs);
    const answer = parseToolCalls(raw, nextId);
    const malformed = answer.malformed.map((problem) => ({
      call: { id: nextId(), name: "(malformed)", arguments: {} },
      result: `error: malformed tool call, ${problem}`,
    }));
    const calls = [...answer.calls, ...malformed.map((m) => m.call)];
    added.push({ role: "assistant", content: answer.content, ...(calls.length ? { toolCalls: calls } : {}) });
    if (calls.length === 0 || step === maxSteps - 1) break;
    for (const call of answer.calls) {
      const tool = byName.get(call.name);
      const r = tool
        ? await runTool(tool, call.arguments, o.toolTimeoutMs)
        : { ok: false, content: `error: unknown tool "${call.name}" (tools: ${[...byName.keys()].join(", ")})` };
      o.onToolCall?.({ call, result: r.content, ok: r.ok });
      added.push({ role: "tool", content: r.content, toolCallId: call.id });
    }
    for (const m of malformed) added.push({ role: "tool", content: m.result, toolCallId: m.call.id });
  }
  return added;
}
