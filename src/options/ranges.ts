// The allowed range of every numeric setting, in one place: the CLI's flags, the config
// files and the server's request schemas all check against these, so they cannot disagree.
import { z } from "zod";

export interface Range {
  integer?: boolean;
  /** inclusive bounds */
  min?: number;
  max?: number;
  /** exclusive bounds */
  above?: number;
  below?: number;
}

const count = (min: number): Range => ({ integer: true, min });

export const RANGES = {
  // sampling (llmfab sample / chat, the server, pretraining's samples)
  temperature: { min: 0, max: 2 },
  topP: { above: 0, max: 1 },
  topK: count(0),
  maxTokens: count(1),
  penalty: { min: -2, max: 2 },
  choices: { integer: true, min: 1, max: 8 },
  seed: count(0),
  // training
  lr: { above: 0, max: 10 },
  epochs: { above: 0 },
  batchSize: count(1),
  gradAccum: count(1),
  steps: count(1),
  warmup: count(0),
  trainableLayers: count(1),
  loraRank: count(1),
  loraAlpha: { above: 0 },
  dropout: { min: 0, below: 1 },
  fraction: { above: 0, below: 1 },
  clip: { above: 0, below: 1 },
  klBeta: { min: 0, max: 10 },
  // data and tokenizers
  valFraction: { min: 0, below: 1 },
  vocabSize: count(257),
  conversations: count(1),
  heldout: count(0),
  shardDocs: count(1),
  // retrieval
  passageTokens: { integer: true, min: 16, max: 4096 },
  passageOverlap: count(0),
  searchK: { integer: true, min: 1, max: 100 },
  margin: { min: 0, max: 10 },
  zeroStage: { integer: true, min: 0, max: 1 },
  // running
  threads: { integer: true, min: 1, max: 4096 },
  port: { integer: true, min: 0, max: 65535 },
  slots: { integer: true, min: 1, max: 256 },
  queue: count(0),
} as const satisfies Record<string, Range>;

export type RangeName = keyof typeof RANGES;

/** "an integer >= 1", "a number in [0, 2]", "a number > 0 and < 1". */
export function describeRange(r: Range): string {
  const kind = r.integer ? "an integer" : "a number";
  if (r.min !== undefined && r.max !== undefined) return `${kind} in [${r.min}, ${r.max}]`;
  const bounds = [
    r.min !== undefined ? `>= ${r.min}` : null,
    r.above !== undefined ? `> ${r.above}` : null,
    r.max !== undefined ? `<= ${r.max}` : null,
    r.below !== undefined ? `< ${r.below}` : null,
  ].filter((b) => b !== null);
  return bounds.length ? `${kind} ${bounds.join(" and ")}` : kind;
}

export function inRange(value: number, r: Range): boolean {
  return (
    Number.isFinite(value) &&
    (!r.integer || Number.isInteger(value)) &&
    (r.min === undefined || value >= r.min) &&
    (r.max === undefined || value <= r.max) &&
    (r.above === undefined || value > r.above) &&
    (r.below === undefined || value < r.below)
  );
}

/** Throws "NAME must be <range>, got VALUE" when value is outside the named range. */
export function checkRange(name: string, value: number, range: RangeName): number {
  const r: Range = RANGES[range];
  if (!inRange(value, r)) throw new Error(`${name} must be ${describeRange(r)}, got ${value}`);
  return value;
}

/** The range as a zod number schema, with the same message as checkRange. */
export function zodRange(range: RangeName): z.ZodNumber {
  const r: Range = RANGES[range];
  const message = `must be ${describeRange(r)}`;
  let s = r.integer ? z.number({ error: message }).int({ error: message }) : z.number({ error: message });
  if (r.min !== undefined) s = s.min(r.min, { error: message });
  if (r.max !== undefined) s = s.max(r.max, { error: message });
  if (r.above !== undefined) s = s.gt(r.above, { error: message });
  if (r.below !== undefined) s = s.lt(r.below, { error: message });
  return s;
}
