// The tokenizer training stage: stream the inputs, count chunks, learn merges.
import { countChunks } from "./chunk-count.ts";
import { patternSource } from "./patterns.ts";
import { SPECIAL_TOKENS, type Tokenizer } from "./tokenizer.ts";
import { minVocabSize, trainBpe } from "./trainer.ts";

export interface TrainTokenizerOptions {
  files: string[];
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
  const { counts, bytes } = await countChunks(o.files, pattern, o.threads);
  if (bytes === 0)
    throw new Error(`no text to train on: ${o.files.join(", ")} ${o.files.length > 1 ? "are" : "is"} empty`);
  const tokenizer = trainBpe(counts, { vocabSize: o.vocabSize, pattern, specialTokens: SPECIAL_TOKENS });
  return { tokenizer, bytes, distinctChunks: counts.size };
}
