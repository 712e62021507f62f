// The tokenizer training stage: stream the inputs, count chunks, learn merges.
import { type ChunkCounts, countChunks } from "./chunk-count.ts";
import { patternSource } from "./patterns.ts";
import { SPECIAL_TOKENS, type Tokenizer } from "./tokenizer.ts";
import { minVocabSize, trainBpe } from "./trainer.ts";

export interface TrainTokenizerOptions {
  files: string[];
  /** how many times each file's text counts (default: once each), to weight a mix of sources */
  weights?: number[];
  vocabSize: number;
  /** gpt2 or gpt4 */
  pattern: string;
  threads: number;
}

export interface TrainTokenizerResult {
  tokenizer: Tokenizer;
  bytes: number;
  distinctChunks: number;
}

export async function trainTokenizer(o: TrainTokenizerOptions): Promise<TrainTokenizerResult> {
  const pattern = patternSource(o.pattern);
  const min = minVocabSize(SPECIAL_TOKENS);
  if (!Number.isInteger(o.vocabSize) || o.vocabSize < min) {
    throw new Error(
      `--vocab-size ${o.vocabSize} is too small: it needs at least 256 bytes + ${SPECIAL_TOKENS.length} special tokens = ${min}`,
    );
  }
  const { counts, bytes } = o.weights
    ? await weightedCounts(o.files, o.weights, pattern, o.threads)
    : await countChunks(o.files, pattern, o.threads);
  if (bytes === 0)
    throw new Error(`no text to train on: ${o.files.join(", ")} ${o.files.length > 1 ? "are" : "is"} empty`);
  const tokenizer = trainBpe(counts, { vocabSize: o.vocabSize, pattern, specialTokens: SPECIAL_TOKENS });
  return { tokenizer, bytes, distinctChunks: counts.size };
}

/** Chunk counts of each file times its weight, summed. */
async function weightedCounts(
  files: string[],
  weights: number[],
  pattern: string,
  threads: number,
): Promise<{ counts: ChunkCounts; bytes: number }> {
  if (weights.length !== files.length || weights.some((w) => !Number.isInteger(w) || w < 1))
    throw new Error(
      `tokenizer weights: one whole number >= 1 per file, got ${weights.join(", ")} for ${files.length} files`,
    );
  const counts: ChunkCounts = new Map();
  let bytes = 0;
  for (const [i, file] of files.entries()) {
    const one = await countChunks([file], pattern, threads);
    const w = weights[i] as number;
    for (const [chunk, n] of one.counts) counts.set(chunk, (counts.get(chunk) ?? 0) + n * w);
    bytes += one.bytes;
  }
  return { counts, bytes };
}
