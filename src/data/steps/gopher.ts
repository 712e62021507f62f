// The Gopher rules (Rae et al. 2021, Table A1), with the thresholds FineWeb uses
// (datatrove's GopherRepetitionFilter and GopherQualityFilter defaults).
import { z } from "zod";
import { type Doc, type DocumentStep, KEEP, remove, type Verdict } from "./step.ts";
import { findDuplicates, IntCounter, NGrams } from "./text.ts";

export const gopherRepetitionOptions = z
  .object({
    dup_line_frac: z.number().min(0).max(1).default(0.3),
    dup_para_frac: z.number().min(0).max(1).default(0.3),
    dup_line_char_frac: z.number().min(0).max(1).default(0.2),
    dup_para_char_frac: z.number().min(0).max(1).default(0.2),
    /** [n, max fraction of characters in the most frequent n-gram] */
    top_n_grams: z.array(z.tuple([z.number().int().min(1), z.number()])).default([
      [2, 0.2],
      [3, 0.18],
      [4, 0.16],
    ]),
    /** [n, max fraction of characters in repeated n-grams] */
    dup_n_grams: z.array(z.tuple([z.number().int().min(1), z.number()])).default([
      [5, 0.15],
      [6, 0.14],
      [7, 0.13],
      [8, 0.12],
      [9, 0.11],
      [10, 0.1],
    ]),
  })
  .strict();

/** Characters covered by the most frequent n-gram: its count times its length. */
function topNgramChars(grams: NGrams, n: number, counter: IntCounter): number {
  const m = grams.count(n);
  const power = NGrams.power(n);
  counter.reset(m);
  let best = 0;
  let bestLength = 0;
  for (let i = 0; i < m; i++) {
    const c = counter.add(grams.hash(i, n, power));
    if (c > best) {
      best = c;
      bestLength = grams.length(i, n);
    }
  }
  return best * bestLength;
}

/** Characters of n-grams seen before, skipping past each repeat (as datatrove counts them). */
function repeatedNgramChars(grams: NGrams, n: number, counter: IntCounter): number {
  const m = grams.count(n);
  const power = NGrams.power(n);
  counter.reset(m);
  let repeated = 0;
  for (let i = 0; i < m; ) {
    if (counter.add(grams.hash(i, n, power)) > 1) {
      repeated += grams.length(i, n);
      i += n;
    } else i++;
  }
  return repeated;
}

export function gopherRepetitionStep(o: z.infer<typeof gopherRepetitionOptions>): DocumentStep {
  const counter = new IntCounter();
  return {
    kind: "document",
    name: "gopher-repetition",
    run(doc: Doc): Verdict {
      const text = doc.text;
      const paragraphs = doc.paragraphs();
      const para = findDuplicates(paragraphs);
      if (para.elements / paragraphs.length > o.dup_para_frac) return remove("dup_para_frac");
      if (para.chars / text.length > o.dup_para_char_frac) return remove("dup_para_char_frac");
      const lines = doc.lines();
      const line = findDuplicates(lines);
      if (lines.length > 0 && line.elements / lines.length > o.dup_line_frac) return remove("dup_line_frac");
      if (line.chars / text.length > o.dup_line_char_frac) return remove("dup_line_char_frac");

      const grams = new NGrams(doc.tokens());
      for (const [n, frac] of o.top_n_grams)
        if (topNgramChars(grams, n, counter) / text.length > frac) return remove(`top_${n}_gram`);
      for (const [n, frac] of o.dup_n_grams)
        if (repeatedNgramChars(grams, n, counter) / text.length > frac) return remove(`duplicated_${n}_n_grams`);
      return KEEP;
    },
  };
}

export const gopherQualityOptions = z
  .object({
    min_doc_words: z.number().int().min(0).default(50),
    max_doc_words: z.number().int().min(1).default(100_000),
    min_avg_word_length: z.number().min(0).default(3),
    max_avg_word_length: z.number().min(0).default(10),
    max_symbol_word_ratio: z.number().min(0).default(0.1),
    max_bullet_lines_ratio: z.number().min(0).max(1).default(0.9),
    max_ellipsis_lines_ratio: z.number().min(0).max(1).default(0.3),
    /** at least this share of words must hold a letter */
    max_non_alpha_words_ratio: z.number().min(0).max(1).default(0.8),
    min_stop_words: z.number().int().min(0).default(2),
  })
  .strict();

const BULLETS = /^\s*[•●○■□▪▫◦‣∙·*-]\s/;

function count(text: string, needle: string): number {
  let n = 0;
  for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}

export function gopherQualityStep(o: z.infer<typeof gopherQualityOptions>): DocumentStep {
  return {
    kind: "document",
    name: "gopher-quality",
    run(doc: Doc): Verdict {
      const text = doc.text;
      const t = doc.tokens();
      let words = 0;
      let wordChars = 0;
      let alphaWords = 0;
      for (let i = 0; i < t.count; i++) {
        if (t.isWord[i] === 0) continue;
        words++;
        wordChars += t.lengths[i] as number;
        alphaWords += t.hasLetter[i] as number;
      }
      if (words < o.min_doc_words) return remove("short_doc");
      if (words > o.max_doc_words) return remove("long_doc");
      const meanLength = wordChars / words;
      if (meanLength < o.min_avg_word_length) return remove("below_avg_word_length");
      if (meanLength > o.max_avg_word_length) return remove("above_avg_word_length");
      if (count(text, "#") / words > o.max_symbol_word_ratio) return remove("too_many_hashes");
      if ((count(text, "...") + count(text, "…")) / words > o.max_symbol_word_ratio) return remove("too_many_ellipsis");
      const lines = doc.lines();
      let bullets = 0;
      let ellipses = 0;
      for (const line of lines) {
        if (BULLETS.test(line)) bullets++;
        const end = line.trimEnd();
        if (end.endsWith("...") || end.endsWith("…")) ellipses++;
      }
      const lineCount = Math.max(1, lines.length);
      if (bullets / lineCount > o.max_bullet_lines_ratio) return remove("too_many_bullets");
      if (ellipses / lineCount > o.max_ellipsis_lines_ratio) return remove("too_many_end_ellipsis");
      if (alphaWords / words < o.max_non_alpha_words_ratio) return remove("below_alpha_threshold");
      if (t.stopWords < o.min_stop_words) return remove("not_enough_stop_words");
      return KEEP;
    },
  };
}
