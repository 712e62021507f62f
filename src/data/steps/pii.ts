// PII scrubbing: email addresses, phone numbers and IP addresses are replaced with
// reserved stand-ins (example.com, the 555-01xx fictional range, the TEST-NET-1 and
// documentation IPv6 blocks), so the text still reads naturally. Documents are kept.
import { z } from "zod";
import { type Doc, type DocumentStep, KEEP, type Verdict } from "./step.ts";

export const piiOptions = z
  .object({
    emails: z.boolean().default(true),
    phones: z.boolean().default(true),
    ips: z.boolean().default(true),
  })
  .strict();

const EMAIL = /(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}\b/g;
const IPV4 = /(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w.]\d)/g;
const IPV6 = /(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])/g;
// North American (555-123-4567, (555) 123-4567) and international (+44 20 7946 0958) forms.
const PHONE =
  /(?<![\w+])(?:\+1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[.-])\d{3}[.-]\d{4}(?!\w)|(?<![\w+])\+\d{1,3}(?:[\s.-]\(?\d{1,4}\)?){2,4}(?!\w)/g;

export const PII_STAND_INS = { email: "email@example.com", phone: "555-0100", ipv4: "192.0.2.1", ipv6: "2001:db8::1" };

export function piiStep(o: z.infer<typeof piiOptions>): DocumentStep {
  return {
    kind: "document",
    name: "pii",
    run(doc: Doc): Verdict {
      let text = doc.text;
      let replaced = 0;
      const sub = (re: RegExp, standIn: string) => {
        text = text.replace(re, () => {
          replaced++;
          return standIn;
        });
      };
      // Cheap tests first: most documents hold no "@", no dotted quad, no hex groups.
      if (o.emails && text.includes("@")) sub(EMAIL, PII_STAND_INS.email);
      if (o.ips && /\d\.\d+\.\d/.test(text)) sub(IPV4, PII_STAND_INS.ipv4);
      if (o.ips && /[0-9A-Fa-f]:[0-9A-Fa-f]{1,4}:/.test(text)) sub(IPV6, PII_STAND_INS.ipv6);
      if (o.phones && /\d{3}[\s.)-]+\d/.test(text)) sub(PHONE, PII_STAND_INS.phone);
      if (replaced > 0) {
        doc.text = text;
        doc.meta.pii_replaced = replaced;
      }
      return KEEP;
    },
  };
}
