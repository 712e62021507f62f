// `llmfab corpus`: raw public text in, clean deduplicated JSONL shards and a report out.
import { existsSync } from "node:fs";
import { join } from "node:path";
import cliProgress from "cli-progress";
import type { Command } from "commander";
import type { CorpusProgress } from "../data/run.ts";
import type { SourceSpec } from "../data/sources.ts";
import { DEFAULT_STEPS } from "../data/steps/names.ts";
import { jsonLine } from "../io/json.ts";
import { numberArg } from "./options.ts";
import type { Runtime } from "./program.ts";

interface CorpusCommand {
  recipe?: string;
  source?: string[];
  urls?: string[];
  steps?: string[];
  textField: string;
  valFraction: number;
  shardDocs?: number;
  out: string;
  json: boolean;
}

function progressReporter(totalBytes: number): { update(p: CorpusProgress): void; stop(): void } {
  const line = (p: CorpusProgress) =>
    `${p.documents} docs (${(p.documents / Math.max(p.seconds, 1e-3)).toFixed(0)}/s), ${(p.bytes / 1e6).toFixed(1)} MB (${(p.bytes / 1e6 / Math.max(p.seconds, 1e-3)).toFixed(2)} MB/s), kept ${p.kept}`;
  if (!process.stderr.isTTY) {
    let last = 0;
    return {
      update(p) {
        if (p.seconds - last < 5) return;
        last = p.seconds;
        process.stderr.write(`${line(p)}\n`);
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: "{bar} {percentage}% | {line} | ETA {eta_formatted}", stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(Math.max(1, totalBytes), 0, { line: "" });
  return {
    update(p) {
      bar.setTotal(Math.max(totalBytes, p.bytes));
      bar.update(p.bytes, { line: line(p) });
    },
    stop() {
      bar.stop();
    },
  };
}

export function registerCorpusCommands(program: Command, runtime: Runtime): void {
  program
    .command("corpus")
    .description("collect and clean a corpus: extraction, language id, quality filters, PII, dedup, train/val split")
    .option("--recipe <file>", "a YAML recipe (sources, steps, options); see configs/corpus-sotu.yaml")
    .option(
      "--source <specs...>",
      "sotu, tinyshakespeare, a file or folder (txt, md, html, jsonl, json, parquet, pdf, .gz), or a URL",
    )
    .option("--urls <files...>", "files listing URLs to download, one per line (optionally followed by a sha256)")
    .option("--steps <names...>", `steps in order (default: ${DEFAULT_STEPS.join(" ")})`)
    .option("--text-field <name>", "JSON field / Parquet column holding the text", "text")
    .option("--val-fraction <f>", "share of documents for validation", numberArg("valFraction"), 0.01)
    .option("--shard-docs <n>", "documents per output shard (and between checkpoints)", numberArg("shardDocs"))
    .requiredOption("--out <dir>", "output folder: train/*.jsonl, val/*.jsonl, report.md, report.json")
    .option("--json", "print the report as JSON instead of Markdown", false)
    .action(async (o: CorpusCommand) => {
      const { parseRecipe, readRecipe } = await import("../data/recipe.ts");
      const { reportMarkdown } = await import("../data/report.ts");
      const { runCorpus } = await import("../data/run.ts");
      const { estimateBytes } = await import("../data/sources.ts");
      if (o.recipe && (o.source || o.urls || o.steps))
        throw new Error("--recipe already names sources and steps; leave out --source, --urls and --steps");
      const sources: SourceSpec[] = [...(o.source ?? []), ...(o.urls ?? []).map((urls) => ({ urls }))];
      if (!o.recipe && sources.length === 0) throw new Error("give --recipe FILE, or --source (and/or --urls)");
      const recipe = o.recipe
        ? readRecipe(o.recipe)
        : parseRecipe(
            {
              sources,
              ...(o.steps ? { steps: o.steps } : {}),
              text_field: o.textField,
              val_fraction: o.valFraction,
              ...(o.shardDocs !== undefined ? { shard_docs: o.shardDocs } : {}),
            },
            "command line",
          );
      const progress = progressReporter(estimateBytes(recipe.sources));
      let report: Awaited<ReturnType<typeof runCorpus>>;
      try {
        report = await runCorpus({ recipe, out: o.out, threads: runtime.threads(), onProgress: progress.update });
      } finally {
        progress.stop();
      }
      if (o.json) process.stdout.write(jsonLine(report));
      else console.log(reportMarkdown(report));
      const written = ["train", "val", "report.md"].filter((f) => existsSync(join(o.out, f)));
      console.error(`wrote ${written.map((f) => join(o.out, f)).join(", ")}`);
    });
}
