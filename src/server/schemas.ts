// Request bodies of the OpenAI-compatible API, validated with zod.
import { z } from "zod";

const stop = z.union([z.string(), z.array(z.string()).max(4)]).nullish();

const sampling = {
  model: z.string().optional(),
  max_tokens: z.number().int().positive().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  n: z.number().int().min(1).max(8).nullish(),
  stop,
  seed: z.number().int().nullish(),
  stream: z.boolean().nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
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
  max_completion_tokens: z.number().int().positive().nullish(),
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
