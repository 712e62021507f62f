// Language identification with ELD (Efficient Language Detector, 60 languages, n-gram
// scores). The detector reads the first few thousand characters; a document is kept when
// its top language is one of `languages` with a score at or above `threshold`. ELD's
// scores are not fastText probabilities: clear English scores about 0.8, gibberish below 0.4.
import { eld } from "eld/medium";
import { z } from "zod";
import { type Doc, type DocumentStep, KEEP, remove, type Verdict } from "./step.ts";

export const languageOptions = z
  .object({
    /** ISO 639-1 codes to keep; empty keeps every language (and only labels documents) */
    languages: z.array(z.string().regex(/^[a-z]{2,3}$/)).default(["en"]),
    threshold: z.number().min(0).max(1).default(0.5),
    sample_chars: z.number().int().min(100).default(3000),
  })
  .strict();

export function languageStep(o: z.infer<typeof languageOptions>): DocumentStep {
  const wanted = new Set(o.languages);
  return {
    kind: "document",
    name: "language",
    run(doc: Doc): Verdict {
      const result = eld.detect(doc.text.slice(0, o.sample_chars));
      const language = result.language || "unknown";
      const score = result.language ? (result.getScores()[language] ?? 0) : 0;
      doc.meta.language = language;
      doc.meta.language_score = Math.round(score * 1000) / 1000;
      if (wanted.size > 0 && !wanted.has(language)) return remove(`language_${language}`);
      if (score < o.threshold) return remove("low_confidence");
      return KEEP;
    },
  };
}
