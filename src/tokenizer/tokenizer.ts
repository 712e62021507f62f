// A byte-level BPE tokenizer: regex pre-tokenization, merge ranks, special tokens.
// Encoding is exact for any text, and for any bytes (invalid UTF-8 too) through
// encodeBytes/decodeBytes.

import { bytePairEncode, type Ranks } from "./bpe.ts";
import { binaryToBytes } from "./bytes.ts";
import { compilePattern } from "./patterns.ts";

/** The chat and document special tokens every llmfab tokenizer carries. */
export const SPECIAL_TOKENS = [
  "<|endoftext|>",
  "<|bos|>",
  "<|system_start|>",
  "<|system_end|>",
  "<|user_start|>",
  "<|user_end|>",
  "<|assistant_start|>",
  "<|assistant_end|>",
  "<|tool_call_start|>",
  "<|tool_call_end|>",
  "<|tool_result_start|>",
  "<|tool_result_end|>",
] as const;

export interface TokenizerSpec {
  /** the pre-tokenization regex, as tiktoken writes it */
  pattern: string;
  /** token bytes (binary string) -> id */
  ranks: Ranks;
  /** special token text -> id */
  specialTokens: Map<string, number>;
  /** merges in training order (pairs of ids), when known */
  merges?: [number, number][];
}

export interface EncodeOptions {
  /** special tokens that may be produced from their text; by default none are */
  allowedSpecial?: "all" | ReadonlySet<string>;
}

const CACHE_LIMIT = 200_000;

export class Tokenizer {
  readonly pattern: string;
  readonly ranks: Ranks;
  readonly specialTokens: Map<string, number>;
  readonly merges: [number, number][] | undefined;
  private readonly regex: RegExp;
  private readonly tokens: string[] = [];
  /** special token id -> its text as a binary (UTF-8 bytes) string */
  private readonly specialBytes = new Map<number, string>();
  private readonly cache = new Map<string, number[]>();
  private specialRegex: RegExp | null = null;

  constructor(spec: TokenizerSpec) {
    this.pattern = spec.pattern;
    this.ranks = spec.ranks;
    this.specialTokens = spec.specialTokens;
    this.merges = spec.merges;
    this.regex = compilePattern(spec.pattern);
    for (const [bin, id] of spec.ranks) this.tokens[id] = bin;
    for (let b = 0; b < 256; b++) {
      if (!spec.ranks.has(String.fromCharCode(b))) throw new Error(`the vocabulary has no token for byte ${b}`);
    }
    for (const [text, id] of spec.specialTokens) {
      if (this.tokens[id] !== undefined) throw new Error(`special token ${text} reuses id ${id} of an ordinary token`);
      this.specialBytes.set(id, Buffer.from(text, "utf8").toString("latin1"));
    }
  }

  /** One more than the largest id. */
  get vocabSize(): number {
    let max = this.tokens.length - 1;
    for (const id of this.specialTokens.values()) max = Math.max(max, id);
    return max + 1;
  }

  specialId(text: string): number {
    const id = this.specialTokens.get(text);
    if (id === undefined) throw new Error(`the tokenizer has no special token ${text}`);
    return id;
  }

  /** Encodes text with no special tokens: their text is encoded as ordinary text. */
  encodeOrdinary(text: string, out: number[] = []): number[] {
    const regex = this.regex;
    regex.lastIndex = 0;
    for (let m = regex.exec(text); m !== null; m = regex.exec(text)) this.encodeChunk(m[0], out);
    return out;
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const allowed = opts.allowedSpecial;
    if (!allowed || (allowed !== "all" && allowed.size === 0)) return this.encodeOrdinary(text);
    const names = allowed === "all" ? [...this.specialTokens.keys()] : [...allowed];
    const split = allowed === "all" ? this.allSpecialRegex() : specialRegexOf(names);
    const out: number[] = [];
    let last = 0;
    for (const m of text.matchAll(split)) {
      this.encodeOrdinary(text.slice(last, m.index), out);
      out.push(this.specialId(m[0]));
      last = m.index + m[0].length;
    }
    this.encodeOrdinary(text.slice(last), out);
    return out;
  }

