// Documents split into passages for the index: whole sentences packed up to a bound in
// tokens, a paragraph break preferred as a passage's end, and a few sentences of overlap so
// that a fact spanning a boundary is whole in one passage. Tokens here are words (a CJK
// character counts as one): the index serves any model, so no one tokenizer is assumed.

export interface PassageOptions {
  /** most tokens in a passage */
  maxTokens: number;
  /** tokens repeated from the end of one passage at the start of the next */
  overlapTokens: number;
}

export const DEFAULT_PASSAGES: PassageOptions = { maxTokens: 160, overlapTokens: 32 };

export interface Passage {
  text: string;
  /** character offset of the passage's start in the document */
  offset: number;
}

interface Unit {
  start: number;
  end: number;
  tokens: number;
  /** the unit ends a paragraph */
  paragraphEnd: boolean;
}

const TOKEN = /\p{Script=Han}|\p{Script=Hiragana}|\p{Script=Katakana}|[\p{L}\p{N}]+/gu;

export function countTokens(text: string): number {
  return text.match(TOKEN)?.length ?? 0;
}

/** Sentences (ends: . ! ? 。！？ followed by space or a CJK end), each cut to maxTokens. */
function units(text: string, maxTokens: number): Unit[] {
  const out: Unit[] = [];
  const paragraph = /[^\n]+(?:\n(?!\s*\n)[^\n]*)*/g;
  for (const para of text.matchAll(paragraph)) {
    const base = para.index;
    const sentence = /[^.!?。！？]*(?:[.!?]+(?=\s|$)|[。！？]+|[.!?]+|$)\s*/g;
    const pieces: Unit[] = [];
    for (const s of para[0].matchAll(sentence)) {
      if (s[0] === "") break;
      pieces.push(...cut(text, base + s.index, base + s.index + s[0].length, maxTokens));
    }
    if (pieces.length) (pieces.at(-1) as Unit).paragraphEnd = true;
    out.push(...pieces);
  }
  return out.filter((u) => u.tokens > 0);
}

/** A span as units of at most maxTokens tokens (a sentence longer than a passage is cut at word bounds). */
function cut(text: string, start: number, end: number, maxTokens: number): Unit[] {
  const tokens = [...text.slice(start, end).matchAll(TOKEN)];
  if (tokens.length <= maxTokens) return [{ start, end, tokens: tokens.length, paragraphEnd: false }];
  const out: Unit[] = [];
  for (let i = 0; i < tokens.length; i += maxTokens) {
    const from = i === 0 ? start : start + (tokens[i]?.index ?? 0);
    const next = tokens[i + maxTokens];
    const to = next ? start + next.index : end;
    out.push({ start: from, end: to, tokens: Math.min(maxTokens, tokens.length - i), paragraphEnd: false });
  }
  return out;
}

export function splitPassages(text: string, o: PassageOptions = DEFAULT_PASSAGES): Passage[] {
  const all = units(text, o.maxTokens);
  const passages: Passage[] = [];
  let first = 0;
  while (first < all.length) {
    let last = first;
    let tokens = (all[first] as Unit).tokens;
    while (last + 1 < all.length && tokens + (all[last + 1] as Unit).tokens <= o.maxTokens) {
      // Past half the bound, a paragraph's end is a good place to stop.
      if ((all[last] as Unit).paragraphEnd && tokens >= o.maxTokens / 2) break;
      last++;
      tokens += (all[last] as Unit).tokens;
    }
    const start = (all[first] as Unit).start;
    passages.push({ text: text.slice(start, (all[last] as Unit).end).trim(), offset: start });
    if (last + 1 >= all.length) break;
    // The next passage starts with the last sentences of this one that fit in the overlap
    // and leave room for the sentence after them (else it would only repeat this one).
    let next = last + 1;
    let overlap = 0;
    const room = Math.min(o.overlapTokens, o.maxTokens - (all[next] as Unit).tokens);
    while (next - 1 > first && overlap + (all[next - 1] as Unit).tokens <= room) {
      next--;
      overlap += (all[next] as Unit).tokens;
    }
    first = next;
  }
  return passages;
}
