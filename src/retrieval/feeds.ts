// RSS 2.0, RSS 1.0 (RDF) and Atom feeds, parsed with fast-xml-parser into items with their
// title, link, date and text (HTML in descriptions reduced to text), so news can be indexed.
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { parseHTML } from "linkedom";

export interface FeedItem {
  title: string;
  link?: string;
  /** ISO 8601 (UTC), when the item has a readable date */
  date?: string;
  text: string;
}

/** Whether a file's start looks like a feed (RSS or Atom), whatever its name. */
export function looksLikeFeed(head: string): boolean {
  return /<(rss|feed|rdf:RDF)[\s>]/i.test(head.slice(0, 2000));
}

type Node = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@",
  textNodeName: "#text",
  processEntities: true,
  htmlEntities: true,
});

/** The text of an element that may be a string, a number, or an object with text and attributes. */
function textOf(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string" || typeof value === "number") return String(value);
  if (Array.isArray(value)) return textOf(value[0]);
  if (typeof value === "object") return textOf((value as Node)["#text"]);
  return "";
}

const list = (value: unknown): Node[] =>
  value === undefined ? [] : (Array.isArray(value) ? value : [value]).filter((v): v is Node => typeof v === "object");

/** Plain text of what may be an HTML fragment. */
function plain(text: string): string {
  if (!/[<&]/.test(text)) return text.trim();
  const { document } = parseHTML(`<!doctype html><html><body>${text}</body></html>`);
  return (document.body?.textContent ?? "").replace(/\s+/g, " ").trim();
}

function isoDate(text: string): string | undefined {
  if (!text.trim()) return undefined;
  const ms = Date.parse(text.trim());
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

function atomLink(value: unknown): string | undefined {
  const links = list(value);
  const alternate = links.find((l) => (l["@rel"] ?? "alternate") === "alternate") ?? links[0];
  return typeof alternate?.["@href"] === "string" ? alternate["@href"] : textOf(value) || undefined;
}

/** The items of a feed; `where` names it in errors. */
export function parseFeed(xml: string, where: string): FeedItem[] {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new Error(`${where}:${valid.err.line}: not well-formed XML: ${valid.err.msg}`);
  let doc: Node;
  try {
    doc = parser.parse(xml) as Node;
  } catch (e) {
    throw new Error(`${where}: not a readable feed: ${(e as Error).message}`);
  }
  const rss = (doc.rss as Node | undefined)?.channel as Node | undefined;
  const rdf = doc["rdf:RDF"] as Node | undefined;
  const atom = doc.feed as Node | undefined;
  if (rss || rdf) {
    const items = list(rss ? rss.item : rdf?.item);
    return items.map((item) => ({
      title: plain(textOf(item.title)),
      link: textOf(item.link) || textOf(item.guid) || undefined,
      date: isoDate(textOf(item.pubDate) || textOf(item["dc:date"])),
      text: plain(textOf(item["content:encoded"]) || textOf(item.description)),
    }));
  }
  if (atom) {
    return list(atom.entry).map((entry) => ({
      title: plain(textOf(entry.title)),
      link: atomLink(entry.link),
      date: isoDate(textOf(entry.published) || textOf(entry.updated)),
      text: plain(textOf(entry.content) || textOf(entry.summary)),
    }));
  }
  throw new Error(`${where}: not an RSS or Atom feed (no <rss>, <rdf:RDF> or <feed> element)`);
}
