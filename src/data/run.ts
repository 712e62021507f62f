// `llmfab corpus`: streams documents from the sources through the recipe's steps on
// worker threads, decides duplicates and the train/val split in input order on this
// thread, and writes JSONL shards plus a report. Memory is bounded by the batches in
// flight and the compact dedup index. A checkpoint (committed shards, the dedup index,
// the input position and the report so far) is written each time a training shard
// fills, so a killed run resumes where the last checkpoint left off and produces the
// same output as an uninterrupted one.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Worker } from "node:worker_threads";
import { writeFileAtomic } from "../io/atomic.ts";
import { snakeCaseKeys } from "../io/json.ts";
import { startWorker } from "../io/worker.ts";
import { DedupIndex } from "./dedup-index.ts";
import { type DocResult, processBatch, type RawDocument, StepRunner } from "./process.ts";
import type { Recipe } from "./recipe.ts";
import { type CorpusReport, emptyReport, recordOutput, recordRemoval, recordSkip, reportMarkdown } from "./report.ts";
import { ShardWriter } from "./shards.ts";
import { checkSources, readSources, type SourceEvent } from "./sources.ts";

export interface CorpusOptions {
  recipe: Recipe;
  out: string;
  threads: number;
  onProgress?: (p: CorpusProgress) => void;
  /** download retries and backoff (tests make them quick) */
  retries?: number;
  backoffMs?: number;
}

export interface CorpusProgress {
  documents: number;
  bytes: number;
  kept: number;
  seconds: number;
}

interface State {
  recipe: string;
  /** source events (documents and skips) fully accounted for */
  consumed: number;
  shards: { train: number; val: number };
  checkpoint: number;
  report: CorpusReport;
  done: boolean;
}

const STATE_DIR = ".state";
const BATCH_DOCS = 256;
const BATCH_BYTES = 4 << 20;
const WORKER_HEAP_MB = 256;

function recipeKey(recipe: Recipe): string {
  return createHash("sha256").update(JSON.stringify(recipe)).digest("hex");
}

/** The previous run's state, or null for a fresh output folder (refusing one that holds other files). */
function loadState(out: string, key: string): State | null {
  const path = join(out, STATE_DIR, "state.json");
  if (!existsSync(path)) {
    if (existsSync(out) && readdirSync(out).length > 0)
      throw new Error(`${out}: the output folder is not empty and holds no corpus run to resume; choose another --out`);
    return null;
  }
  const state = JSON.parse(readFileSync(path, "utf8")) as State;
  if (state.recipe !== key)
    throw new Error(`${out}: holds a run of a different recipe; choose another --out (or delete the folder)`);
  return state;
}

/** Removes what a crash may have left after the last checkpoint: temporary and uncommitted shards, stale indexes. */
function cleanAfterCrash(out: string, state: State | null): void {
  for (const split of ["train", "val"] as const) {
    const dir = join(out, split);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      const index = Number.parseInt(name, 10);
      if (name.startsWith(".") || !(index < (state?.shards[split] ?? 0))) rmSync(join(dir, name));
    }
  }
  const stateDir = join(out, STATE_DIR);
  if (!existsSync(stateDir)) return;
  for (const name of readdirSync(stateDir))
    if (name !== "state.json" && name !== `dedup-${state?.checkpoint}.bin`) rmSync(join(stateDir, name));
}

interface Pending {
  resolve: (results: DocResult[]) => void;
  reject: (e: Error) => void;
}

/** Processes batches on worker threads (or inline with one thread), results in submission order. */
class BatchRunner {
  private readonly workers: { worker: Worker; queue: Pending[] }[] = [];
  private next = 0;

  static async start(recipe: Recipe, threads: number): Promise<BatchRunner> {
    return new BatchRunner(recipe, threads, threads <= 1 ? await StepRunner.create(recipe.steps) : null);
  }

  private constructor(
    recipe: Recipe,
    threads: number,
    private readonly inline: StepRunner | null,
  ) {
    for (let i = 0; !inline && i < threads; i++) {
      const worker = startWorker(
        new URL("./process-worker.ts", import.meta.url),
        { steps: recipe.steps },
        // A worker's heap otherwise grows lazily toward a quarter of the machine's memory.
        { maxOldGenerationSizeMb: WORKER_HEAP_MB },
      );
      // A worker answers its batches in the order it got them: one queue of callers per worker.
      const queue: Pending[] = [];
      worker.on("message", (results: DocResult[]) => queue.shift()?.resolve(results));
      worker.on("error", (e: Error) => {
        for (const p of queue.splice(0)) p.reject(e);
      });
      this.workers.push({ worker, queue });
    }
  }

  /** Batches worth keeping in flight. */
  get capacity(): number {
    return Math.max(1, 2 * this.workers.length);
  }

