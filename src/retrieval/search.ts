// Queries against the index: the question's words as an FTS5 OR-query ranked by BM25 (title
// matches weigh half a body match), optionally within a date window. A query of any size is
// cut to its first terms, so a 100 kB question costs what a long sentence does.
import type { IndexDatabase } from "./index.ts";

export interface SearchOptions {
  /** how many passages */
  k?: number;
  /** ISO dates or instants: only passages dated in [since, until) */
  since?: string;
  until?: string;
  /**
   * With a date window, fill up to k with the window's newest passages when too few match
   * the words ("what happened today?" names no word the news uses).
   */
  fillWithRecent?: boolean;
}

export interface SearchHit {
  /** 1-based rank, the number a citation uses */
  n: number;
  /** BM25 (lower is better), null for a passage added as recent */
  score: number | null;
  title: string;
  date?: string;
  link?: string;
  /** the document's key: its file, file:line, or feed item */
  source: string;
  offset: number;
  text: string;
}

/** Most terms a query uses; longer questions keep their first ones. */
export const MAX_QUERY_TERMS = 64;

const TERM = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]+|[\p{L}\p{N}]+/gu;
const CJK = /^[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u;

/**
 * English function words: BM25 gives them almost no weight, yet each one's posting list is
 * most of the index, so a query that keeps them is slow for nothing.
 */
const STOPWORDS = new Set(
  "a an and are as at be been but by can did do does for from had has have he her his i if in into is it its me my no not of on or our she so that the their them then there these they this those to was we were what when where which who will with would you your".split(
    " ",
  ),
);

/**
 * The FTS5 query for a question: each distinct word a quoted term, a CJK run a phrase of its
 * characters; function words left out unless the question has nothing else.
 */
export function ftsQuery(question: string): string {
  const terms = new Set<string>();
  const common = new Set<string>();
  for (const m of question.slice(0, 20_000).matchAll(TERM)) {
    const word = m[0].toLowerCase();
    const term = CJK.test(word) ? `"${[...word].join(" ")}"` : `"${word}"`;
    (STOPWORDS.has(word) ? common : terms).add(term);
    if (terms.size >= MAX_QUERY_TERMS) break;
  }
  return [...(terms.size ? terms : common)].slice(0, MAX_QUERY_TERMS).join(" OR ");
}

interface Row {
  id: number;
  score: number | null;
  title: string;
  date: string | null;
  link: string | null;
  key: string;
  offset: number;
  text: string;
}

const COLUMNS =
  "p.id AS id, d.title AS title, p.date AS date, d.link AS link, d.key AS key, p.offset AS offset, p.text AS text";

export function search(db: IndexDatabase, question: string, o: SearchOptions = {}): SearchHit[] {
  const k = o.k ?? 5;
  if (!Number.isInteger(k) || k < 1 || k > 100) throw new Error(`k must be an integer from 1 to 100, got ${k}`);
  const windowed = o.since !== undefined || o.until !== undefined;
  const range = "(? IS NULL OR p.date >= ?) AND (? IS NULL OR p.date < ?)";
  const since = o.since ?? null;
  const until = o.until ?? null;
  const query = ftsQuery(question);
  // Without a date window the top k are found in the full-text table alone, then joined.
  const ranked = windowed
    ? `SELECT ${COLUMNS}, bm25(passages_fts, 1.0, 0.5) AS score FROM passages_fts f
       JOIN passages p ON p.id = f.rowid JOIN documents d ON d.id = p.doc
       WHERE passages_fts MATCH ? AND ${range} ORDER BY score LIMIT ?`
    : `SELECT ${COLUMNS}, f.score AS score FROM
       (SELECT rowid, bm25(passages_fts, 1.0, 0.5) AS score FROM passages_fts WHERE passages_fts MATCH ? ORDER BY score LIMIT ?) f
       JOIN passages p ON p.id = f.rowid JOIN documents d ON d.id = p.doc ORDER BY f.score`;
  const rows: Row[] = query
    ? ((windowed
        ? db.prepare(ranked).all(query, since, since, until, until, k)
        : db.prepare(ranked).all(query, k)) as Row[])
    : [];
  if (windowed && o.fillWithRecent !== false && rows.length < k) {
    const have = new Set(rows.map((r) => r.id));
    const recent = db
      .prepare(
        `SELECT ${COLUMNS}, NULL AS score FROM passages p JOIN documents d ON d.id = p.doc
         WHERE p.date IS NOT NULL AND ${range} ORDER BY p.date DESC, p.id LIMIT ?`,
      )
      .all(since, since, until, until, k + have.size) as Row[];
    for (const r of recent) if (rows.length < k && !have.has(r.id)) rows.push(r);
  }
  return rows.map((r, i) => ({
    n: i + 1,
    score: r.score,
    title: r.title,
    date: r.date ?? undefined,
    link: r.link ?? undefined,
    source: r.key,
    offset: r.offset,
    text: r.text,
  }));
}
