// The pretraining config file (YAML). Keys follow nanoGPT's names; unknown keys are
// errors, so a typo never silently falls back to a default.
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { z } from "zod";
import { editDistance } from "../io/text.ts";
import { zodRange } from "../options/ranges.ts";

const positiveInt = z.number().int().positive();

export const pretrainSchema = z
  .object({
    /** a built-in corpus (sotu, tinyshakespeare), a text file, or a token-shard directory (llmfab tokenize) */
    data: z.string().default("sotu"),
    /** "char", or a BPE tokenizer (directory or gpt2 / cl100k_base); shard directories bring their own */
    tokenizer: z.string().default("char"),
    /** the last fraction of the corpus is the validation split (nanoGPT: 0.1) */
    val_fraction: zodRange("fraction").default(0.1),
    model: z
      .object({
        arch: z.enum(["gpt2", "llama"]).default("gpt2"),
        n_layer: positiveInt,
        n_head: positiveInt,
        n_kv_head: positiveInt.optional(),
        n_embd: positiveInt,
        block_size: positiveInt,
        intermediate_size: positiveInt.optional(),
        bias: z.boolean().default(false),
        dropout: zodRange("dropout").default(0),
        rope_theta: z.number().positive().optional(),
      })
      .strict(),
    train: z
      .object({
        batch_size: zodRange("batchSize"),
        grad_accum: positiveInt.default(1),
        max_iters: positiveInt,
        lr: zodRange("lr").default(1e-3),
        min_lr: z.number().min(0).optional(),
        warmup_iters: zodRange("warmup").default(100),
        lr_decay_iters: positiveInt.optional(),
        beta1: z.number().min(0).lt(1).default(0.9),
        beta2: z.number().min(0).lt(1).default(0.99),
        weight_decay: z.number().min(0).default(0.1),
        grad_clip: z.number().min(0).default(1),
        eval_interval: positiveInt.default(250),
        eval_iters: positiveInt.default(20),
        log_interval: positiveInt.default(10),
        checkpoint_interval: positiveInt.default(250),
        seed: zodRange("seed").default(1337),
        precision: z.enum(["auto", "fp32", "bf16"]).default("auto"),
        /** under mpirun, 1 shards the optimizer's moments over the ranks (ZeRO stage 1) */
        zero_stage: z.union([z.literal(0), z.literal(1)]).default(0),
      })
      .strict(),
    sample: z
      .object({
        count: z.number().int().min(0).default(2),
        max_tokens: zodRange("maxTokens").default(300),
        temperature: zodRange("temperature").default(0.8),
        top_k: zodRange("topK").default(200),
        prompt: z.string().default("\n"),
      })
      .strict()
      .default({ count: 2, max_tokens: 300, temperature: 0.8, top_k: 200, prompt: "\n" }),
  })
  .strict();

export type PretrainConfig = z.infer<typeof pretrainSchema>;

export function parsePretrainConfig(value: unknown, where: string): PretrainConfig {
  const r = pretrainSchema.safeParse(value ?? {});
  if (!r.success) {
    // An unknown key is usually a typo of a missing one: name it first.
    const issues = [...r.error.issues].sort(
      (a, b) => Number(b.code === "unrecognized_keys") - Number(a.code === "unrecognized_keys"),
    );
    const issue = issues[0];
    const path = issue?.path.join(".") || "(top level)";
    const detail =
      issue?.code === "unrecognized_keys"
        ? `unknown key ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}${closestKeys(issue.keys, issues)}`
        : issue?.message;
    throw new Error(`${where}: ${path}: ${detail}`);
  }
  return r.data;
}

/** " (did you mean "n_layer"?)" when a missing key in the same section is close to an unknown one. */
function closestKeys(unknown: string[], issues: z.core.$ZodIssue[]): string {
  const missing = issues.filter((i) => i.code === "invalid_type" && i.input === undefined).map((i) => i.path);
  const guesses = unknown.flatMap((k) =>
    missing
      .map((p) => String(p[p.length - 1]))
      .filter((m) => editDistance(k, m) <= 2)
      .map((m) => JSON.stringify(m)),
  );
  return guesses.length ? ` (did you mean ${guesses.join(", ")}?)` : "";
}

/** Reads a YAML config; `edit` changes the parsed value before validation (command-line overrides). */
export function readPretrainConfig(path: string, edit: (value: unknown) => unknown = (v) => v): PretrainConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new Error(`${path}: cannot read the config file`);
  }
  let value: unknown;
  try {
    value = parse(text);
  } catch (e) {
    throw new Error(`${path}: invalid YAML (${(e as Error).message.split("\n")[0]})`);
  }
  return parsePretrainConfig(edit(value), path);
}
