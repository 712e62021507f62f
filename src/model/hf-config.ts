// Reading a Hugging Face config.json with a zod schema: errors name the file and the field.
import type { z } from "zod";
import { checkJson } from "../io/json.ts";

export function parseHfConfig<S extends z.ZodType>(
  schema: S,
  json: Record<string, unknown>,
  where: string,
  family: string,
): z.infer<S> {
  return checkJson(schema, json, where, `invalid ${family} config`);
}

/** Fails on a config option llmfab cannot honour, naming the file and the field. */
export function unsupported(where: string, field: string, value: unknown, why: string): never {
  throw new Error(`${where}: ${field} ${JSON.stringify(value)} is not supported (${why})`);
}
