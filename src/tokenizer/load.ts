import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CHAR_TOKENIZER_FILE, CharTokenizer } from "./char.ts";

/** The tokenizer saved in a model directory. */
export function loadTokenizer(dir: string): CharTokenizer {
  const path = join(dir, CHAR_TOKENIZER_FILE);
  if (!existsSync(path)) throw new Error(`${dir}: no tokenizer found (${CHAR_TOKENIZER_FILE} is missing)`);
  return CharTokenizer.fromJSON(readFileSync(path, "utf8"), path);
}
