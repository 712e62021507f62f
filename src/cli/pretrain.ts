// `llmfab pretrain`: corpus -> character tokens -> train/val split -> pretrain().
import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadCorpus } from "../data/corpora.ts";
import { CHAR_TOKENIZER_FILE, CharTokenizer } from "../tokenizer/char.ts";
import { loadTokenizer } from "../tokenizer/load.ts";
import { splitTokens } from "../train/batches.ts";
import { type PretrainConfig, readPretrainConfig } from "../train/config.ts";
import { type PretrainResult, pretrain, type TextCodec } from "../train/pretrain.ts";

export interface PretrainCommand {
  config: string | PretrainConfig;
  data?: string;
  out: string;
  resume: boolean;
  quiet: boolean;
  threads: number;
}

export async function runPretrain(c: PretrainCommand): Promise<PretrainResult> {
  const config = typeof c.config === "string" ? readPretrainConfig(c.config) : c.config;
  if (c.data) config.data = c.data;
  const text = await loadCorpus(config.data);
  const modelDir = join(c.out, "model");
  // A resumed run keeps the vocabulary it started with.
  const tokenizer =
    c.resume && existsSync(join(modelDir, CHAR_TOKENIZER_FILE))
      ? loadTokenizer(modelDir)
      : CharTokenizer.fromText(text);
  const tokens = tokenizer.encode(text, config.data);
  const [train, val] = splitTokens(tokens, config.val_fraction, config.model.block_size, config.data);
  const codec: TextCodec = {
    vocabSize: tokenizer.vocabSize,
    encode: (s) => tokenizer.encode(s),
    decode: (ids) => tokenizer.decode(ids),
    files: () => ({ [CHAR_TOKENIZER_FILE]: tokenizer.toJSON() }),
  };
  return pretrain({ config, train, val, codec, outDir: c.out, resume: c.resume, threads: c.threads, quiet: c.quiet });
}
