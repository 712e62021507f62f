// What `llmfab index` reads: every source the corpus pipeline reads (built-in corpora, text,
// Markdown, HTML, PDF, JSONL/Parquet, folders, URLs) plus RSS/Atom feeds (files or URLs, one
// document per item with its date, title and link). Each document has a key that stays the
// same when its file changes, so re-indexing replaces its passages instead of adding more.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, extname, join } from "node:path";
import { sotuTitles } from "../data/corpora.ts";
import { firstBytes, readSources } from "../data/sources.ts";
import { htmlMainText, looksLikeHtml } from "../data/steps/html.ts";
import { fetchLimited } from "../io/fetch.ts";
import { looksLikeFeed, parseFeed } from "./feeds.ts";

export interface SourceDocument {
  /** stable identity: file, file:line, feed item link */
  key: string;
  /** the source it was read from (a file, URL or built-in corpus) */
  origin: string;
  /** a feed keeps items that have left it; a file's vanished documents are removed */
  isFeed: boolean;
  title: string;
  date?: string;
  link?: string;
  text: string;
}

export type IndexSourceEvent = { kind: "doc"; doc: SourceDocument } | { kind: "skip"; source: string; reason: string };

const FEED_EXTENSIONS = new Set([".rss", ".atom", ".xml"]);
const URL_LIMITS = { maxBytes: 64 * 2 ** 20, timeoutMs: 60_000 };
const isUrl = (s: string) => /^https?:\/\//i.test(s);

export async function* readIndexSources(specs: string[]): AsyncGenerator<IndexSourceEvent> {
  for (const spec of specs) {
    if (isUrl(spec)) yield* fromUrl(spec);
    else if (spec === "sotu" || spec === "tinyshakespeare") yield* fromCorpus(spec, spec);
    else yield* fromPath(spec);
  }
}

async function* fromPath(path: string): AsyncGenerator<IndexSourceEvent> {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (e) {
    yield { kind: "skip", source: path, reason: `cannot read: ${(e as Error).message}` };
    return;
  }
  if (isDir) {
    for (const name of readdirSync(path).sort()) if (!name.startsWith(".")) yield* fromPath(join(path, name));
    return;
  }
  if (FEED_EXTENSIONS.has(extname(path).toLowerCase()) || looksLikeFeed(firstBytes(path, 2000).toString("utf8"))) {
    yield* fromFeed(readFileSync(path, "utf8"), path);
    return;
  }
  yield* fromCorpus(path, path);
}

function* fromFeed(xml: string, origin: string): Generator<IndexSourceEvent> {
  let items: ReturnType<typeof parseFeed>;
  try {
    items = parseFeed(xml, origin);
  } catch (e) {
    yield { kind: "skip", source: origin, reason: (e as Error).message };
    return;
  }
  for (const [i, item] of items.entries()) {
    // The title is indexed in its own column; an item with no description is its title.
    const text = item.text || item.title;
    if (!text) continue;
    const key = item.link ? `${origin}#${item.link}` : `${origin}#${i}`;
    yield {
      kind: "doc",
      doc: { key, origin, isFeed: true, ...item, title: item.title || `${origin} item ${i + 1}`, text },
    };
  }
}

/** A URL is fetched fresh each time (news changes), then read as a feed or as the file it is. */
async function* fromUrl(url: string): AsyncGenerator<IndexSourceEvent> {
  let fetched: Awaited<ReturnType<typeof fetchLimited>>;
  try {
    fetched = await fetchLimited(url, URL_LIMITS);
  } catch (e) {
    yield { kind: "skip", source: url, reason: (e as Error).message };
    return;
  }
  const head = fetched.bytes.subarray(0, 2000).toString("utf8");
  if (looksLikeFeed(head) || /xml/.test(fetched.contentType)) {
    yield* fromFeed(fetched.bytes.toString("utf8"), url);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "llmfab-index-"));
  try {
    const ext = extname(new URL(url).pathname) || (/html/.test(fetched.contentType) ? ".html" : ".txt");
    const file = join(dir, `page${ext}`);
    writeFileSync(file, fetched.bytes);
    for await (const event of fromCorpus(file, url)) {
      if (event.kind === "skip") yield { ...event, source: url };
      else yield { kind: "doc", doc: { ...event.doc, key: event.doc.key.replace(file, url), link: url } };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Sources the corpus pipeline reads, as documents with titles (an HTML page's main text). */
async function* fromCorpus(spec: string, origin: string): AsyncGenerator<IndexSourceEvent> {
  const titles = spec === "sotu" ? sotuTitles() : [];
  for await (const event of readSources([spec], { textField: "text" })) {
    if (event.kind === "skip") {
      yield event;
      continue;
    }
    let { text } = event;
    let title: string | undefined;
    if (event.format === "html" || looksLikeHtml(text)) ({ title, text } = htmlMainText(text));
    if (text.trim() === "") {
      yield {
        kind: "skip",
        source: event.source,
        reason: "no text in it (a scanned PDF or image? llmfab ocr reads images)",
      };
      continue;
    }
    const record = event.record ?? {};
    const meta = (typeof record.meta === "object" && record.meta !== null ? record.meta : {}) as Record<
      string,
      unknown
    >;
    const field = (name: string) => {
      const value = record[name] ?? meta[name];
      return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
    };
    const sotu = /^sotu#(\d+)$/.exec(event.source);
    const heading = /^\s*#{1,2}\s+(.+)/.exec(text)?.[1]?.trim();
    title ??= field("title") ?? (sotu ? titles[Number(sotu[1])] : undefined) ?? heading ?? basename(event.source);
    const date = field("date") ?? field("published");
    const parsed = date === undefined ? Number.NaN : Date.parse(date);
    yield {
      kind: "doc",
      doc: {
        key: event.source,
        origin,
        isFeed: false,
        title,
        date: Number.isNaN(parsed) ? undefined : new Date(parsed).toISOString(),
        link: field("url") ?? field("link"),
        text,
      },
    };
  }
}
