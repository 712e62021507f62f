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

export const chatRequest = z.object({
  ...sampling,
  messages: z
    .array(
      z.object({
        role: z.enum(["system", "user", "assistant", "tool", "developer"]),
        content: z.union([z.string(), z.array(z.object({ type: z.literal("text"), text: z.string() }))]),
      }),
    )
    .min(1),
  max_completion_tokens: zodRange("maxTokens").nullish(),
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
