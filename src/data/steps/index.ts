// The step registry: each recipe step name with its options schema and constructor.
import { z } from "zod";
import { c4Options, c4Step } from "./c4.ts";
import { exactDedupStep, nearDedupOptions, nearDedupStep } from "./dedup.ts";
import { finewebOptions, finewebStep } from "./fineweb.ts";
import { gopherQualityOptions, gopherQualityStep, gopherRepetitionOptions, gopherRepetitionStep } from "./gopher.ts";
import { htmlOptions, htmlStep } from "./html.ts";
import { languageOptions, languageStep } from "./language.ts";
import { DEFAULT_STEPS, STEP_NAMES, type StepName } from "./names.ts";
import { normalizeStep } from "./normalize.ts";
import { piiOptions, piiStep } from "./pii.ts";
import type { Step } from "./step.ts";

const noOptions = z.object({}).strict();

interface StepDefinition {
  options: z.ZodType<object>;
  make: (options: never) => Step;
  about: string;
}

const define = <S extends z.ZodType<object>>(options: S, make: (o: z.infer<S>) => Step, about: string) =>
  ({ options, make, about }) as StepDefinition;

export const STEPS = {
  normalize: define(noOptions, normalizeStep, "Unicode NFC, control characters and unpaired surrogates removed"),
  html: define(htmlOptions, htmlStep, "main text of HTML pages (Mozilla Readability)"),
  language: define(languageOptions, languageStep, "language identification (ELD) with a threshold"),
  "gopher-repetition": define(gopherRepetitionOptions, gopherRepetitionStep, "repeated lines, paragraphs, n-grams"),
  "gopher-quality": define(gopherQualityOptions, gopherQualityStep, "word counts and lengths, symbols, stop words"),
  c4: define(c4Options, c4Step, "C4 line filters and sentence count"),
  fineweb: define(finewebOptions, finewebStep, "FineWeb line punctuation, short lines, duplicate lines"),
  pii: define(piiOptions, piiStep, "emails, phone numbers and IP addresses replaced"),
  "exact-dedup": define(noOptions, exactDedupStep, "exact duplicates by content hash"),
  "near-dedup": define(nearDedupOptions, nearDedupStep, "near duplicates by MinHash LSH"),
} as const satisfies Record<StepName, StepDefinition>;

export { DEFAULT_STEPS, STEP_NAMES, type StepName };

export interface StepSpec {
  name: StepName;
  options: object;
}

/** Validates a step's options (filling defaults); `where` names the place for errors. */
export function resolveStep(name: string, options: unknown, where: string): StepSpec {
  if (!(name in STEPS)) throw new Error(`${where}: unknown step "${name}" (known: ${STEP_NAMES.join(", ")})`);
  const def = STEPS[name as StepName];
  const parsed = def.options.safeParse(options ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.length ? `.${issue.path.join(".")}` : "";
    throw new Error(`${where} (${name}${path}): ${issue?.message}`);
  }
  return { name: name as StepName, options: parsed.data };
}

export function buildStep(spec: StepSpec): Step {
  return (STEPS[spec.name].make as (o: object) => Step)(spec.options);
}
