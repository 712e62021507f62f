// tiktoken's formats: the GPT-2 and cl100k_base vocabularies shipped in the `tiktoken`
// npm package, and `.tiktoken` rank files (one "base64(token bytes) rank" per line).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { Ranks } from "./bpe.ts";
import { bytesToBinary } from "./bytes.ts";
import { Tokenizer } from "./tokenizer.ts";

export const BUILTIN_ENCODINGS = ["gpt2", "cl100k_base"] as const;
export type BuiltinEncoding = (typeof BUILTIN_ENCODINGS)[number];

interface EncoderFile {
  pat_str: string;
  special_tokens: Record<string, number>;
  bpe_ranks: string;
}

/** A pretrained encoding from the rank data in the `tiktoken` package. */
export function loadBuiltinEncoding(name: BuiltinEncoding): Tokenizer {
  const path = createRequire(import.meta.url).resolve(`tiktoken/encoders/${name}.json`);
  const file = JSON.parse(readFileSync(path, "utf8")) as EncoderFile;
  // Each line: a label, the rank of its first token, then base64 tokens of consecutive ranks.
  const ranks: Ranks = new Map();
  for (const line of file.bpe_ranks.split("\n")) {
    if (!line) continue;
    const [, offset, ...tokens] = line.split(" ");
    const first = Number(offset);
    tokens.forEach((t, i) => {
      ranks.set(Buffer.from(t, "base64").toString("latin1"), first + i);
    });
  }
  return new Tokenizer({ pattern: file.pat_str, ranks, specialTokens: new Map(Object.entries(file.special_tokens)) });
}

export function toTiktokenFile(ranks: Ranks): string {
  const lines = [...ranks]
    .sort((a, b) => a[1] - b[1])
    .map(([bin, id]) => `${Buffer.from(bin, "latin1").toString("base64")} ${id}`);
  return `${lines.join("\n")}\n`;
}

export function parseTiktokenFile(text: string, where: string): Ranks {
  const ranks: Ranks = new Map();
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    const m = /^([A-Za-z0-9+/=]+) (\d+)$/.exec(line.trim());
    if (!m) throw new Error(`${where}:${i + 1}: expected "base64 rank", got ${JSON.stringify(line.slice(0, 40))}`);
    ranks.set(bytesToBinary(Buffer.from(m[1] as string, "base64")), Number(m[2]));
  });
  return ranks;
}
