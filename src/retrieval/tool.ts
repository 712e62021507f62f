// Search as a tool the model calls itself: a query (with date words such as "today"
// narrowing it on the clock's calendar) in, numbered passages with their sources out.
import { z } from "zod";
import { defineTool, type Tool } from "../agent/tool.ts";
import { formatHits } from "./context.ts";
import { dateWindow } from "./dates.ts";
import type { IndexDatabase } from "./index.ts";
import { search } from "./search.ts";

const args = z
  .object({
    query: z.string().min(1).max(1000).describe("what to look for"),
    k: z.number().int().min(1).max(10).optional().describe("how many passages (default 3)"),
  })
  .strict();

export function searchTool(db: IndexDatabase, clock: { now?: () => Date; timezone?: string } = {}): Tool {
  return defineTool("search", "Search the documents and news for passages about a query.", args, (a) => {
    const window = dateWindow(a.query, clock.now?.() ?? new Date(), clock.timezone);
    const hits = search(db, a.query, { k: a.k ?? 3, since: window?.since, until: window?.until });
    return hits.length ? formatHits(hits) : "no results";
  });
}
