// `npm run bench -- search`: the search index over the State of the Union addresses — build
// speed (MB/s of text), index size, query latency p50/p99 and top-5 retrieval of 100
// half-remembered sentences — beside the reference a user without an index would write: a
// scan of every passage counting the query's words, on the same passages and queries.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildIndex, openIndex } from "../src/retrieval/index.ts";
import { search } from "../src/retrieval/search.ts";
import { sotuQueries } from "../test/fixtures/sotu-queries.ts";
import type { BenchRow } from "./tokenizer.ts";

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] as number;
const words = (text: string) => text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];

export async function searchBench(emit: (row: BenchRow, text: string) => void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "llmfab-bench-search-"));
  const path = join(dir, "sotu.sqlite");
  const started = performance.now();
  const built = await buildIndex(["sotu"], path);
  const seconds = (performance.now() - started) / 1000;
  const mb = built.chars / 1e6;
  const size = statSync(path).size / 1e6;
  emit(
    {
      bench: "search",
      metric: "index_mb_per_s",
      ours: round(mb / seconds),
      ref: null,
      ratio: null,
      index_mb: round(size),
      passages: built.passages,
    },
    `search index: ${built.added} addresses, ${built.passages} passages, ${mb.toFixed(1)} MB of text in ${seconds.toFixed(2)} s = ${(mb / seconds).toFixed(1)} MB/s; index ${size.toFixed(1)} MB on disk`,
  );

  const db = openIndex(path, "read");
  const queries = sotuQueries(100);
  const passages = db
    .prepare("SELECT d.title AS title, p.text AS text FROM passages p JOIN documents d ON d.id = p.doc")
    .all() as { title: string; text: string }[];
  const bags = passages.map((p) => new Set(words(p.text)));
  const scan = (query: string) => {
    const terms = [...new Set(words(query))];
    return bags
      .map((bag, i) => [terms.reduce((n, t) => n + (bag.has(t) ? 1 : 0), 0), i] as const)
      .sort((a, b) => b[0] - a[0])
      .slice(0, 5)
      .map(([, i]) => passages[i]?.title);
  };
  const measure = (find: (q: string) => (string | undefined)[], rounds: number) => {
    const times: number[] = [];
    let found = 0;
    for (let r = 0; r < rounds; r++)
      for (const q of queries) {
        const t = performance.now();
        const titles = find(q.query);
        times.push(performance.now() - t);
        if (r === 0 && titles.includes(q.title)) found++;
      }
    return { p50: quantile(times, 0.5), p99: quantile(times, 0.99), found };
  };
  const ours = measure((q) => search(db, q, { k: 5 }).map((h) => h.title), 5);
  const ref = measure(scan, 1);
  db.close();
  rmSync(dir, { recursive: true, force: true });
  emit(
    {
      bench: "search",
      metric: "query_p50_ms",
      ours: round(ours.p50, 3),
      ref: round(ref.p50, 3),
      ratio: round(ref.p50 / ours.p50),
      p99_ms: round(ours.p99, 3),
      ref_p99_ms: round(ref.p99, 3),
    },
    `search query latency: p50 ${ours.p50.toFixed(2)} ms, p99 ${ours.p99.toFixed(2)} ms (passage scan: p50 ${ref.p50.toFixed(1)} ms, p99 ${ref.p99.toFixed(1)} ms) = ${(ref.p50 / ours.p50).toFixed(0)}x`,
  );
  emit(
    {
      bench: "search",
      metric: "top5_of_100",
      ours: ours.found,
      ref: ref.found,
      ratio: round(ours.found / Math.max(1, ref.found)),
    },
    `search top-5 retrieval of 100 half-remembered sentences: ${ours.found}/100 (BM25) vs ${ref.found}/100 (word-count scan)`,
  );
}
