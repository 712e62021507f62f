// The agent loop's `generate` over the inference engine, as `llmfab chat` and task
// evaluation run it: the conversation rendered with the model's template and the tools,
// tool calls held to the tools' schemas, the raw answer (special tokens written out)
// returned for the loop to parse.
import { withoutToolCalls } from "../agent/loop.ts";
import { type ChatMessage, heldToolCalls, type ToolSpec } from "../infer/chat.ts";
import type { Engine, GenerationOptions, PromptImages } from "../infer/engine.ts";
import { stackImages, type VisionConfig } from "../model/vision.ts";
import type { ChatCodec } from "./codec.ts";
import { chatTokens, imagesOf } from "./vision.ts";

export interface EngineTurnHooks {
  /** the visible text of the answer as it streams (tool calls left out) */
  onText?(text: string): void;
  /** the conversation did not fit the context: its oldest tokens were cut */
  onCut?(): void;
  /** a vision model's images: its config, and each image source's pixels (read before the turn) */
  images?: { vision: VisionConfig; pixels(source: string): Float32Array };
}

/** The prompt of a conversation: its tokens, and a vision model's images with their placeholders' positions. */
function promptOf(
  codec: ChatCodec,
  messages: ChatMessage[],
  tools: ToolSpec[],
  hooks: EngineTurnHooks,
): { prompt: number[]; images?: PromptImages } {
  const text = codec.renderChat(messages, true, tools);
  const sources = imagesOf(messages);
  if (!hooks.images || sources.length === 0) return { prompt: codec.encode(text, true) };
  const { tokens, imageStarts } = chatTokens(codec, text, hooks.images.vision);
  const pixels = stackImages(sources.map((s) => hooks.images?.pixels(s) as Float32Array));
  return { prompt: tokens, images: { pixels, count: sources.length, starts: imageStarts } };
}

export function engineGenerate(
  engine: Engine,
  codec: ChatCodec,
  options: Partial<GenerationOptions>,
  hooks: EngineTurnHooks = {},
): (messages: ChatMessage[], tools: ToolSpec[]) => string {
  return (messages, tools) => {
    let { prompt, images } = promptOf(codec, messages, tools, hooks);
    const room = engine.contextLength - 1;
    if (images && prompt.length > room)
      throw new Error(
        `the conversation and its ${images.count} images take ${prompt.length} tokens, more than the context of ${room}; start a new one`,
      );
    if (prompt.length > room) {
      prompt = prompt.slice(prompt.length - room); // keep the most recent context
      hooks.onCut?.();
    }
    const visible = withoutToolCalls(codec.toolCallIds);
    const toolCalls = heldToolCalls(tools, codec.toolCallIds);
    const held = toolCalls ? { ...options, toolCalls } : options;
    const onText = hooks.onText;
    const r = engine.generate(prompt, held, onText ? (e) => onText(visible(e.id, e.text)) : undefined, images);
    return codec.decodeRaw(r.ids);
  };
}
