// The tokenize stage: documents -> token shards (train and validation), split by
// document with a deterministic hash (or by position when there are too few documents),
// each document preceded by <|endoftext|>.
import { createHash } from "node:crypto";
import { mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { readDocuments } from "../data/documents.ts";
import { buildDirAtomic, writeFileAtomic } from "../io/atomic.ts";
import { readShard, ShardWriter, type TokenArray, tokenWidth } from "../io/shards.ts";
import { checkRange } from "../options/ranges.ts";
import { EncoderPool } from "../tokenizer/batch.ts";
import { loadBpeTokenizer, saveTokenizer } from "../tokenizer/files.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";

export const SHARDS_META = "meta.json";

export interface TokenizeOptions {
  /** tokenizer directory or built-in name */
  tokenizer: string;
  data: string[];
  out: string;
  valFraction: number;
  threads: number;
  /** tokens per shard file before a new one starts */
  shardTokens?: number;
}

export interface ShardsMeta {
  vocab_size: number;
  token_bytes: 2 | 4;
  /** "documents": whole documents by hash; "position": the last val fraction of the token stream */
  split: "documents" | "position";
  /** documents read, by the split their hash chose (with split "position", all tokens were cut by position) */
  documents: { train: number; val: number };
  tokens: { train: number; val: number };
  bytes: number;
  bytes_per_token: number;
  shards: { train: string[]; val: string[] };
}

/** True when the hash of the document puts it in the validation split. */
export function isValidation(text: string, valFraction: number): boolean {
  const h = createHash("sha256").update(text).digest().readUInt32LE(0);
  return h / 2 ** 32 < valFraction;
}

type SplitName = "train" | "val";

/** Tokens per shard file by default (512 MiB of uint16). */
const SHARD_TOKENS = 1 << 28;

/** Shard files of one split, each up to `limit` tokens, named train_0000.bin, ... */
class SplitWriter {
  private writer: ShardWriter | null = null;
  readonly names: string[] = [];
  tokens = 0;

  constructor(
    private readonly dir: string,
    private readonly split: SplitName,
    private readonly width: 2 | 4,
    private readonly limit: number,
  ) {}

  write(ids: ArrayLike<number>): void {
    if (!this.writer || this.writer.tokens >= this.limit) {
      this.writer?.close();
      const name = `${this.split}_${String(this.names.length).padStart(4, "0")}.bin`;
      this.names.push(name);
      this.writer = new ShardWriter(join(this.dir, name), this.width);
    }
    this.writer.write(ids);
    this.tokens += ids.length;
  }

  close(): void {
    this.writer?.close();
    this.writer = null;
  }
}

/**
 * Writes shards into `out`, which must not exist yet (or be empty). Documents go to train
 * or validation by a hash of their text; when that leaves a split empty (one text file,
 * a handful of documents), the token stream is split by position instead, its last
 * valFraction held out, as `llmfab pretrain` splits a text file. A failed run leaves nothing.
 */
export async function tokenizeCorpus(o: TokenizeOptions): Promise<ShardsMeta> {
  checkRange("--val-fraction", o.valFraction, "fraction");
  const tok = loadBpeTokenizer(o.tokenizer);
  return buildDirAtomic(o.out, async (dir) => {
    const meta = await writeShards(o, tok, dir);
    if (meta.documents.train === 0 || meta.documents.val === 0) await splitByPosition(dir, meta, o);
    meta.bytes_per_token = meta.bytes / (meta.tokens.train + meta.tokens.val);
    saveTokenizer(dir, tok);
    writeFileAtomic(join(dir, SHARDS_META), `${JSON.stringify(meta, null, 2)}\n`);
    return meta;
  });
}

async function writeShards(o: TokenizeOptions, tok: Tokenizer, dir: string): Promise<ShardsMeta> {
  const eot = tok.specialTokens.get("<|endoftext|>");
  const width = tokenWidth(tok.vocabSize);
  const limit = o.shardTokens ?? SHARD_TOKENS;
  const writers = {
    train: new SplitWriter(dir, "train", width, limit),
    val: new SplitWriter(dir, "val", width, limit),
  };
  const documents = { train: 0, val: 0 };
  let bytes = 0;
  const pool = new EncoderPool(o.tokenizer, o.threads);
  try {
    let batch: string[] = [];
    const flush = async () => {
      const encoded = await pool.encode(batch);
      encoded.forEach((ids, i) => {
        const text = batch[i] as string;
        const split = isValidation(text, o.valFraction) ? "val" : "train";
        if (eot !== undefined) writers[split].write([eot]);
        writers[split].write(ids);
        documents[split]++;
        bytes += Buffer.byteLength(text);
      });
      batch = [];
    };
    for await (const doc of readDocuments(o.data)) {
      batch.push(doc.text);
      if (batch.length >= 64) await flush();
    }
    if (batch.length) await flush();
  } finally {
    await pool.close();
    writers.train.close();
    writers.val.close();
  }
  if (documents.train + documents.val === 0) throw new Error(`${o.data.join(", ")}: no documents to tokenize`);
  return {
    vocab_size: tok.vocabSize,
    token_bytes: width,
    split: "documents",
    documents,
    tokens: { train: writers.train.tokens, val: writers.val.tokens },
    bytes,
    bytes_per_token: 0,
    shards: { train: writers.train.names, val: writers.val.names },
  };
}

/** Rewrites the shards of the one non-empty split as train (the first part) and val (the last valFraction). */
async function splitByPosition(dir: string, meta: ShardsMeta, o: TokenizeOptions): Promise<void> {
  const from: SplitName = meta.documents.train > 0 ? "train" : "val";
  const shards = meta.shards[from].map((name) => readShard(join(dir, name)));
  const total = shards.reduce((n, s) => n + s.length, 0);
  const trainTokens = Math.floor(total * (1 - o.valFraction));
  if (trainTokens === 0 || trainTokens === total)
    throw new Error(
      `${o.data.join(", ")}: ${total} tokens are too few to hold out --val-fraction ${o.valFraction} for validation`,
    );
  const next = join(dir, "by-position");
  mkdirSync(next);
  const limit = o.shardTokens ?? SHARD_TOKENS;
  const writers = {
    train: new SplitWriter(next, "train", meta.token_bytes, limit),
    val: new SplitWriter(next, "val", meta.token_bytes, limit),
  };
  // Written in pieces of at most `limit` tokens, so the shards keep their size.
  const write = (w: SplitWriter, tokens: TokenArray) => {
    for (let at = 0; at < tokens.length; at += limit) w.write(tokens.subarray(at, at + limit));
  };
  let position = 0;
  for (const shard of shards) {
    const cut = Math.min(shard.length, Math.max(0, trainTokens - position));
    if (cut > 0) write(writers.train, shard.subarray(0, cut));
    if (cut < shard.length) write(writers.val, shard.subarray(cut));
    position += shard.length;
  }
  writers.train.close();
  writers.val.close();
  for (const name of meta.shards[from]) rmSync(join(dir, name));
  for (const name of [...writers.train.names, ...writers.val.names]) renameSync(join(next, name), join(dir, name));
  rmSync(next, { recursive: true });
  meta.split = "position";
  meta.tokens = { train: writers.train.tokens, val: writers.val.tokens };
  meta.shards = { train: writers.train.names, val: writers.val.names };
}
