// A corpus recipe: sources, the cleaning steps in order (each with FineWeb's defaults
// unless overridden), the validation split and the shard size. Written as YAML:
//
//   sources: [sotu, ./my-texts, { urls: urls.txt }]
//   steps: [normalize, html, { language: { languages: [en] } }, gopher-quality, exact-dedup]
//   val_fraction: 0.01
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { SourceSpec } from "./sources.ts";
import { DEFAULT_STEPS, resolveStep, type StepSpec } from "./steps/index.ts";

const sourceSchema = z.union([
  z.string().min(1),
  z
    .object({
      url: z.string().regex(/^https?:\/\//, "must be an http(s) URL"),
      sha256: z
        .string()
        .regex(/^[0-9a-fA-F]{64}$/)
        .optional(),
    })
    .strict(),
  z.object({ urls: z.string().min(1) }).strict(),
]);

const stepEntry = z.union([z.string(), z.record(z.string(), z.unknown())]);

export const recipeSchema = z
  .object({
    sources: z.array(sourceSchema).min(1),
    text_field: z.string().min(1).default("text"),
    steps: z.array(stepEntry).default(DEFAULT_STEPS),
    val_fraction: z.number().min(0).max(0.5).default(0.01),
    shard_docs: z.number().int().min(1).default(10_000),
    shard_bytes: z
      .number()
      .int()
      .min(1024)
      .default(128 * 2 ** 20),
    /** examples of removed documents kept in the report, per reason */
    examples: z.number().int().min(0).max(100).default(3),
  })
  .strict();

export interface Recipe {
  sources: SourceSpec[];
  textField: string;
  steps: StepSpec[];
  valFraction: number;
  shardDocs: number;
  shardBytes: number;
  examples: number;
}

/** Validates a recipe object; `where` (a file name) starts every error message. */
export function parseRecipe(value: unknown, where: string): Recipe {
  const parsed = recipeSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${where}: ${issue?.path.join(".") || "recipe"}: ${issue?.message}`);
  }
  const r = parsed.data;
  const steps = r.steps.map((entry, i) => {
    const at = `${where}: steps.${i}`;
    if (typeof entry === "string") return resolveStep(entry, {}, at);
    const keys = Object.keys(entry);
    if (keys.length !== 1)
      throw new Error(`${at}: a step is a name or { name: { options } }, got keys ${keys.join(", ")}`);
    const name = keys[0] as string;
    return resolveStep(name, entry[name], at);
  });
  const names = steps.map((s) => s.name);
  const repeated = names.find((n, i) => names.indexOf(n) !== i);
  if (repeated) throw new Error(`${where}: step "${repeated}" appears twice`);
  return {
    sources: r.sources,
    textField: r.text_field,
    steps,
    valFraction: r.val_fraction,
    shardDocs: r.shard_docs,
    shardBytes: r.shard_bytes,
    examples: r.examples,
  };
}

export function readRecipe(path: string): Recipe {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new Error(`${path}: cannot read the recipe (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (e) {
    throw new Error(`${path}: invalid YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  return parseRecipe(value, path);
}
