// `npm run bench -- corpus`: throughput (MB/s of input) and peak RSS of `llmfab corpus`
// with the default pipeline on the State of the Union corpus repeated to about 100 MB,
// at 1 and 2 threads. Two inputs: the corpus repeated as is (exact duplicates, as the
// issue specifies: every copy after the first stops at exact dedup), and repeated with
// each copy made distinct (one changed sentence per document), so every document runs
// every step and near dedup has the copies to catch. The reference is the 10 MB/s target.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sotuDocuments } from "../src/data/corpora.ts";
import { measureProcess } from "./measure.ts";
import type { BenchRow } from "./tokenizer.ts";

const TARGET_MB_S = 10;
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

function writeInput(dir: string, distinct: boolean): { path: string; mb: number } {
  const docs = sotuDocuments();
  const once = docs.reduce((n, d) => n + Buffer.byteLength(d), 0);
  const copies = Math.round(100e6 / once);
  const lines: string[] = [];
  for (let c = 0; c < copies; c++)
    for (const d of docs)
      lines.push(JSON.stringify({ text: distinct ? `Copy ${c} of this address follows. ${d}` : d }));
  const path = join(dir, distinct ? "sotu-distinct.jsonl" : "sotu-repeated.jsonl");
  writeFileSync(path, `${lines.join("\n")}\n`);
  return { path, mb: (copies * once) / 1e6 };
}

export function corpusBench(emit: (row: BenchRow, text: string) => void, threadList: number[]): void {
  const dir = mkdtempSync(join(tmpdir(), "llmfab-bench-corpus-"));
  const cli = fileURLToPath(new URL("../bin/llmfab.js", import.meta.url));
  for (const distinct of [false, true]) {
    const input = writeInput(dir, distinct);
    const workload = distinct ? "sotu-distinct" : "sotu-repeated";
    for (const threads of threadList) {
      const out = join(dir, `out-${workload}-${threads}`);
      const m = measureProcess(process.execPath, [
        cli,
        "--threads",
        String(threads),
        "corpus",
        "--source",
        input.path,
        "--out",
        out,
        "--json",
      ]);
      const report = JSON.parse(m.stdout.split("\n").find((l) => l.startsWith("{")) as string) as {
        output: { train: { documents: number }; val: { documents: number } };
      };
      const kept = report.output.train.documents + report.output.val.documents;
      const mbs = input.mb / m.wallSeconds;
      emit(
        {
          bench: "corpus",
          metric: "mb_per_s",
          workload,
          threads,
          ours: round(mbs),
          ref: TARGET_MB_S,
          ratio: round(mbs / TARGET_MB_S),
          input_mb: round(input.mb, 1),
          wall_s: round(m.wallSeconds),
          peak_rss_mb: round(m.peakRssMb, 0),
          kept_documents: kept,
        },
        `corpus ${workload.padEnd(13)} ${threads}t: ${round(input.mb, 1)} MB in ${round(m.wallSeconds)} s = ${round(mbs)} MB/s (target ${TARGET_MB_S}: ${round(mbs / TARGET_MB_S)}x), peak RSS ${round(m.peakRssMb, 0)} MB, ${kept} documents kept`,
      );
      rmSync(out, { recursive: true, force: true });
    }
    rmSync(input.path);
  }
  rmSync(dir, { recursive: true, force: true });
}
