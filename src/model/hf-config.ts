// Reading a Hugging Face config.json with a zod schema: errors name the file and the field.
import type { z } from "zod";

export function parseHfConfig<S extends z.ZodType>(
  schema: S,
  json: Record<string, unknown>,
  where: string,
  family: string,
): z.infer<S> {
  const r = schema.safeParse(json);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const field = issue?.path.join(".") || "(top level)";
  throw new Error(`${where}: invalid ${family} config: ${field}: ${issue?.message}`);
}

/** Fails on a config option llmfab cannot honour, naming the file and the field. */
export function unsupported(where: string, field: string, value: unknown, why: string): never {
  throw new Error(`${where}: ${field} ${JSON.stringify(value)} is not supported (${why})`);
}
