// `llmfab tokenizer train|encode|decode` and `llmfab tokenize`.
import { existsSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { sotuText } from "../data/corpora.ts";
import { refuseExisting } from "../io/atomic.ts";
import { readTextFile } from "../io/text.ts";
import { numberArg } from "./options.ts";
import type { Runtime } from "./program.ts";

/** Training reads files; the built-in corpus is materialised into a temporary file first. */
function trainingFiles(paths: string[]): string[] {
  return paths.map((p) => {
    if (p === "sotu" && !existsSync(p)) {
      const tmp = join(process.env.TMPDIR ?? "/tmp", `llmfab-sotu-${process.pid}.txt`);
      writeFileSync(tmp, sotuText());
      return tmp;
    }
    if (!existsSync(p)) throw new Error(`${p}: no such file (and not a built-in corpus: sotu)`);
    if (statSync(p).isDirectory()) throw new Error(`${p}: is a directory; pass text files`);
    return p;
  });
}

function readInput(o: { text?: string; data?: string }, what: string): string {
  if (o.text !== undefined) return o.text;
  if (o.data) return readTextFile(o.data);
  throw new Error(`give the ${what} with --text or --data`);
}

export function registerTokenizerCommands(program: Command, runtime: Runtime): void {
  const tokenizer = program.command("tokenizer").description("train and use byte-level BPE tokenizers");

  tokenizer
    .command("train")
    .description("train a byte-level BPE tokenizer on text files")
    .requiredOption("--data <paths...>", "text files (or the built-in corpus: sotu)")
    .requiredOption("--vocab-size <n>", "vocabulary size, special tokens included", numberArg("vocabSize"))
    .option("--pattern <name>", "pre-tokenization regex: gpt2, gpt4 or gpt4-digits (one chunk per digit)", "gpt4")
    .option("--out <dir>", "directory for tokenizer.json, tokenizer_config.json, tokenizer.tiktoken", "runs/tokenizer")
    .action(async (o: { data: string[]; vocabSize: number; pattern: string; out: string }) => {
      const { trainTokenizer } = await import("../tokenizer/train.ts");
      const { saveTokenizer } = await import("../tokenizer/files.ts");
      refuseExisting(o.out);
      const started = performance.now();
      const files = trainingFiles(o.data);
      const temporary = files.filter((f) => !o.data.includes(f));
      const r = await trainTokenizer({
        files,
        vocabSize: o.vocabSize,
        pattern: o.pattern,
        threads: runtime.threads(),
      }).finally(() => {
        for (const f of temporary) rmSync(f, { force: true });
      });
      saveTokenizer(o.out, r.tokenizer);
      const s = (performance.now() - started) / 1000;
      console.log(
        `trained ${r.tokenizer.vocabSize} tokens on ${(r.bytes / 1e6).toFixed(1)} MB (${r.distinctChunks.toLocaleString()} distinct chunks) in ${s.toFixed(2)} s`,
      );
      console.log(`saved to ${o.out}`);
    });

  tokenizer
    .command("encode")
    .description("encode text: print the token count and bytes per token, or the ids")
    .requiredOption("--tokenizer <dir|name>", "tokenizer directory, or gpt2 / cl100k_base")
    .option("--text <string>", "text to encode")
    .option("--data <file>", "file to encode")
    .option("--ids", "print the ids as one JSON array", false)
    .action(async (o: { tokenizer: string; text?: string; data?: string; ids: boolean }) => {
      const { loadBpeTokenizer } = await import("../tokenizer/files.ts");
      const tok = loadBpeTokenizer(o.tokenizer);
      const text = readInput(o, "text");
      const ids = tok.encodeOrdinary(text);
      if (o.ids) console.log(JSON.stringify(ids));
      else
        console.log(
          `${ids.length} tokens, ${(Buffer.byteLength(text) / Math.max(1, ids.length)).toFixed(3)} bytes per token`,
        );
    });

  tokenizer
    .command("decode")
    .description("decode a JSON array of token ids to text")
    .requiredOption("--tokenizer <dir|name>", "tokenizer directory, or gpt2 / cl100k_base")
    .option("--text <json>", "the ids, e.g. [15496, 995]")
    .option("--data <file>", "file holding the JSON array")
    .action(async (o: { tokenizer: string; text?: string; data?: string }) => {
      const { loadBpeTokenizer } = await import("../tokenizer/files.ts");
      const tok = loadBpeTokenizer(o.tokenizer);
      let ids: unknown;
      try {
        ids = JSON.parse(readInput(o, "ids"));
      } catch {
        throw new Error("the ids must be a JSON array of integers");
      }
      if (!Array.isArray(ids) || !ids.every((x) => Number.isInteger(x)))
        throw new Error("the ids must be a JSON array of integers");
      process.stdout.write(tok.decode(ids as number[]));
      process.stdout.write("\n");
    });

  program
    .command("tokenize")
    .description("turn documents into train/val token shards for pretraining")
    .requiredOption("--tokenizer <dir|name>", "tokenizer directory, or gpt2 / cl100k_base")
    .requiredOption("--data <paths...>", "text/Markdown/JSONL files, folders, or the built-in corpus sotu")
    .requiredOption("--out <dir>", "directory for the shards")
    .option("--val-fraction <f>", "fraction held out for validation", numberArg("fraction"), 0.05)
    .action(async (o: { tokenizer: string; data: string[]; out: string; valFraction: number }) => {
      const { tokenizeCorpus } = await import("../pipeline/tokenize.ts");
      const meta = await tokenizeCorpus({
        tokenizer: o.tokenizer,
        data: o.data,
        out: o.out,
        valFraction: o.valFraction,
        threads: runtime.threads(),
      });
      const documents = meta.documents.train + meta.documents.val;
      const split =
        meta.split === "position"
          ? `${documents} document${documents === 1 ? "" : "s"}, split by position`
          : `${meta.documents.train} + ${meta.documents.val} documents`;
      console.log(
        `${split} -> ${meta.tokens.train.toLocaleString()} train + ${meta.tokens.val.toLocaleString()} val tokens (uint${meta.token_bytes * 8})`,
      );
      console.log(`${meta.bytes_per_token.toFixed(3)} bytes per token; shards in ${o.out}`);
    });
}
