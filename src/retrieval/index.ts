// The search index: one SQLite file with an FTS5 full-text table (BM25 ranking) over
// passages, and the documents they came from (source, title, date, link, a hash of the
// content). Adding is incremental: a document whose hash is unchanged is skipped, a changed
// one has its passages replaced. Work is committed in transactions of whole documents, so a
// killed `llmfab index` leaves the index as it was after the last commit and a rerun finishes it.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import Database from "better-sqlite3";
import { readIndexSources, type SourceDocument } from "./documents.ts";
import { DEFAULT_PASSAGES, type PassageOptions, splitPassages } from "./passages.ts";

/** The on-disk format this code writes; a newer one is refused, not misread. */
export const INDEX_FORMAT = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents(
  id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, origin TEXT NOT NULL, title TEXT NOT NULL,
  date TEXT, link TEXT, hash TEXT NOT NULL, chars INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS documents_origin ON documents(origin);
CREATE TABLE IF NOT EXISTS passages(
  id INTEGER PRIMARY KEY, doc INTEGER NOT NULL, offset INTEGER NOT NULL, text TEXT NOT NULL, date TEXT);
CREATE INDEX IF NOT EXISTS passages_doc ON passages(doc);
CREATE INDEX IF NOT EXISTS passages_date ON passages(date);
CREATE VIRTUAL TABLE IF NOT EXISTS passages_fts USING fts5(body, title, tokenize = 'porter unicode61 remove_diacritics 2');
`;

/**
 * Text as the FTS5 tokenizer should see it: unicode61 keeps a run of CJK characters as one
 * token, so each ideograph is spaced out to be a term of its own (queries do the same).
 */
export function ftsText(text: string): string {
  return text.replace(/[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/gu, " $& ");
}

export type IndexDatabase = Database.Database;

/** Opens an index for reading (it must exist and be one) or for writing (created when missing). */
export function openIndex(path: string, mode: "read" | "write"): IndexDatabase {
  if (mode === "read" && !existsSync(path)) throw new Error(`${path}: no such index (make one with llmfab index)`);
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: mode === "read", fileMustExist: mode === "read" });
    db.pragma("busy_timeout = 5000");
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
    if (tables.length === 0 && mode === "write") {
      db.exec(SCHEMA);
      db.prepare("INSERT INTO meta VALUES ('format', ?), ('created_by', 'llmfab')").run(String(INDEX_FORMAT));
    } else if (!tables.includes("meta") || !tables.includes("passages_fts")) {
      db.close();
      throw new Error("it holds other tables");
    }
  } catch (e) {
    throw new Error(`${path}: not an llmfab search index (${(e as Error).message})`);
  }
  const format = Number(db.prepare("SELECT value FROM meta WHERE key = 'format'").pluck().get());
  if (!(format <= INDEX_FORMAT)) {
    db.close();
    throw new Error(
      `${path}: index format ${format} was written by a newer llmfab; this one reads format ${INDEX_FORMAT} (upgrade llmfab, or rebuild the index)`,
    );
  }
  return db;
}

export interface IndexProgress {
  added: number;
  updated: number;
  unchanged: number;
  removed: number;
  passages: number;
  /** characters of text indexed in this run */
  chars: number;
  skipped: { source: string; reason: string }[];
}

export interface IndexOptions {
  passages?: PassageOptions;
  /** documents per transaction */
  commitEvery?: number;
  onDocument?: (doc: SourceDocument, progress: IndexProgress) => void;
}

const hashOf = (d: SourceDocument) =>
  createHash("sha256")
    .update(JSON.stringify([d.title, d.date ?? null, d.link ?? null, d.text]))
    .digest("hex");

/** Adds the documents of `specs` to the index at `path` (created when missing). */
export async function buildIndex(specs: string[], path: string, o: IndexOptions = {}): Promise<IndexProgress> {
  const db = openIndex(path, "write");
  const progress: IndexProgress = {
    added: 0,
    updated: 0,
    unchanged: 0,
    removed: 0,
    passages: 0,
    chars: 0,
    skipped: [],
  };
  const q = {
    find: db.prepare<[string], { id: number; hash: string }>("SELECT id, hash FROM documents WHERE key = ?"),
    insertDoc: db.prepare(
      "INSERT INTO documents(key, origin, title, date, link, hash, chars) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ),
    insertPassage: db.prepare("INSERT INTO passages(doc, offset, text, date) VALUES (?, ?, ?, ?)"),
    insertFts: db.prepare("INSERT INTO passages_fts(rowid, body, title) VALUES (?, ?, ?)"),
    originKeys: db.prepare<[string], { id: number; key: string }>("SELECT id, key FROM documents WHERE origin = ?"),
    removeFts: db.prepare("DELETE FROM passages_fts WHERE rowid IN (SELECT id FROM passages WHERE doc = ?)"),
    removePassages: db.prepare("DELETE FROM passages WHERE doc = ?"),
    removeDoc: db.prepare("DELETE FROM documents WHERE id = ?"),
  };
  const remove = (id: number) => {
    q.removeFts.run(id);
    q.removePassages.run(id);
    q.removeDoc.run(id);
  };
  const put = (d: SourceDocument) => {
    const hash = hashOf(d);
    const old = q.find.get(d.key);
    if (old?.hash === hash) {
      progress.unchanged++;
      return;
    }
    if (old) remove(old.id);
    const doc = Number(
      q.insertDoc.run(d.key, d.origin, d.title, d.date ?? null, d.link ?? null, hash, d.text.length).lastInsertRowid,
    );
    const title = ftsText(d.title);
    for (const p of splitPassages(d.text, o.passages ?? DEFAULT_PASSAGES)) {
      const id = q.insertPassage.run(doc, p.offset, p.text, d.date ?? null).lastInsertRowid;
      q.insertFts.run(id, ftsText(p.text), title);
      progress.passages++;
    }
    progress.chars += d.text.length;
    if (old) progress.updated++;
    else progress.added++;
  };
  const commit = db.transaction((docs: SourceDocument[]) => {
    for (const d of docs) put(d);
  });
  /** A file's documents that it no longer holds go (a feed keeps items that have scrolled off it). */
  const prune = db.transaction((origin: string, seen: Set<string>) => {
    for (const { id, key } of q.originKeys.all(origin))
      if (!seen.has(key)) {
        remove(id);
        progress.removed++;
      }
  });

  try {
    const pending: SourceDocument[] = [];
    const seen = new Map<string, Set<string>>();
    for await (const event of readIndexSources(specs)) {
      if (event.kind === "skip") {
        progress.skipped.push({ source: event.source, reason: event.reason });
        continue;
      }
      const d = event.doc;
      if (!d.isFeed) {
        if (!seen.has(d.origin)) seen.set(d.origin, new Set());
        seen.get(d.origin)?.add(d.key);
      }
      pending.push(d);
      if (pending.length >= (o.commitEvery ?? 64)) commit(pending.splice(0));
      o.onDocument?.(d, progress);
    }
    commit(pending.splice(0));
    for (const [origin, keys] of seen) prune(origin, keys);
    db.exec("INSERT INTO passages_fts(passages_fts) VALUES ('optimize')");
  } finally {
    db.close();
  }
  return progress;
}

export interface IndexStats {
  documents: number;
  passages: number;
  format: number;
  newest?: string;
}

export function indexStats(db: IndexDatabase): IndexStats {
  const count = (table: string) => Number(db.prepare(`SELECT count(*) FROM ${table}`).pluck().get());
  const newest = db.prepare("SELECT max(date) FROM documents").pluck().get() as string | null;
  return {
    documents: count("documents"),
    passages: count("passages"),
    format: Number(db.prepare("SELECT value FROM meta WHERE key = 'format'").pluck().get()),
    newest: newest ?? undefined,
  };
}
