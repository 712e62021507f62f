// A tiny untrained chat model for the server and browser tests.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeDirAtomic } from "../src/io/atomic.ts";
import { makeConfig } from "../src/model/config.ts";
import { modelFiles } from "../src/model/directory.ts";
import { initModel } from "../src/model/model.ts";
import { tokenizerFiles } from "../src/tokenizer/files.ts";
import { trainTokenizer } from "../src/tokenizer/train.ts";

/**
 * A tiny untrained model with a BPE tokenizer that has the chat special tokens.
 * paddedRows: embedding rows beyond the tokenizer's vocabulary, as many published models have.
 */
export async function tinyChatModel(paddedRows = 0): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "llmfab-serve-"));
  writeFileSync(join(dir, "text.txt"), "Hello there, how are you today? I am fine, thank you. ".repeat(50));
  const { tokenizer } = await trainTokenizer({
    files: [join(dir, "text.txt")],
    vocabSize: 320,
    pattern: "gpt4",
    threads: 1,
  });
  const model = initModel(
    makeConfig({
      arch: "gpt2",
      vocabSize: tokenizer.vocabSize + paddedRows,
      blockSize: 96,
      nLayer: 1,
      nHead: 2,
      nEmbd: 32,
    }),
    1,
  );
  const modelDir = join(dir, "model");
  writeDirAtomic(modelDir, { ...modelFiles(model), ...tokenizerFiles(tokenizer) });
  return modelDir;
}
