// Runs the document steps over a batch of documents (on a worker, or on the main thread
// when running single-threaded) and records what each step did, so the main thread can
// replay the outcome in input order, decide duplicates, and count everything.

import { KeySet } from "./dedup-index.ts";
import { EXAMPLE_CHARS } from "./report.ts";
import { buildStep, type StepSpec } from "./steps/index.ts";
import { Doc, type Meta, type Step } from "./steps/step.ts";

export interface RawDocument {
  text: string;
  format: "text" | "html";
  source: string;
}

export interface DocResult {
  bytesIn: number;
  /** UTF-8 bytes after each step that ran */
  bytesOut: number[];
  /** whether each step that ran rewrote the text */
  changed: boolean[];
  /** the step that removed the document, or -1 */
  removedAt: number;
  reason: string;
  /** per step: the dedup keys, or null for document steps */
  fingerprints: (Uint32Array | null)[];
  /** the text at the end (or the start of it, when removed) */
  text: string;
  meta: Meta;
  /** content hash of the final text: decides the train/val split */
  hash: Uint32Array;
  /** the step after which processing stopped because the document is surely an exact duplicate, or -1 */
  knownDuplicateAt: number;
}

/** The steps of a recipe, plus what this thread has seen, to skip work on exact duplicates. */
export class StepRunner {
  readonly steps: Step[];
  /** index of the exact-dedup step when it is the first dedup step, else -1 */
  private readonly exactAt: number;
  private seen = new KeySet();

  /** Builds the steps and waits for those that load a model. */
  static async create(specs: StepSpec[]): Promise<StepRunner> {
    const runner = new StepRunner(specs);
    await Promise.all(runner.steps.map((s) => (s.kind === "document" ? s.init?.() : undefined)));
    return runner;
  }

  private constructor(specs: StepSpec[]) {
    this.steps = specs.map(buildStep);
    const firstDedup = this.steps.findIndex((s) => s.kind === "dedup");
    this.exactAt = firstDedup >= 0 && specs[firstDedup]?.name === "exact-dedup" ? firstDedup : -1;
  }

  /**
   * True if this thread already passed the same text through the exact-dedup step. Batches
   * reach a thread in input order, so that text came earlier and is in the main thread's
   * index by the time this document is accounted: the main thread will call it a
   * duplicate, and the steps after it need not run. (Bounded: forgets past a million.)
   */
  surelyDuplicate(step: number, keys: Uint32Array): boolean {
    if (step !== this.exactAt) return false;
    if (this.seen.size > 1_000_000) this.seen = new KeySet();
    return !this.seen.add(keys[0] as number, keys[1] as number);
  }
}

export function processDocument(runner: StepRunner, raw: RawDocument): DocResult {
  const steps = runner.steps;
  const doc = new Doc(raw.text, raw.format, { source: raw.source });
  let bytes = Buffer.byteLength(raw.text);
  const result: DocResult = {
    bytesIn: bytes,
    bytesOut: [],
    changed: [],
    removedAt: -1,
    reason: "",
    fingerprints: [],
    text: "",
    meta: doc.meta,
    hash: new Uint32Array(2),
    knownDuplicateAt: -1,
  };
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i] as Step;
    const before = doc.text;
    if (step.kind === "dedup") {
      const keys = step.fingerprint(doc);
      result.fingerprints.push(keys);
      if (runner.surelyDuplicate(i, keys)) {
        result.knownDuplicateAt = i;
        break;
      }
    } else {
      result.fingerprints.push(null);
      let verdict: ReturnType<typeof step.run>;
      try {
        verdict = step.run(doc);
      } catch (e) {
        verdict = { keep: false, reason: `error: ${(e as Error).message}` };
      }
      if (!verdict.keep) {
        result.removedAt = i;
        result.reason = verdict.reason;
        break;
      }
    }
    const changed = doc.text !== before;
    if (changed) bytes = Buffer.byteLength(doc.text);
    result.bytesOut.push(bytes);
    result.changed.push(changed);
  }
  // Only kept documents need their whole text back on the main thread; the rest, a report example.
  const kept = result.removedAt < 0 && result.knownDuplicateAt < 0;
  result.text = kept ? doc.text : doc.text.slice(0, EXAMPLE_CHARS);
  if (kept) result.hash = doc.contentHash();
  return result;
}

export function processBatch(runner: StepRunner, docs: RawDocument[]): DocResult[] {
  return docs.map((d) => processDocument(runner, d));
}
