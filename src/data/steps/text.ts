// Shared text measurements for the quality filters: one pass splits a document into
// tokens (words, and runs of one punctuation character, roughly as NLTK's word tokenizer
// does for English) with a 32-bit hash per token, so n-gram statistics run on integers.

export const SPACE = 0;
export const LETTER = 1;
export const DIGIT = 2;
export const SYMBOL = 3;

/** Character classes of the Basic Multilingual Plane, filled lazily (0 = not yet known). */
const classes = new Uint8Array(65536);
const isLetter = /\p{L}|\p{M}/u;
const isDigit = /\p{N}/u;
const isSpace = /\s/u;

export function charClass(code: number): number {
  const known = classes[code] as number;
  return known !== 0 ? known - 1 : classify(code);
}

function classify(code: number): number {
  const c = String.fromCharCode(code);
  // Surrogate halves belong to characters outside the BMP (CJK extensions, emoji): count as letters.
  const cls =
    code >= 0xd800 && code <= 0xdfff
      ? LETTER
      : isSpace.test(c)
        ? SPACE
        : isLetter.test(c)
          ? LETTER
          : isDigit.test(c)
            ? DIGIT
            : SYMBOL;
  classes[code] = cls + 1;
  return cls;
}

export interface Tokens {
  count: number;
  /** UTF-16 length of each token */
  lengths: Int32Array;
  hashes: Int32Array;
  /** 1 for a word (letters or digits), 0 for punctuation and symbols */
  isWord: Uint8Array;
  /** 1 for a token holding at least one letter */
  hasLetter: Uint8Array;
  /** Gopher's stop words (the, be, to, of, and, that, have, with) among the tokens */
  stopWords: number;
}

const STOP_WORDS = new Set(["the", "be", "to", "of", "and", "that", "have", "with"]);
// Stop words are 2-4 letters starting with one of these: a cheap test before the set lookup.
const STOP_INITIALS = new Set([..."tboahw"].map((c) => c.charCodeAt(0)));

const isApostrophe = (code: number) => code === 0x27 || code === 0x2019;

/** Splits text into word and punctuation tokens; an apostrophe inside a word keeps it whole. */
export function tokenize(text: string): Tokens {
  let cap = Math.max(16, text.length >> 2);
  let lengths = new Int32Array(cap);
  let hashes = new Int32Array(cap);
  let isWord = new Uint8Array(cap);
  let hasLetter = new Uint8Array(cap);
  let count = 0;
  let stopWords = 0;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const code = text.charCodeAt(i);
    const cls = charClass(code);
    if (cls === SPACE) {
      i++;
      continue;
    }
    if (count === cap) {
      cap *= 2;
      lengths = grown(lengths, cap);
      hashes = grown(hashes, cap);
      isWord = grown(isWord, cap);
      hasLetter = grown(hasLetter, cap);
    }
    const start = i;
    let h = 0x811c9dc5 | 0;
    let letter = 0;
    if (cls === SYMBOL) {
      while (i < n && text.charCodeAt(i) === code) {
        h = Math.imul(h ^ code, 0x01000193);
        i++;
      }
    } else {
      while (i < n) {
        const c = text.charCodeAt(i);
        const k = charClass(c);
        if (k === LETTER) letter = 1;
        else if (k !== DIGIT && !(isApostrophe(c) && i + 1 < n && charClass(text.charCodeAt(i + 1)) === LETTER)) break;
        h = Math.imul(h ^ c, 0x01000193);
        i++;
      }
      const len = i - start;
      if (len >= 2 && len <= 4 && STOP_INITIALS.has(code) && STOP_WORDS.has(text.slice(start, i))) stopWords++;
    }
    lengths[count] = i - start;
    hashes[count] = h;
    isWord[count] = cls === SYMBOL ? 0 : 1;
    hasLetter[count] = letter;
    count++;
  }
  return { count, lengths, hashes, isWord, hasLetter, stopWords };
}

