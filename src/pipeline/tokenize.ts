// The tokenize stage: documents -> token shards (train and validation), split by
// document with a deterministic hash, each document preceded by <|endoftext|>.
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readDocuments } from "../data/documents.ts";
import { ShardWriter, tokenWidth } from "../io/shards.ts";
import { EncoderPool } from "../tokenizer/batch.ts";
import { loadBpeTokenizer, saveTokenizer } from "../tokenizer/files.ts";

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

export async function tokenizeCorpus(o: TokenizeOptions): Promise<ShardsMeta> {
  if (!(o.valFraction > 0 && o.valFraction < 1))
    throw new Error(`--val-fraction must be between 0 and 1, got ${o.valFraction}`);
  const tok = loadBpeTokenizer(o.tokenizer);
  const eot = tok.specialTokens.get("<|endoftext|>");
  const width = tokenWidth(tok.vocabSize);
  const limit = o.shardTokens ?? 1 << 28;
  mkdirSync(o.out, { recursive: true });
  const meta: ShardsMeta = {
    vocab_size: tok.vocabSize,
    token_bytes: width,
    documents: { train: 0, val: 0 },
    tokens: { train: 0, val: 0 },
    bytes: 0,
    bytes_per_token: 0,
    shards: { train: [], val: [] },
  };
  const writers: Record<"train" | "val", ShardWriter | null> = { train: null, val: null };
  const writerFor = (split: "train" | "val"): ShardWriter => {
    const current = writers[split];
    if (current && current.tokens < limit) return current;
    current?.close();
    const name = `${split}_${String(meta.shards[split].length).padStart(4, "0")}.bin`;
    meta.shards[split].push(name);
    writers[split] = new ShardWriter(join(o.out, name), width);
    return writers[split] as ShardWriter;
  };
  const pool = new EncoderPool(o.tokenizer, o.threads);
  try {
    let batch: string[] = [];
    const flush = async () => {
      const encoded = await pool.encode(batch);
      encoded.forEach((ids, i) => {
        const text = batch[i] as string;
        const split = isValidation(text, o.valFraction) ? "val" : "train";
        const w = writerFor(split);
        if (eot !== undefined) w.write([eot]);
        w.write(ids);
        meta.documents[split]++;
        meta.tokens[split] += ids.length + (eot !== undefined ? 1 : 0);
        meta.bytes += Buffer.byteLength(text);
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
    writers.train?.close();
    writers.val?.close();
  }
  if (meta.documents.train === 0 || meta.documents.val === 0) {
    const empty = meta.documents.train === 0 ? "training" : "validation";
    throw new Error(
      `no document went to the ${empty} split (${meta.documents.train + meta.documents.val} documents, --val-fraction ${o.valFraction}); the split is by whole documents, so give more documents or change --val-fraction`,
    );
  }
  meta.bytes_per_token = meta.bytes / (meta.tokens.train + meta.tokens.val);
  saveTokenizer(o.out, tok);
  writeFileSync(join(o.out, SHARDS_META), `${JSON.stringify(meta, null, 2)}\n`);
  return meta;
}
