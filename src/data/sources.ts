// Where documents come from, as a stream of events in a fixed order: the built-in
// corpora; files and folders (text, Markdown, HTML, JSONL/JSON with a text field, gzip of
// those, Parquet with a text column, PDF); URLs and URL lists (downloaded into the cache
// first). A file that cannot be read or decoded becomes a "skip" event and the stream
// goes on, so one bad file never ends a long run.
import {
  closeSync,
  createReadStream,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
} from "node:fs";
import { basename, extname, join } from "node:path";
import { createGunzip } from "node:zlib";
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { extractText } from "unpdf";
import { decodeText } from "../io/text.ts";
import { BUILTIN_CORPORA, sotuBytes, sotuDocuments, tinyshakespeareText } from "./corpora.ts";
import { download } from "./download.ts";

export type SourceSpec = string | { url: string; sha256?: string } | { urls: string };

export type SourceEvent =
  | {
      kind: "doc";
      text: string;
      format: "text" | "html";
      source: string;
      /** a JSON document's whole record (its other fields: title, date, url, meta) */
      record?: Record<string, unknown>;
    }
  | { kind: "skip"; source: string; reason: string };

export interface SourceOptions {
  /** the field (JSON) or column (Parquet) holding the text */
  textField: string;
  /** download options for tests: retries and first backoff */
  retries?: number;
  backoffMs?: number;
}

const TEXT = new Set([".txt", ".md", ".markdown", ".text", ".rst", ""]);
const HTML = new Set([".html", ".htm", ".xhtml"]);
const JSON_LINES = new Set([".jsonl", ".json", ".ndjson"]);

const isUrl = (s: string) => /^https?:\/\//i.test(s);

/** A text or HTML file is one document; past this size it is skipped (a JS string tops out near 512 MB). */
const MAX_DOCUMENT_BYTES = 256 * 2 ** 20;

/** Fails early, before any work, on sources that name nothing: missing paths, missing or malformed URL lists. */
export function checkSources(specs: SourceSpec[]): void {
  for (const spec of specs) {
    const path = typeof spec === "string" ? spec : "urls" in spec ? spec.urls : null;
    if (path === null || isUrl(path) || (BUILTIN_CORPORA as readonly string[]).includes(path)) continue;
    if (!existsSync(path))
      throw new Error(`source ${path}: no such file or directory (built-in corpora: ${BUILTIN_CORPORA.join(", ")})`);
    if (typeof spec !== "string") readUrlList(path);
  }
}

export async function* readSources(specs: SourceSpec[], o: SourceOptions): AsyncGenerator<SourceEvent> {
  for (const spec of specs) {
    if (typeof spec !== "string" && "urls" in spec) {
      for (const [url, sha256] of readUrlList(spec.urls)) yield* fromUrl(url, sha256, o);
    } else if (typeof spec !== "string") yield* fromUrl(spec.url, spec.sha256, o);
    else if (spec === "sotu") {
      const docs = sotuDocuments();
      for (let i = 0; i < docs.length; i++)
        yield { kind: "doc", text: docs[i] as string, format: "text", source: `sotu#${i}` };
    } else if (spec === "tinyshakespeare") {
      let text: string;
      try {
        text = await tinyshakespeareText();
      } catch (e) {
        yield { kind: "skip", source: spec, reason: (e as Error).message };
        continue;
      }
      yield { kind: "doc", text, format: "text", source: spec };
    } else if (isUrl(spec)) yield* fromUrl(spec, undefined, o);
    else yield* fromPath(spec, o);
  }
}

/** A URL list: one URL per line, optionally followed by its SHA-256; # starts a comment. */
function readUrlList(path: string): [string, string | undefined][] {
  const entries: [string, string | undefined][] = [];
  readFileSync(path, "utf8")
    .split("\n")
    .forEach((raw, i) => {
      const line = raw.replace(/#.*/, "").trim();
      if (!line) return;
      const [url, sha256, extra] = line.split(/\s+/);
      if (!isUrl(url as string) || extra !== undefined || (sha256 !== undefined && !/^[0-9a-f]{64}$/i.test(sha256)))
        throw new Error(`${path}:${i + 1}: expected "URL [sha256]", got ${JSON.stringify(line)}`);
      entries.push([url as string, sha256]);
    });
  return entries;
}

async function* fromUrl(url: string, sha256: string | undefined, o: SourceOptions): AsyncGenerator<SourceEvent> {
  let path: string;
  try {
    path = await download(url, { sha256, retries: o.retries, backoffMs: o.backoffMs });
  } catch (e) {
    yield { kind: "skip", source: url, reason: (e as Error).message };
    return;
  }
  for await (const event of fromPath(path, o)) yield { ...event, source: event.source.replace(path, url) };
}

async function* fromPath(path: string, o: SourceOptions): AsyncGenerator<SourceEvent> {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(path);
  } catch (e) {
    yield { kind: "skip", source: path, reason: `cannot read: ${(e as Error).message}` };
    return;
  }
  if (stat.isDirectory()) {
    let names: string[];
    try {
      names = readdirSync(path).sort();
    } catch (e) {
      yield { kind: "skip", source: path, reason: `cannot list: ${(e as Error).message}` };
      return;
    }
    for (const name of names) if (!name.startsWith(".")) yield* fromPath(join(path, name), o);
    return;
  }
  const gz = path.toLowerCase().endsWith(".gz");
  const ext = extname(gz ? path.slice(0, -3) : path).toLowerCase();
  try {
    if (JSON_LINES.has(ext)) yield* fromJsonLines(path, gz, o.textField);
    else if (ext === ".parquet") yield* fromParquet(path, o.textField);
    else if (ext === ".pdf") yield await fromPdf(path);
    else if (TEXT.has(ext) || HTML.has(ext)) {
      if (stat.size > MAX_DOCUMENT_BYTES)
        throw new Error(
          `${path} is ${Math.round(stat.size / 2 ** 20)} MB, too large for one document (the limit is ${MAX_DOCUMENT_BYTES / 2 ** 20} MB): split it, or write it as JSONL`,
        );
      const text = decodeText(await readWhole(path, gz), path);
      yield { kind: "doc", text, format: HTML.has(ext) ? "html" : "text", source: path };
    } else yield { kind: "skip", source: path, reason: `unsupported file type "${ext || basename(path)}"` };
  } catch (e) {
    yield { kind: "skip", source: path, reason: (e as Error).message };
  }
}

