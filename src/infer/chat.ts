// Chat templates, as Hugging Face keeps them: a Jinja `chat_template` in the model's
// tokenizer_config.json, rendered with @huggingface/jinja. llmfab's BPE tokenizers write
// one that uses their chat special tokens; character-level models get plain text.
import { Template } from "@huggingface/jinja";
import { compileSchema, SchemaError } from "./json-schema.ts";

export type Role = "system" | "user" | "assistant" | "tool";

/** A call the assistant made: OpenAI's shape, with the arguments parsed. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: Record<string, unknown>;
}

export interface ChatMessage {
  role: Role;
  content: string;
  /** assistant turns: the tools it called */
  toolCalls?: ToolCall[];
  /** tool turns: the call this result answers */
  toolCallId?: string;
  /** images in this message (data URLs, file paths or http(s) URLs), one IMAGE_PLACEHOLDER in content each */
  images?: string[];
}

/** Where an image stands in a message's text; a vision model's patch vectors take its place. */
export const IMAGE_PLACEHOLDER = "<|image|>";

/** A rendered prompt's tokens with each image placeholder expanded to `patches` tokens. */
export interface ImageTokens {
  tokens: number[];
  /** where each image's patches start, in order */
  imageStarts: number[];
}

/**
 * Tokenizes rendered chat text, putting `patches` placeholder tokens (id `placeholderId`;
 * their embeddings are replaced, so any id serves) wherever IMAGE_PLACEHOLDER stands.
 */
export function encodeImageText(
  text: string,
  encode: (text: string) => number[],
  patches: number,
  placeholderId: number,
): ImageTokens {
  const pieces = text.split(IMAGE_PLACEHOLDER);
  const tokens: number[] = [];
  const imageStarts: number[] = [];
  pieces.forEach((piece, i) => {
    if (i > 0) {
      imageStarts.push(tokens.length);
      for (let k = 0; k < patches; k++) tokens.push(placeholderId);
    }
    if (piece) tokens.push(...encode(piece));
  });
  return { tokens, imageStarts };
}

/** A tool as the template lists it (OpenAI's `function` object). */
export interface ToolSpec {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
}

/**
 * A tool call's arguments as OpenAI sends them (a JSON string, or an object already).
 * Throws "not valid JSON" or "not a JSON object"; callers say where.
 */
export function toolArguments(raw: unknown): Record<string, unknown> {
  let value = raw ?? {};
  if (typeof value === "string") {
    try {
      value = JSON.parse(value || "{}");
    } catch {
      throw new Error("not valid JSON");
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not a JSON object");
  return value as Record<string, unknown>;
}

/** An OpenAI function description as templates list it (what it leaves out filled in). */
export function toolSpecOf(fn: { name: string; description?: unknown; parameters?: unknown }): ToolSpec {
  return {
    name: fn.name,
    description: typeof fn.description === "string" ? fn.description : "",
    parameters:
      typeof fn.parameters === "object" && fn.parameters !== null
        ? (fn.parameters as Record<string, unknown>)
        : { type: "object", properties: {} },
  };
}

/** For vocabularies without special tokens (character-level models). */
export const PLAIN_CHAT_TEMPLATE =
  "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";

/** How tools are described to a model whose template does not render them itself. */
export function toolsSystemText(tools: ToolSpec[]): string {
  return `You can call these tools: ${JSON.stringify(tools)}`;
}

/**
 * Renders a conversation with the model's template. Messages reach the template in
 * Hugging Face's shape (tool_calls: [{id, type, function: {name, arguments}}],
 * tool_call_id), and `tools` as a list of functions, so templates written for
 * transformers' apply_chat_template work; a template that ignores `tools` gets them in
 * the system turn instead.
 */
export function renderChat(
  template: string,
  messages: ChatMessage[],
  addGenerationPrompt = true,
  tools: ToolSpec[] = [],
  specialTokens: TemplateTokens = {},
): string {
  let compiled: Template;
  try {
    compiled = new Template(template);
  } catch (e) {
    throw new Error(`invalid chat template: ${(e as Error).message}`);
  }
  let list = messages;
  if (tools.length > 0 && !template.includes("tools")) {
    const first = messages[0];
    const text = toolsSystemText(tools);
    list =
      first?.role === "system"
        ? [{ ...first, content: `${first.content}\n${text}` }, ...messages.slice(1)]
        : [{ role: "system", content: text }, ...messages];
  }
  return compiled.render({
    messages: list.map(toHfMessage),
    // transformers' shape: JSON schemas of functions
    ...(tools.length ? { tools: tools.map((f) => ({ type: "function", function: f })) } : {}),
    add_generation_prompt: addGenerationPrompt,
    bos_token: "",
    eos_token: "",
    ...specialTokens,
  });
}

/** A message in the shape transformers hands chat templates (tool_calls as {id, type, function}). */
export function toHfMessage(m: ChatMessage): Record<string, unknown> {
  return {
    role: m.role,
    content: m.content,
    ...(m.toolCalls?.length
      ? {
          tool_calls: m.toolCalls.map((c) => ({
            id: c.id,
            type: "function",
            function: { name: c.name, arguments: c.arguments },
          })),
        }
      : {}),
    ...(m.toolCallId ? { tool_call_id: m.toolCallId } : {}),
  };
}

/** The tokenizer's special tokens a template may print ({{ bos_token }}), as transformers passes them. */
export interface TemplateTokens {
  bos_token?: string;
  eos_token?: string;
  pad_token?: string;
}

/** The JSON a call must be: {"name": one of the tools, "arguments": that tool's parameters}. */
export function toolCallSchema(specs: ToolSpec[]): unknown {
  const calls = specs.map((s) => ({
    type: "object",
    properties: { name: { const: s.name }, arguments: s.parameters },
    required: ["name", "arguments"],
  }));
  return calls.length === 1 ? calls[0] : { anyOf: calls };
}

/**
 * Tool calls held to the tools' schemas (engine option toolCalls), or undefined when the
 * vocabulary has no call markers or a tool's parameters are outside the enforced subset.
 */
export function heldToolCalls(
  specs: ToolSpec[],
  markers: { start: number; end: number } | null,
  open = false,
): { start: number; end: number; schema: unknown; open: boolean } | undefined {
  if (!markers || specs.length === 0) return undefined;
  const schema = toolCallSchema(specs);
  try {
    compileSchema(schema);
  } catch (e) {
    if (e instanceof SchemaError) return undefined;
    throw e;
  }
  return { ...markers, schema, open };
}
