// `llmfab index` and `llmfab search`: a full-text search index over documents and feeds,
// and queries against it.
import type { Command } from "commander";
import { jsonLine } from "../io/json.ts";
import { numberArg } from "./options.ts";

interface IndexCommand {
  data: string[];
  out: string;
  maxTokens: number;
  overlap: number;
}

interface SearchCommand {
  index: string;
  k: number;
  since?: string;
  json: boolean;
}

/** A --since value: a date or an instant, as an ISO string the index compares with. */
function isoSince(value: string): string {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new Error(`--since ${value}: not a date (use YYYY-MM-DD or an ISO 8601 time)`);
  return new Date(ms).toISOString();
}

export function registerRetrievalCommands(program: Command): void {
  program
    .command("index")
    .description("build or update a search index (SQLite FTS5, BM25) over documents and RSS/Atom feeds")
    .requiredOption(
      "--data <sources...>",
      "files or folders (txt, md, html, pdf, jsonl, parquet, rss/atom xml), URLs (feeds or pages), or sotu",
    )
    .requiredOption("--out <index>", "the index file (created, or updated: changed documents are replaced)")
    .option("--max-tokens <n>", "most words per passage", numberArg("passageTokens"), 160)
    .option("--overlap <n>", "words repeated between neighbouring passages", numberArg("passageOverlap"), 32)
    .action(async (o: IndexCommand) => {
      const { buildIndex, indexStats, openIndex } = await import("../retrieval/index.ts");
      const started = performance.now();
      let last = started;
      const progress = await buildIndex(o.data, o.out, {
        passages: { maxTokens: o.maxTokens, overlapTokens: o.overlap },
        onDocument: (_doc, p) => {
          if (performance.now() - last < 2000) return;
          last = performance.now();
          process.stderr.write(`${p.added + p.updated + p.unchanged} documents, ${p.passages} passages\n`);
        },
      });
      const seconds = (performance.now() - started) / 1000;
      for (const s of progress.skipped) console.error(`skipped ${s.source}: ${s.reason}`);
      const db = openIndex(o.out, "read");
      const stats = indexStats(db);
      db.close();
      console.log(
        `${o.out}: ${progress.added} added, ${progress.updated} updated, ${progress.unchanged} unchanged, ${progress.removed} removed; ` +
          `${progress.passages} passages written, ${(progress.chars / 1e6 / seconds).toFixed(2)} MB/s; ` +
          `the index holds ${stats.documents} documents, ${stats.passages} passages`,
      );
    });

  program
    .command("search")
    .description("search an index: the top passages for a query, with their sources")
    .argument("<query>", "what to look for")
    .requiredOption("--index <index>", "an index made by llmfab index")
    .option("--k <n>", "how many passages", numberArg("searchK"), 5)
    .option("--since <date>", "only passages dated on or after this date (YYYY-MM-DD)")
    .option("--json", "one JSON line per passage", false)
    .action(async (query: string, o: SearchCommand) => {
      const { openIndex } = await import("../retrieval/index.ts");
      const { search } = await import("../retrieval/search.ts");
      const { formatHits } = await import("../retrieval/context.ts");
      const db = openIndex(o.index, "read");
      try {
        const hits = search(db, query, { k: o.k, since: o.since === undefined ? undefined : isoSince(o.since) });
        if (o.json) for (const hit of hits) process.stdout.write(jsonLine(hit));
        else console.log(hits.length ? formatHits(hits) : "(nothing found)");
      } finally {
        db.close();
      }
    });
}
