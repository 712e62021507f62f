// Language identification with ELD (Efficient Language Detector, 60 languages, n-gram
// scores). The detector reads the first few thousand characters; a document is kept when
// its top language is one of `languages` with a score at or above `threshold`. ELD's
// scores are not fastText probabilities: clear English scores about 0.8, gibberish below
// 0.4. Its n-gram database is loaded when the step starts (the small one costs about
// 150 MB per thread, the medium one 200 MB, extrasmall 90 MB), never on import.
import { z } from "zod";
import { type Doc, type DocumentStep, KEEP, remove, type Verdict } from "./step.ts";

export const languageOptions = z
  .object({
    /** ISO 639-1 codes to keep; empty keeps every language (and only labels documents) */
    languages: z.array(z.string().regex(/^[a-z]{2,3}$/)).default(["en"]),
    threshold: z.number().min(0).max(1).default(0.5),
    sample_chars: z.number().int().min(100).default(3000),
    database: z.enum(["extrasmall", "small", "medium", "large"]).default("small"),
  })
  .strict();

type Detector = typeof import("eld/small")["eld"];

const DATABASES = {
  extrasmall: () => import("eld/extrasmall"),
  small: () => import("eld/small"),
  medium: () => import("eld/medium"),
  large: () => import("eld/large"),
};

export function languageStep(o: z.infer<typeof languageOptions>): DocumentStep {
  const wanted = new Set(o.languages);
  let detector: Detector | null = null;
  return {
    kind: "document",
    name: "language",
    async init() {
      detector = (await DATABASES[o.database]()).eld;
    },
    run(doc: Doc): Verdict {
      if (!detector) throw new Error("the language step was not initialised");
      const result = detector.detect(doc.text.slice(0, o.sample_chars));
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