function grown<T extends Int32Array | Uint8Array>(a: T, size: number): T {
  const b = new (a.constructor as new (n: number) => T)(size);
  b.set(a);
  return b;
}

/**
 * An open-addressing table of 32-bit keys with counts, reused across documents: clearing
 * is a generation bump, not a fill, so small documents cost little. Each slot is
 * [stamp, key, count] side by side, so a probe touches one cache line.
 */
export class IntCounter {
  private slots = new Int32Array(3 * 1024);
  private stamp = 1;
  private mask = 1023;

  /** Empties the table, sized for up to n distinct keys. */
  reset(n: number): void {
    let size = this.slots.length / 3;
    while (size < 2 * n) size *= 2;
    if (3 * size !== this.slots.length) {
      this.slots = new Int32Array(3 * size);
      this.stamp = 0;
    }
    this.mask = size - 1;
    this.stamp++;
  }

  /** Adds one to key's count and returns the new count. */
  add(key: number): number {
    const slots = this.slots;
    let slot = (Math.imul(key, 0x9e3779b1) >>> 0) & this.mask;
    for (;;) {
      const at = 3 * slot;
      if (slots[at] !== this.stamp) {
        slots[at] = this.stamp;
        slots[at + 1] = key;
        slots[at + 2] = 1;
        return 1;
      }
      if (slots[at + 1] === key) {
        const count = (slots[at + 2] as number) + 1;
        slots[at + 2] = count;
        return count;
      }
      slot = (slot + 1) & this.mask;
    }
  }
}

const NGRAM_BASE = 0x01000193;

/**
 * Hashes and character lengths of any n-gram of tokens in O(1): a polynomial rolling
 * hash mod 2^32 over prefix sums, the length as tokens joined by single spaces.
 */
export class NGrams {
  private readonly prefix: Int32Array;
  private readonly chars: Int32Array;

  constructor(readonly tokens: Tokens) {
    this.prefix = new Int32Array(tokens.count + 1);
    this.chars = new Int32Array(tokens.count + 1);
    for (let i = 0; i < tokens.count; i++) {
      this.prefix[i + 1] = (Math.imul(this.prefix[i] as number, NGRAM_BASE) + (tokens.hashes[i] as number)) | 0;
      this.chars[i + 1] = (this.chars[i] as number) + (tokens.lengths[i] as number);
    }
  }

  /** How many n-grams there are. */
  count(n: number): number {
    return Math.max(0, this.tokens.count - n + 1);
  }

  /** BASE^n mod 2^32, to pass to hash(). */
  static power(n: number): number {
    let pow = 1;
    for (let k = 0; k < n; k++) pow = Math.imul(pow, NGRAM_BASE);
    return pow;
  }

  hash(i: number, n: number, power: number): number {
    return ((this.prefix[i + n] as number) - Math.imul(this.prefix[i] as number, power)) | 0;
  }

  length(i: number, n: number): number {
    return (this.chars[i + n] as number) - (this.chars[i] as number) + n - 1;
  }
}

/** Lines and their duplicates: how many repeat an earlier one, and their characters. */
export function findDuplicates(items: string[]): { elements: number; chars: number } {
  const seen = new Set<string>();
  let elements = 0;
  let chars = 0;
  for (const item of items) {
    if (seen.has(item)) {
      elements++;
      chars += item.length;
    } else seen.add(item);
  }
  return { elements, chars };
}

/** Sentence-ending punctuation in several scripts (a line "ends a sentence" if it ends in one). */
export const TERMINAL_PUNCTUATION = new Set([
  ".",
  "!",
  "?",
  '"',
  "'",
  "”",
  "’",
  "。",
  "！",
  "？",
  "…",
  "؟",
  "।",
  "‼",
  "⁇",
]);

export function endsWithTerminal(line: string): boolean {
  return line.length > 0 && TERMINAL_PUNCTUATION.has(line[line.length - 1] as string);
}
