// The pretraining stage as `llmfab pretrain` runs it: data -> tokens -> train/val splits -> pretrain(). The data is a text
// corpus (tokenized here, by characters or a BPE tokenizer) or a directory of token
// shards written by `llmfab tokenize`.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadCorpus } from "../data/corpora.ts";
import { readShard } from "../io/shards.ts";
import { CHAR_TOKENIZER_FILE, CharTokenizer } from "../tokenizer/char.ts";
import { loadBpeTokenizer } from "../tokenizer/files.ts";
import { checkSplit, type Split, splitTokens } from "../train/batches.ts";
import { type PretrainConfig, readPretrainConfig } from "../train/config.ts";
import { type PretrainResult, pretrain, type TextCodec } from "../train/pretrain.ts";
import { bpeCodec, charCodec, loadModelCodec } from "./codec.ts";
import { SHARDS_META, type ShardsMeta } from "./tokenize.ts";

export interface PretrainCommand {
  config: string | PretrainConfig;
  data?: string;
  out: string;
  resume: boolean;
  quiet: boolean;
  threads: number;
}

interface Prepared {
  codec: TextCodec;
  train: Split;
  val: Split;
}

function fromShards(dir: string, config: PretrainConfig): Prepared {
  let meta: ShardsMeta;
  try {
    meta = JSON.parse(readFileSync(join(dir, SHARDS_META), "utf8")) as ShardsMeta;
  } catch {
    throw new Error(`${join(dir, SHARDS_META)}: unreadable shard metadata`);
  }
  const train = meta.shards.train.map((f) => readShard(join(dir, f)));
  const val = meta.shards.val.map((f) => readShard(join(dir, f)));
  checkSplit(train, "training", config.model.block_size, dir);
  checkSplit(val, "validation", config.model.block_size, dir);
  return { codec: bpeCodec(loadBpeTokenizer(dir)), train, val };
}

async function fromText(config: PretrainConfig, resumeDir: string | null): Promise<Prepared> {
  const text = await loadCorpus(config.data);
  // A resumed run keeps the vocabulary it started with.
  let codec: TextCodec;
  if (config.tokenizer !== "char") codec = bpeCodec(loadBpeTokenizer(config.tokenizer));
  else if (resumeDir && existsSync(join(resumeDir, CHAR_TOKENIZER_FILE))) codec = loadModelCodec(resumeDir);
  else codec = charCodec(CharTokenizer.fromText(text));
  const tokens = codec.encode(text);
  const [train, val] = splitTokens(tokens, config.val_fraction, config.model.block_size, config.data);
  return { codec, train, val };
}

export async function runPretrain(c: PretrainCommand): Promise<PretrainResult> {
  const config = typeof c.config === "string" ? readPretrainConfig(c.config) : c.config;
  if (c.data) config.data = c.data;
  const modelDir = join(c.out, "model");
  const isShards = existsSync(join(config.data, SHARDS_META));
  const { codec, train, val } = isShards
    ? fromShards(config.data, config)
    : await fromText(config, c.resume ? modelDir : null);
  return pretrain({ config, train, val, codec, outDir: c.out, resume: c.resume, threads: c.threads, quiet: c.quiet });
}
