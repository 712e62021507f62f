// Request bodies of the OpenAI-compatible API, validated with zod.
import { z } from "zod";
import { zodRange } from "../options/ranges.ts";

const stop = z.union([z.string(), z.array(z.string()).max(4)]).nullish();

const sampling = {
  model: z.string().optional(),
  max_tokens: zodRange("maxTokens").nullish(),
  temperature: zodRange("temperature").nullish(),
  top_p: zodRange("topP").nullish(),
  n: zodRange("choices").nullish(),
  stop,
  seed: zodRange("seed").nullish(),
  stream: z.boolean().nullish(),
  frequency_penalty: zodRange("penalty").nullish(),
  presence_penalty: zodRange("penalty").nullish(),
  user: z.string().optional(),
};

const toolCall = z.object({
  id: z.string(),
  type: z.literal("function").optional(),
  function: z.object({ name: z.string().min(1), arguments: z.string() }),
});

const functionTool = z.object({
  type: z.literal("function"),
  function: z.object({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "a function name is 1-64 letters, digits, _ or -"),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullish(),
  }),
});

const contentPart = z.discriminatedUnion("type", [
  z.object({ type: z.literal("text"), text: z.string() }),
  z.object({
    type: z.literal("image_url"),
    image_url: z.object({ url: z.string().min(1), detail: z.enum(["auto", "low", "high"]).nullish() }),
  }),
]);

export const chatRequest = z.object({
  ...sampling,
  messages: z
    .array(
      z.object({
        role: z.enum(["system", "user", "assistant", "tool", "developer"]),
        content: z.union([z.string(), z.array(contentPart)]).nullish(),
        tool_calls: z.array(toolCall).nullish(),
        tool_call_id: z.string().nullish(),
        name: z.string().nullish(),
      }),
    )
    .min(1),
  tools: z.array(functionTool).max(128).nullish(),
  tool_choice: z
    .union([
      z.enum(["none", "auto", "required"]),
      z.object({ type: z.literal("function"), function: z.object({ name: z.string() }) }),
    ])
    .nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  response_format: z
    .discriminatedUnion("type", [
      z.object({ type: z.literal("text") }),
      z.object({ type: z.literal("json_object") }),
      z.object({
        type: z.literal("json_schema"),
        json_schema: z.object({
          name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "a schema name is 1-64 letters, digits, _ or -"),
          description: z.string().optional(),
          schema: z.record(z.string(), z.unknown()).optional(),
          strict: z.boolean().nullish(),
        }),
      }),
    ])
    .nullish(),
  max_completion_tokens: zodRange("maxTokens").nullish(),
  /** search the server's index (llmfab serve --search) for the last user turn */
  web_search_options: z
    .object({
      search_context_size: z.enum(["low", "medium", "high"]).nullish(),
      user_location: z.unknown().optional(),
    })
    .nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(0).nullish(),
});

export const completionRequest = z.object({
  ...sampling,
  prompt: z.union([z.string(), z.array(z.string()).length(1)]),
  logprobs: z.number().int().min(0).max(1).nullish(),
  echo: z.boolean().nullish(),
});

export type ChatRequest = z.infer<typeof chatRequest>;
export type CompletionRequest = z.infer<typeof completionRequest>;

/** The first problem of a failed parse, as "field: message". */
export function describeIssue(error: z.ZodError): { message: string; param: string | null } {
  const issue = error.issues[0];
  const param = issue?.path.join(".") || null;
  return { message: `${param ?? "body"}: ${issue?.message ?? "invalid"}`, param };
}
