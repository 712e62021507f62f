// Where tokenizers live on disk: a directory with tokenizer.json (Hugging Face) and
// tokenizer_config.json, optionally a .tiktoken rank file; or a built-in name.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import { parseTokenizerJson, toTokenizerConfigJson, toTokenizerJson } from "./huggingface.ts";
import { BUILTIN_ENCODINGS, type BuiltinEncoding, loadBuiltinEncoding, toTiktokenFile } from "./tiktoken.ts";
import type { Tokenizer } from "./tokenizer.ts";

export const TOKENIZER_FILE = "tokenizer.json";
export const TOKENIZER_CONFIG_FILE = "tokenizer_config.json";
export const TIKTOKEN_FILE = "tokenizer.tiktoken";

/** The files that save a BPE tokenizer (into a tokenizer or model directory). */
export function tokenizerFiles(tok: Tokenizer, modelMaxLength?: number): Record<string, string> {
  return {
    [TOKENIZER_FILE]: toTokenizerJson(tok),
    [TOKENIZER_CONFIG_FILE]: toTokenizerConfigJson(tok, modelMaxLength),
    [TIKTOKEN_FILE]: toTiktokenFile(tok.ranks),
  };
}

export function saveTokenizer(dir: string, tok: Tokenizer): void {
  for (const [name, content] of Object.entries(tokenizerFiles(tok))) writeFileAtomic(join(dir, name), content);
}

/** A BPE tokenizer: a built-in encoding name (gpt2, cl100k_base) or a directory with tokenizer.json. */
export function loadBpeTokenizer(spec: string): Tokenizer {
  if ((BUILTIN_ENCODINGS as readonly string[]).includes(spec)) return loadBuiltinEncoding(spec as BuiltinEncoding);
  const path = spec.endsWith(".json") ? spec : join(spec, TOKENIZER_FILE);
  if (!existsSync(path)) {
    throw new Error(
      `${spec}: no ${TOKENIZER_FILE} there (and not a built-in encoding: ${BUILTIN_ENCODINGS.join(", ")})`,
    );
  }
  return parseTokenizerJson(readFileSync(path, "utf8"), path);
}
