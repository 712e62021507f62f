// Retrieved passages as context for an answer: the top passages for the user's turn go into
// the system turn with numbered sources, and the answer is followed by the sources it used
// (those it cites as [n], or all that it was given when it cites none).
import { type DateWindow, dateWindow } from "./dates.ts";
import type { IndexDatabase } from "./index.ts";
import { type SearchHit, search } from "./search.ts";

export interface ContextOptions {
  k?: number;
  /** the clock, for date words in the question ("today", "今天") */
  now?: Date;
  timezone?: string;
}

export interface GroundedContext {
  /** what goes into the system turn ("" when nothing was found) */
  system: string;
  hits: SearchHit[];
  /** the date window the question named, if any */
  window: DateWindow | null;
}

const day = (date?: string) => (date ? date.slice(0, 10) : "");

/** One source's heading line: [n] title, date, link. */
export function sourceLine(hit: SearchHit): string {
  return [`[${hit.n}] ${hit.title}`, day(hit.date), hit.link ?? ""].filter((s) => s !== "").join(", ");
}

/** Passages with their numbered headings, as the model and the search tool read them. */
export function formatHits(hits: SearchHit[]): string {
  return hits.map((h) => `${sourceLine(h)}\n${h.text}`).join("\n\n");
}

export function searchContext(db: IndexDatabase, question: string, o: ContextOptions = {}): GroundedContext {
  const window = dateWindow(question, o.now ?? new Date(), o.timezone);
  const hits = search(db, question, { k: o.k ?? 3, since: window?.since, until: window?.until });
  if (hits.length === 0) return { system: "", hits, window };
  const intro = window ? `Search results from ${window.days[0]} to ${window.days[1]}` : "Search results";
  return { system: `${intro} (cite them as [n]):\n\n${formatHits(hits)}`, hits, window };
}

/**
 * The sources an answer used, to put after it ("" when there were none): a list, one source
 * a line, that reads the same in a terminal and as Markdown on the chat page.
 */
export function sourcesFooter(answer: string, hits: SearchHit[]): string {
  if (hits.length === 0) return "";
  const cited = new Set([...answer.matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1])));
  const used = hits.filter((h) => cited.has(h.n));
  return `\n\nSources:\n${(used.length ? used : hits).map((h) => `- ${sourceLine(h)}`).join("\n")}`;
}