  run(docs: RawDocument[]): Promise<DocResult[]> {
    if (this.inline) return Promise.resolve(processBatch(this.inline, docs));
    const w = this.workers[this.next++ % this.workers.length] as { worker: Worker; queue: Pending[] };
    return new Promise((resolve, reject) => {
      w.queue.push({ resolve, reject });
      w.worker.postMessage(docs);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}

export async function runCorpus(o: CorpusOptions): Promise<CorpusReport> {
  const { recipe, out } = o;
  checkSources(recipe.sources);
  const key = recipeKey(recipe);
  const state = loadState(out, key);
  if (state?.done) return writeReport(out, state.report);
  cleanAfterCrash(out, state);
  const stateDir = join(out, STATE_DIR);
  mkdirSync(stateDir, { recursive: true });

  // Each dedup step has its own key set in the index.
  const dedupSlot = new Map<number, number>();
  recipe.steps.forEach((s, i) => {
    if (s.name === "exact-dedup" || s.name === "near-dedup") dedupSlot.set(i, dedupSlot.size);
  });
  const index = state
    ? DedupIndex.fromBytes(readFileSync(join(stateDir, `dedup-${state.checkpoint}.bin`)))
    : DedupIndex.empty(dedupSlot.size);
  const report = state?.report ?? emptyReport(recipe.steps.map((s) => s.name));
  const secondsBefore = report.seconds;
  const started = performance.now();
  let consumed = state?.consumed ?? 0;
  let checkpoint = state?.checkpoint ?? 0;
  const writers = {
    train: new ShardWriter(join(out, "train"), state?.shards.train ?? 0),
    val: new ShardWriter(join(out, "val"), state?.shards.val ?? 0),
  };

  const saveCheckpoint = (done: boolean) => {
    writers.train.commit();
    writers.val.commit();
    report.output.train.shards = writers.train.index;
    report.output.val.shards = writers.val.index;
    report.seconds = secondsBefore + (performance.now() - started) / 1000;
    checkpoint++;
    writeFileAtomic(join(stateDir, `dedup-${checkpoint}.bin`), index.toBytes());
    const next: State = {
      recipe: key,
      consumed,
      shards: { train: writers.train.index, val: writers.val.index },
      checkpoint,
      report,
      done,
    };
    writeFileAtomic(join(stateDir, "state.json"), JSON.stringify(next));
    rmSync(join(stateDir, `dedup-${checkpoint - 1}.bin`), { force: true });
  };

  const account = (event: SourceEvent, result: DocResult | undefined) => {
    consumed++;
    if (event.kind === "skip") {
      recordSkip(report, event.source, event.reason);
      return;
    }
    if (!result) throw new Error(`internal: no result for ${event.source}`);
    report.input.documents++;
    report.input.bytes += result.bytesIn;
    let bytes = result.bytesIn;
    for (let i = 0; i < recipe.steps.length; i++) {
      const step = report.steps[i] as CorpusReport["steps"][number];
      step.docsIn++;
      step.bytesIn += bytes;
      const keys = result.fingerprints[i];
      if (keys && index.seen(dedupSlot.get(i) as number, keys)) {
        recordRemoval(step, "duplicate", event.source, result.text, recipe.examples);
        return;
      }
      if (result.knownDuplicateAt === i)
        throw new Error(`internal: ${event.source} was not the duplicate its worker expected`);
      if (result.removedAt === i) {
        recordRemoval(step, result.reason, event.source, result.text, recipe.examples);
        return;
      }
      bytes = result.bytesOut[i] as number;
      step.docsOut++;
      step.bytesOut += bytes;
      if (result.changed[i]) step.modified++;
    }
    // A document's split follows from its content alone: deterministic, and the same text never lands in both.
    const split = (result.hash[1] as number) / 2 ** 32 < recipe.valFraction ? "val" : "train";
    writers[split].write(`${JSON.stringify({ text: result.text, meta: result.meta })}\n`, bytes);
    recordOutput(report, split, result.text, bytes, result.meta);
    const w = writers[split];
    if (w.docs >= recipe.shardDocs || w.bytes >= recipe.shardBytes) saveCheckpoint(false);
  };

  const runner = await BatchRunner.start(recipe, o.threads);
  const inflight: { events: SourceEvent[]; results: Promise<DocResult[]> }[] = [];
  const drainOne = async () => {
    const batch = inflight.shift();
    if (!batch) return;
    const results = await batch.results;
    let k = 0;
    for (const event of batch.events) account(event, event.kind === "doc" ? results[k++] : undefined);
    o.onProgress?.({
      documents: report.input.documents,
      bytes: report.input.bytes,
      kept: report.output.train.documents + report.output.val.documents,
      seconds: secondsBefore + (performance.now() - started) / 1000,
    });
  };
  let events: SourceEvent[] = [];
  let docs: RawDocument[] = [];
  let batchChars = 0;
  const submit = async () => {
    if (events.length === 0) return;
    inflight.push({ events, results: runner.run(docs) });
    events = [];
    docs = [];
    batchChars = 0;
    while (inflight.length >= runner.capacity) await drainOne();
  };
  try {
    let skip = consumed; // events a previous run already accounted for
    const sourceOptions = { textField: recipe.textField, retries: o.retries, backoffMs: o.backoffMs };
    for await (const event of readSources(recipe.sources, sourceOptions)) {
      if (skip > 0) {
        skip--;
        continue;
      }
      events.push(event);
      if (event.kind === "doc") {
        docs.push({ text: event.text, format: event.format, source: event.source });
        batchChars += event.text.length;
      }
      if (docs.length >= BATCH_DOCS || batchChars >= BATCH_BYTES) await submit();
    }
    await submit();
    while (inflight.length > 0) await drainOne();
    saveCheckpoint(true);
  } catch (e) {
    writers.train.abandon();
    writers.val.abandon();
    throw e;
  } finally {
    await runner.close();
  }
  return writeReport(out, report);
}

function writeReport(out: string, report: CorpusReport): CorpusReport {
  writeFileAtomic(join(out, "report.json"), `${JSON.stringify(snakeCaseKeys(report), null, 2)}\n`);
  writeFileAtomic(join(out, "report.md"), `${reportMarkdown(report)}\n`);
  return report;
}
