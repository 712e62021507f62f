// The data report: documents and bytes in and out of every step, what each filter
// removed (with examples), skipped sources, language and length histograms. Plain JSON
// data, so a checkpoint can save it and a resumed run carries on counting.
import type { Meta } from "./steps/step.ts";

export interface Removal {
  count: number;
  examples: { source: string; text: string }[];
}

export interface StepReport {
  name: string;
  docsIn: number;
  docsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** documents kept with rewritten text */
  modified: number;
  removed: Record<string, Removal>;
}

export interface SplitReport {
  documents: number;
  bytes: number;
  shards: number;
}

export interface CorpusReport {
  input: { documents: number; bytes: number };
  skipped: { count: number; sources: { source: string; reason: string }[] };
  steps: StepReport[];
  output: { train: SplitReport; val: SplitReport };
  languages: Record<string, number>;
  lengths: Record<string, number>;
  seconds: number;
}

const MAX_SKIPS_LISTED = 200;
export const EXAMPLE_CHARS = 300;
/** Upper bounds (characters) of the length histogram's buckets. */
const LENGTH_BUCKETS = [100, 300, 1000, 3000, 10_000, 30_000, 100_000];

export function emptyReport(stepNames: string[]): CorpusReport {
  const split = () => ({ documents: 0, bytes: 0, shards: 0 });
  return {
    input: { documents: 0, bytes: 0 },
    skipped: { count: 0, sources: [] },
    steps: stepNames.map((name) => ({
      name,
      docsIn: 0,
      docsOut: 0,
      bytesIn: 0,
      bytesOut: 0,
      modified: 0,
      removed: {},
    })),
    output: { train: split(), val: split() },
    languages: {},
    lengths: {},
    seconds: 0,
  };
}

export function recordSkip(r: CorpusReport, source: string, reason: string): void {
  r.skipped.count++;
  if (r.skipped.sources.length < MAX_SKIPS_LISTED) r.skipped.sources.push({ source, reason });
}

export function recordRemoval(step: StepReport, reason: string, source: string, text: string, examples: number): void {
  const removal = step.removed[reason] ?? { count: 0, examples: [] };
  step.removed[reason] = removal;
  removal.count++;
  if (removal.examples.length < examples) removal.examples.push({ source, text: text.slice(0, EXAMPLE_CHARS) });
}

function lengthBucket(chars: number): string {
  const i = LENGTH_BUCKETS.findIndex((b) => chars < b);
  if (i < 0) return `>= ${LENGTH_BUCKETS.at(-1)}`;
  return `${i === 0 ? 0 : LENGTH_BUCKETS[i - 1]}-${LENGTH_BUCKETS[i]}`;
}

export function recordOutput(r: CorpusReport, split: "train" | "val", text: string, bytes: number, meta: Meta): void {
  r.output[split].documents++;
  r.output[split].bytes += bytes;
  if (typeof meta.language === "string") r.languages[meta.language] = (r.languages[meta.language] ?? 0) + 1;
  const bucket = lengthBucket(text.length);
  r.lengths[bucket] = (r.lengths[bucket] ?? 0) + 1;
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(2);
const pct = (part: number, whole: number) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : "-");
const oneLine = (s: string) => s.replace(/\s+/g, " ").replace(/\|/g, "\\|").slice(0, 160);

export function reportMarkdown(r: CorpusReport): string {
  const out: string[] = ["# Corpus report", ""];
  const kept = r.output.train.documents + r.output.val.documents;
  out.push(
    `Input: ${r.input.documents} documents, ${mb(r.input.bytes)} MB. Output: ${kept} documents ` +
      `(${pct(kept, r.input.documents)}), ${mb(r.output.train.bytes + r.output.val.bytes)} MB — ` +
      `train ${r.output.train.documents} in ${r.output.train.shards} shards, val ${r.output.val.documents}. ` +
      `${r.seconds.toFixed(1)} s.`,
    "",
    "## Steps",
    "",
    "| step | docs in | docs out | removed | modified | MB in | MB out |",
    "|---|---:|---:|---:|---:|---:|---:|",
  );
  for (const s of r.steps)
    out.push(
      `| ${s.name} | ${s.docsIn} | ${s.docsOut} | ${s.docsIn - s.docsOut} (${pct(s.docsIn - s.docsOut, s.docsIn)}) | ${s.modified} | ${mb(s.bytesIn)} | ${mb(s.bytesOut)} |`,
    );
  out.push("", "## Removed, by reason", "");
  for (const s of r.steps) {
    const reasons = Object.entries(s.removed).sort((a, b) => b[1].count - a[1].count);
    if (reasons.length === 0) continue;
    out.push(`### ${s.name}`, "");
    for (const [reason, removal] of reasons) {
      out.push(`- **${reason}**: ${removal.count} (${pct(removal.count, s.docsIn)})`);
      for (const e of removal.examples) out.push(`  - \`${e.source}\`: ${oneLine(e.text)}`);
    }
    out.push("");
  }
  if (r.skipped.count > 0) {
    out.push("## Skipped sources", "", `${r.skipped.count} sources could not be read:`, "");
    for (const s of r.skipped.sources) out.push(`- \`${s.source}\`: ${s.reason}`);
    if (r.skipped.count > r.skipped.sources.length)
      out.push(`- ... and ${r.skipped.count - r.skipped.sources.length} more`);
    out.push("");
  }
  const histogram = (title: string, counts: Record<string, number>) => {
    const rows = Object.entries(counts);
    if (rows.length === 0) return;
    out.push(`## ${title}`, "", "| | documents | |", "|---|---:|---|");
    const max = Math.max(...rows.map(([, n]) => n));
    for (const [k, n] of rows) out.push(`| ${k} | ${n} | ${"#".repeat(Math.max(1, Math.round((30 * n) / max)))} |`);
    out.push("");
  };
  histogram("Languages (output)", Object.fromEntries(Object.entries(r.languages).sort((a, b) => b[1] - a[1])));
  const order = (k: string) => Number.parseInt(k.replace(/^>= /, ""), 10) + (k.startsWith(">=") ? 1e9 : 0);
  histogram(
    "Lengths in characters (output)",
    Object.fromEntries(Object.entries(r.lengths).sort((a, b) => order(a[0]) - order(b[0]))),
  );
  return out.join("\n");
}