  /** Encodes arbitrary bytes: valid UTF-8 runs as text, any other byte on its own. */
  encodeBytes(bytes: Uint8Array): number[] {
    const out: number[] = [];
    let start = 0;
    let i = 0;
    const decoder = new TextDecoder();
    while (i < bytes.length) {
      const n = utf8SequenceLength(bytes, i);
      if (n > 0) {
        i += n;
        continue;
      }
      if (i > start) this.encodeOrdinary(decoder.decode(bytes.subarray(start, i)), out);
      bytePairEncode(String.fromCharCode(bytes[i] as number), this.ranks, out);
      i++;
      start = i;
    }
    if (i > start) this.encodeOrdinary(decoder.decode(bytes.subarray(start, i)), out);
    return out;
  }

  /** The bytes of the tokens; special tokens as their text, or nothing with skipSpecial. */
  decodeBytes(ids: ArrayLike<number>, skipSpecial = false): Uint8Array {
    let bin = "";
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      const token = this.tokens[id] ?? this.specialBytes.get(id);
      if (token === undefined) throw new Error(`token id ${id} is not in the vocabulary`);
      if (!(skipSpecial && this.specialBytes.has(id))) bin += token;
    }
    return binaryToBytes(bin);
  }

  /** Decodes to text; bytes that are not valid UTF-8 become U+FFFD. */
  decode(ids: ArrayLike<number>, skipSpecial = false): string {
    return new TextDecoder().decode(this.decodeBytes(ids, skipSpecial));
  }

  /** A decoder for a stream of ids that never splits a multi-byte character. */
  streamDecoder(skipSpecial = false): { push(ids: ArrayLike<number>): string; flush(): string } {
    const decoder = new TextDecoder();
    return {
      push: (ids) => decoder.decode(this.decodeBytes(ids, skipSpecial), { stream: true }),
      flush: () => decoder.decode(),
    };
  }

  /** The bytes of a token, as a binary string (undefined for special tokens). */
  tokenBytes(id: number): string | undefined {
    return this.tokens[id];
  }

  private encodeChunk(chunk: string, out: number[]): void {
    const cached = this.cache.get(chunk);
    if (cached) {
      for (const id of cached) out.push(id);
      return;
    }
    const ids: number[] = [];
    bytePairEncode(utf8OfChunk(chunk), this.ranks, ids);
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(chunk, ids);
    for (const id of ids) out.push(id);
  }

  private allSpecialRegex(): RegExp {
    this.specialRegex ??= specialRegexOf([...this.specialTokens.keys()]);
    return this.specialRegex;
  }
}

function specialRegexOf(names: string[]): RegExp {
  // Longest first, so a special token that is a prefix of another never wins.
  const sorted = [...names].sort((a, b) => b.length - a.length);
  return new RegExp(sorted.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "g");
}

/** The UTF-8 bytes of a chunk as a binary string; ASCII chunks are their own encoding. */
function utf8OfChunk(chunk: string): string {
  for (let i = 0; i < chunk.length; i++) {
    if (chunk.charCodeAt(i) > 127) return Buffer.from(chunk, "utf8").toString("latin1");
  }
  return chunk;
}

/** The length of the valid UTF-8 sequence starting at i, or 0 if the byte there starts none. */
function utf8SequenceLength(b: Uint8Array, i: number): number {
  const c = b[i] as number;
  if (c < 0x80) return 1;
  const cont = (k: number) => i + k < b.length && ((b[i + k] as number) & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const c1 = b[i + 1] as number;
    if (c === 0xe0 && c1 < 0xa0) return 0; // overlong
    if (c === 0xed && c1 >= 0xa0) return 0; // surrogate
    return cont(1) && cont(2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const c1 = b[i + 1] as number;
    if (c === 0xf0 && c1 < 0x90) return 0;
    if (c === 0xf4 && c1 >= 0x90) return 0;
    return cont(1) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}
