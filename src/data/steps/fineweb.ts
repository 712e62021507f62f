// FineWeb's own rules (Penedo et al. 2024; datatrove's FineWebQualityFilter defaults):
// too few lines ending in punctuation, too many short lines, too many characters in
// duplicated lines, too many line breaks per word.
import { z } from "zod";
import { type Doc, type DocumentStep, KEEP, remove, type Verdict } from "./step.ts";
import { endsWithTerminal, findDuplicates } from "./text.ts";

export const finewebOptions = z
  .object({
    line_punct_thr: z.number().min(0).max(1).default(0.12),
    line_punct_exclude_zero: z.boolean().default(false),
    short_line_thr: z.number().min(0).max(1).default(0.67),
    short_line_length: z.number().int().min(0).default(30),
    char_duplicates_ratio: z.number().min(0).max(1).default(0.01),
    new_line_ratio: z.number().min(0).default(0.3),
  })
  .strict();

export function finewebStep(o: z.infer<typeof finewebOptions>): DocumentStep {
  return {
    kind: "document",
    name: "fineweb",
    run(doc: Doc): Verdict {
      // Blank lines are layout: the ratios are over lines that hold text (as datatrove's are).
      const lines = doc.lines();
      if (lines.length === 0) return remove("empty");
      const punct = lines.filter(endsWithTerminal).length / lines.length;
      if (punct <= o.line_punct_thr && !(punct === 0 && o.line_punct_exclude_zero)) return remove("line_punct_ratio");
      const short = lines.filter((l) => l.length <= o.short_line_length).length / lines.length;
      if (short >= o.short_line_thr) return remove("short_line_ratio");
      const textChars = doc.text.length - doc.lineBreaks();
      if (findDuplicates(lines).chars / textChars >= o.char_duplicates_ratio) return remove("char_dup_ratio");
      const t = doc.tokens();
      let words = 0;
      for (let i = 0; i < t.count; i++) words += t.isWord[i] as number;
      if (doc.lineBreaks() / Math.max(1, words) > o.new_line_ratio) return remove("list_ratio");
      return KEEP;
    },
  };
}
