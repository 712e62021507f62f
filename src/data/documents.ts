// Documents for `llmfab tokenize`: every source the corpus pipeline reads (built-in
// corpora, text/Markdown/HTML files, JSONL, Parquet, PDF, folders, URLs), but strict: a
// source that cannot be read is an error here, since tokenizing silently less than asked
// would go unnoticed. (`llmfab corpus` skips and reports instead.)
import { checkSources, readSources } from "./sources.ts";

export interface Document {
  text: string;
  /** where it came from, for error messages: file or file:line */
  source: string;
}

export async function* readDocuments(paths: string[]): AsyncGenerator<Document> {
  checkSources(paths);
  for await (const event of readSources(paths, { textField: "text" })) {
    if (event.kind === "skip") throw new Error(`${event.source}: ${event.reason}`);
    yield { text: event.text, source: event.source };
  }
}
