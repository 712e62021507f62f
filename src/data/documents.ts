// Documents from the paths a user gives: text and Markdown files (one document each),
// JSONL (one document per line, its "text" field), folders (recursively), and the
// built-in corpora (sotu: one document per address).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { loadCorpus, sotuDocuments } from "./corpora.ts";

export interface Document {
  text: string;
  /** where it came from, for error messages: file or file:line */
  source: string;
}

const TEXT_EXTENSIONS = new Set([".txt", ".md", ".text", ""]);

export async function* readDocuments(paths: string[]): AsyncGenerator<Document> {
  for (const path of paths) {
    if (path === "sotu") {
      yield* sotuDocuments().map((text, i) => ({ text, source: `sotu#${i}` }));
      continue;
    }
    if (path === "tinyshakespeare") {
      yield { text: await loadCorpus(path), source: path };
      continue;
    }
    yield* fromPath(path);
  }
}

function* fromPath(path: string): Generator<Document> {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(path);
  } catch {
    throw new Error(`${path}: no such file or directory (and not a built-in corpus: sotu, tinyshakespeare)`);
  }
  if (stat.isDirectory()) {
    for (const name of readdirSync(path).sort()) yield* fromPath(join(path, name));
    return;
  }
  const ext = extname(path).toLowerCase();
  if (ext === ".jsonl") {
    yield* fromJsonl(path);
    return;
  }
  if (!TEXT_EXTENSIONS.has(ext)) throw new Error(`${path}: unsupported file type ${ext} (text, Markdown or JSONL)`);
  const bytes = readFileSync(path);
  if (bytes.includes(0)) throw new Error(`${path}: looks like a binary file (it contains NUL bytes)`);
  yield { text: bytes.toString("utf8"), source: path };
}

function* fromJsonl(path: string): Generator<Document> {
  const lines = readFileSync(path, "utf8").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (!line) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new Error(`${path}:${i + 1}: invalid JSON`);
    }
    const text = (value as { text?: unknown })?.text;
    if (typeof text !== "string") throw new Error(`${path}:${i + 1}: expected an object with a string "text" field`);
    yield { text, source: `${path}:${i + 1}` };
  }
}
