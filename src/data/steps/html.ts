// Main-text extraction from HTML pages with Mozilla's Readability (Firefox Reader View)
// on a linkedom DOM: navigation, footers, sidebars and scripts go; the article's blocks
// become lines. A page where Readability finds no article falls back to the body's
// text. Plain-text documents pass through untouched.
import { Readability } from "@mozilla/readability";
import { parseHTML } from "linkedom";
import { z } from "zod";
import { type Doc, type DocumentStep, KEEP, remove, type Verdict } from "./step.ts";

export const htmlOptions = z
  .object({
    /** also treat documents that start like an HTML page as HTML, whatever their source */
    sniff: z.boolean().default(true),
  })
  .strict();

const BLOCK = new Set(
  "ADDRESS ARTICLE ASIDE BLOCKQUOTE BR DD DIV DL DT FIGCAPTION FIGURE FOOTER FORM H1 H2 H3 H4 H5 H6 HEADER HR LI MAIN NAV OL P PRE SECTION TABLE TD TH TR UL".split(
    " ",
  ),
);
const SKIP = new Set(["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "SVG", "IFRAME"]);

interface DomNode {
  nodeType: number;
  nodeName: string;
  textContent: string | null;
  childNodes: ArrayLike<DomNode>;
}

/** Text of a DOM subtree with one line per block element and collapsed inline spaces. */
function blockText(root: DomNode): string {
  const parts: string[] = [];
  const walk = (node: DomNode) => {
    if (node.nodeType === 3) {
      parts.push((node.textContent ?? "").replace(/\s+/g, " "));
      return;
    }
    if (node.nodeType !== 1 && node.nodeType !== 9 && node.nodeType !== 11) return;
    const name = node.nodeName.toUpperCase();
    if (SKIP.has(name)) return;
    const block = BLOCK.has(name);
    if (block) parts.push("\n");
    for (let i = 0; i < node.childNodes.length; i++) walk(node.childNodes[i] as DomNode);
    if (block) parts.push("\n");
  };
  walk(root);
  return parts
    .join("")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .join("\n");
}

export function looksLikeHtml(text: string): boolean {
  return /^\s*(?:<!doctype html|<html[\s>]|<head[\s>]|<body[\s>])/i.test(text.slice(0, 1000));
}

/** The main text of an HTML page (Readability's article, else the body), one line per block, and its title. */
export function htmlMainText(html: string): { title?: string; text: string } {
  const { document } = parseHTML(html);
  const title = document.title?.trim() || undefined;
  // Readability takes the page apart as it reads it: a page without an article is parsed again for its body.
  const article = new Readability(document as unknown as Document).parse();
  const text = article?.content
    ? blockText(parseHTML(`<!doctype html><html><body>${article.content}</body></html>`).document as DomNode)
    : blockText((parseHTML(html).document.body ?? document) as unknown as DomNode);
  return { title, text };
}

export function htmlStep(o: z.infer<typeof htmlOptions>): DocumentStep {
  return {
    kind: "document",
    name: "html",
    run(doc: Doc): Verdict {
      if (doc.format !== "html" && !(o.sniff && looksLikeHtml(doc.text))) return KEEP;
      const { title, text } = htmlMainText(doc.text);
      doc.format = "text";
      if (title) doc.meta.title = title;
      if (text.trim() === "") return remove("no_text");
      doc.text = text;
      return KEEP;
    },
  };
}