async function readWhole(path: string, gz: boolean): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const stream = gz ? createReadStream(path).pipe(createGunzip()) : createReadStream(path);
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Lines as raw bytes, streamed, so a huge JSONL file never sits in memory whole. */
async function* byteLines(path: string, gz: boolean): AsyncGenerator<Buffer> {
  const stream = gz ? createReadStream(path).pipe(createGunzip()) : createReadStream(path);
  let rest = Buffer.alloc(0);
  for await (const chunk of stream) {
    let buf = rest.length ? Buffer.concat([rest, chunk as Buffer]) : (chunk as Buffer);
    for (let nl = buf.indexOf(10); nl !== -1; nl = buf.indexOf(10)) {
      yield buf.subarray(0, nl);
      buf = buf.subarray(nl + 1);
    }
    rest = Buffer.from(buf);
  }
  if (rest.length) yield rest;
}

/** The first n bytes of a file (fewer if it is shorter). */
export function firstBytes(path: string, n: number): Buffer {
  const head = Buffer.alloc(n);
  const fd = openSync(path, "r");
  try {
    return head.subarray(0, readSync(fd, head, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}

async function* fromJsonLines(path: string, gz: boolean, field: string): AsyncGenerator<SourceEvent> {
  // A .json file holding one array of documents is read whole; anything else is JSON Lines.
  if (!gz && firstBytes(path, 64).toString("utf8").trimStart().startsWith("[")) {
    const items: unknown = JSON.parse(decodeText(readFileSync(path), path));
    if (!Array.isArray(items)) throw new Error(`${path}: expected a JSON array`);
    for (let i = 0; i < items.length; i++) yield jsonDocument(items[i], field, `${path}[${i}]`);
    return;
  }
  let n = 0;
  for await (const bytes of byteLines(path, gz)) {
    n++;
    const where = `${path}:${n}`;
    let line: string;
    try {
      line = decodeText(bytes, where).trim();
    } catch (e) {
      yield { kind: "skip", source: where, reason: (e as Error).message };
      continue;
    }
    if (!line) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      yield { kind: "skip", source: where, reason: `invalid JSON at ${where}` };
      continue;
    }
    yield jsonDocument(value, field, where);
  }
}

function jsonDocument(value: unknown, field: string, where: string): SourceEvent {
  const text = (value as Record<string, unknown> | null)?.[field];
  if (typeof text !== "string")
    return { kind: "skip", source: where, reason: `no string "${field}" field at ${where}` };
  return { kind: "doc", text, format: "text", source: where, record: value as Record<string, unknown> };
}

async function* fromParquet(path: string, column: string): AsyncGenerator<SourceEvent> {
  const file = await asyncBufferFromFile(path);
  const metadata = await parquetMetadataAsync(file);
  const columns = parquetSchema(metadata).children.map((c) => c.element.name);
  if (!columns.includes(column))
    throw new Error(`${path}: no column "${column}" (columns: ${columns.join(", ")}); set text_field`);
  let start = 0;
  // One row group at a time keeps memory to a row group, whatever the file's size.
  for (const group of metadata.row_groups) {
    const end = start + Number(group.num_rows);
    const rows = await parquetReadObjects({
      file,
      metadata,
      columns: [column],
      rowStart: start,
      rowEnd: end,
      compressors,
    });
    for (let i = 0; i < rows.length; i++) {
      const text = (rows[i] as Record<string, unknown>)[column];
      const where = `${path}#${start + i}`;
      if (typeof text === "string") yield { kind: "doc", text, format: "text", source: where };
      else yield { kind: "skip", source: where, reason: `column "${column}" is not text at ${where}` };
    }
    start = end;
  }
}

async function fromPdf(path: string): Promise<SourceEvent> {
  const { text } = await extractText(new Uint8Array(readFileSync(path)), { mergePages: true });
  return { kind: "doc", text, format: "text", source: path };
}

/** Rough input size in bytes (local files and built-ins; URLs count 0), for a progress bar. */
export function estimateBytes(specs: SourceSpec[]): number {
  const size = (path: string): number => {
    try {
      const st = statSync(path);
      if (!st.isDirectory()) return st.size;
      return readdirSync(path).reduce((n, name) => n + size(join(path, name)), 0);
    } catch {
      return 0;
    }
  };
  return specs.reduce((n, spec) => {
    if (typeof spec !== "string" || isUrl(spec) || spec === "tinyshakespeare") return n;
    if (spec === "sotu") return n + sotuBytes();
    return n + size(spec);
  }, 0);
}
