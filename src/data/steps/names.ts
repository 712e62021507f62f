// The cleaning steps' names and the default order, apart from the steps themselves so
// that the CLI can list them without loading the cleaning libraries.

export const STEP_NAMES = [
  "normalize",
  "html",
  "language",
  "gopher-repetition",
  "gopher-quality",
  "c4",
  "fineweb",
  "pii",
  "exact-dedup",
  "near-dedup",
] as const;

export type StepName = (typeof STEP_NAMES)[number];

/** FineWeb's order: extract, identify the language, filter, scrub, then deduplicate. */
export const DEFAULT_STEPS: StepName[] = [...STEP_NAMES];
