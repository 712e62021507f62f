// Pre-tokenization: text is split into chunks by a regex before byte-pair encoding, so
// merges never cross a word, number or whitespace boundary. The patterns are GPT-2's,
// GPT-4's (tiktoken's cl100k_base), and GPT-4's with every digit its own chunk (as Llama's
// and DeepSeek's tokenizers split digits, so a model can learn arithmetic digit by digit
// instead of memorizing one token per number), written for JavaScript: `\s` becomes
// \p{White_Space} (Rust's `\s`, which tiktoken uses) and GPT-4's (?i:...) group is
// spelled out, since Node 20 has no inline flags.

export const PATTERN_NAMES = ["gpt2", "gpt4", "gpt4-digits"] as const;
export type PatternName = (typeof PATTERN_NAMES)[number];

/** The patterns as tiktoken and Hugging Face tokenizer.json files write them. */
export const PATTERN_SOURCES: Record<PatternName, string> = {
  gpt2: String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
  gpt4: String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
  "gpt4-digits": String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
};

/** Rewrites a tiktoken/Rust pattern into an equivalent JavaScript regex source. */
export function toJsPattern(source: string): string {
  return source
    .replace(
      /\(\?i:([^)]*)\)/g,
      (_, body: string) => `(?:${body.replace(/[a-zA-Z]/g, (c) => `[${c.toLowerCase()}${c.toUpperCase()}]`)})`,
    )
    .replace(/\\s/g, "\\p{White_Space}")
    .replace(/\\S/g, "\\P{White_Space}");
}

export function patternSource(name: string): string {
  if (!(PATTERN_NAMES as readonly string[]).includes(name)) {
    throw new Error(`unknown pattern ${JSON.stringify(name)} (known: ${PATTERN_NAMES.join(", ")})`);
  }
  return PATTERN_SOURCES[name as PatternName];
}

export function compilePattern(source: string): RegExp {
  try {
    return new RegExp(toJsPattern(source), "gu");
  } catch (e) {
    throw new Error(`invalid pre-tokenization pattern ${JSON.stringify(source)}: ${(e as Error).message}`);
  }
}
