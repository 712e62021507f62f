// The C4 rules (Raffel et al. 2020), with FineWeb's setting (datatrove's C4QualityFilter
// with filter_no_terminal_punct off): lines that are too short, mention JavaScript or a
// cookie/terms policy, or hold a word over 1000 characters are dropped; a document with
// "lorem ipsum" or a curly bracket (code) is removed, and so is one left with fewer
// than 5 sentences.
import { z } from "zod";
import { type Doc, type DocumentStep, KEEP, remove, type Verdict } from "./step.ts";
import { endsWithTerminal } from "./text.ts";

export const c4Options = z
  .object({
    filter_no_terminal_punct: z.boolean().default(false),
    min_words_per_line: z.number().int().min(0).default(3),
    max_word_length: z.number().int().min(1).default(1000),
    min_num_sentences: z.number().int().min(0).default(5),
    filter_lorem_ipsum: z.boolean().default(true),
    filter_javascript: z.boolean().default(true),
    filter_curly_bracket: z.boolean().default(true),
    filter_policy: z.boolean().default(true),
  })
  .strict();

const POLICY = ["terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies"];

/** . ! ? and their CJK forms. */
const isSentenceEnd = (c: number) =>
  c === 0x2e || c === 0x21 || c === 0x3f || c === 0x3002 || c === 0xff01 || c === 0xff1f;

/** Sentences, counted as runs of . ! ? (or their CJK forms) followed by a space or the end. */
function countSentences(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    if (!isSentenceEnd(text.charCodeAt(i))) continue;
    while (i + 1 < text.length && isSentenceEnd(text.charCodeAt(i + 1))) i++;
    if (i + 1 === text.length || text.charCodeAt(i + 1) <= 32) n++;
  }
  return n;
}

/** Whether a line has at least n whitespace-separated words (counting stops at n). */
function hasWords(line: string, n: number): boolean {
  let words = 0;
  let inWord = false;
  for (let i = 0; i < line.length && words < n; i++) {
    const space = line.charCodeAt(i) <= 32;
    if (!space && !inWord) words++;
    inWord = !space;
  }
  return words >= n;
}

export function c4Step(o: z.infer<typeof c4Options>): DocumentStep {
  // Lines worth a closer look: one regex pass over the lowercase text instead of one search per phrase.
  const flagged = new RegExp(
    [...(o.filter_javascript ? ["javascript"] : []), ...(o.filter_policy ? POLICY : [])].join("|") || "(?!)",
    "i",
  );
  const keepLine = (line: string): boolean =>
    line !== "" &&
    !(line.length > o.max_word_length && line.split(/\s+/).some((w) => w.length > o.max_word_length)) &&
    !(o.filter_no_terminal_punct && !endsWithTerminal(line)) &&
    hasWords(line, o.min_words_per_line) &&
    !flagged.test(line);
  return {
    kind: "document",
    name: "c4",
    run(doc: Doc): Verdict {
      if (o.filter_lorem_ipsum && /lorem ipsum/i.test(doc.text)) return remove("lorem_ipsum");
      if (o.filter_curly_bracket && doc.text.includes("{")) return remove("curly_bracket");
      // Lines are filtered one by one; the paragraph breaks between kept lines stay.
      const paragraphs: string[] = [];
      for (const paragraph of doc.paragraphs()) {
        const kept = paragraph
          .split(/\r\n|\r|\n/)
          .map((l) => l.trim())
          .filter(keepLine);
        if (kept.length > 0) paragraphs.push(kept.join("\n"));
      }
      const text = paragraphs.join("\n\n");
      if (countSentences(text) < o.min_num_sentences) return remove("too_few_sentences");
      doc.text = text;
      return KEEP;
    },
  };
}
