// Unicode cleanup: NFC composition, \r\n to \n, control characters and unpaired
// surrogates removed, trailing spaces trimmed. A document left empty is removed.
import { type Doc, type DocumentStep, KEEP, remove, type Verdict } from "./step.ts";

// C0 and C1 controls except tab and newline, and the BOM / zero-width no-break space.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\uFEFF]/g;

export function normalizeStep(): DocumentStep {
  return {
    kind: "document",
    name: "normalize",
    run(doc: Doc): Verdict {
      const text = doc.text
        .replace(/\p{Cs}/gu, "")
        .normalize("NFC")
        .replace(/\r\n?/g, "\n")
        .replace(CONTROL, "")
        .replace(/[ \t]+$/gm, "")
        .trim();
      if (text.length === 0) return remove("empty");
      doc.text = text;
      return KEEP;
    },
  };
}
