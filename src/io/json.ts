// JSON for people and other tools: what llmfab prints or writes uses snake_case keys
// (as OpenAI's API and Hugging Face's files do), whatever the TypeScript names are.
// JSON that llmfab reads is checked against a schema.
import { readFileSync } from "node:fs";
import type { z } from "zod";

const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** A copy of value with every object key in snake_case (firstCopy -> first_copy). */
export function snakeCaseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeCaseKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [snake(k), snakeCaseKeys(v)]));
}

/** One line of JSON with snake_case keys. */
export function jsonLine(value: unknown): string {
  return `${JSON.stringify(snakeCaseKeys(value))}\n`;
}

/**
 * A value checked against a zod schema; the first problem is an error naming `where`, the
 * field and (if given) what the value was meant to be: "config.json: not a X: a.b: ...".
 */
export function checkJson<S extends z.ZodType>(schema: S, value: unknown, where: string, what?: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new Error(`${where}: ${what ? `${what}: ` : ""}${issue?.path.join(".") || "(top level)"}: ${issue?.message}`);
}

/** JSON text checked against a schema; bad JSON is an error naming `where`. */
export function parseJsonText<S extends z.ZodType>(text: string, schema: S, where: string, what?: string): z.infer<S> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: invalid JSON (${(e as Error).message})`);
  }
  return checkJson(schema, json, where, what);
}

/** A JSON file checked against a zod schema; a missing file, bad JSON or a wrong field is an error naming the file (and the field). */
export function readJsonFile<S extends z.ZodType>(path: string, schema: S): z.infer<S> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(`${path}: ${err.code === "ENOENT" ? "missing" : `cannot read (${err.message})`}`);
  }
  return parseJsonText(text, schema, path);
}
