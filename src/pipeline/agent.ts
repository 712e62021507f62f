// The agent loop's `generate` over the inference engine, as `llmfab chat` and task
// evaluation run it: the conversation rendered with the model's template and the tools,
// tool calls held to the tools' schemas, the raw answer (special tokens written out)
// returned for the loop to parse.
import { withoutToolCalls } from "../agent/loop.ts";
import { type ChatMessage, heldToolCalls, type ToolSpec } from "../infer/chat.ts";
import type { Engine, GenerationOptions } from "../infer/engine.ts";
import type { ChatCodec } from "./codec.ts";

export interface EngineTurnHooks {
  /** the visible text of the answer as it streams (tool calls left out) */
  onText?(text: string): void;
  /** the conversation did not fit the context: its oldest tokens were cut */
  onCut?(): void;
}

export function engineGenerate(
  engine: Engine,
  codec: ChatCodec,
  options: Partial<GenerationOptions>,
  hooks: EngineTurnHooks = {},
): (messages: ChatMessage[], tools: ToolSpec[]) => string {
  return (messages, tools) => {
    let prompt = codec.encode(codec.renderChat(messages, true, tools), true);
    const room = engine.contextLength - 1;
    if (prompt.length > room) {
      prompt = prompt.slice(prompt.length - room); // keep the most recent context
      hooks.onCut?.();
    }
    const visible = withoutToolCalls(codec.toolCallIds);
    const toolCalls = heldToolCalls(tools, codec.toolCallIds);
    const held = toolCalls ? { ...options, toolCalls } : options;
    const onText = hooks.onText;
    const r = engine.generate(prompt, held, onText ? (e) => onText(visible(e.id, e.text)) : undefined);
    return codec.decodeRaw(r.ids);
  };
}
