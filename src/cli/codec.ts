// The tokenizer of a run or a model directory, as the text codec the stages use.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CHAR_TOKENIZER_FILE, CharTokenizer } from "../tokenizer/char.ts";
import { loadBpeTokenizer, TOKENIZER_FILE, tokenizerFiles } from "../tokenizer/files.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import type { TextCodec } from "../train/pretrain.ts";

export function bpeCodec(tok: Tokenizer): TextCodec {
  return {
    vocabSize: tok.vocabSize,
    encode: (text) => Int32Array.from(tok.encodeOrdinary(text)),
    decode: (ids) => tok.decode(ids),
    files: () => tokenizerFiles(tok),
  };
}

export function charCodec(tok: CharTokenizer): TextCodec {
  return {
    vocabSize: tok.vocabSize,
    encode: (text) => tok.encode(text),
    decode: (ids) => tok.decode(ids),
    files: () => ({ [CHAR_TOKENIZER_FILE]: tok.toJSON() }),
  };
}

/** The tokenizer saved in a model directory: BPE (tokenizer.json) or character-level. */
export function loadModelCodec(dir: string): TextCodec {
  if (existsSync(join(dir, TOKENIZER_FILE))) return bpeCodec(loadBpeTokenizer(dir));
  const charPath = join(dir, CHAR_TOKENIZER_FILE);
  if (existsSync(charPath)) return charCodec(CharTokenizer.fromJSON(readFileSync(charPath, "utf8"), charPath));
  throw new Error(`${dir}: no tokenizer found (${TOKENIZER_FILE} or ${CHAR_TOKENIZER_FILE})`);
}
