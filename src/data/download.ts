// Downloads into a cache: retries with backoff on network errors and 5xx/429 answers,
// resumes a partial download with an HTTP Range request, verifies a SHA-256 when one is
// given, and says plainly when the machine is offline.
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { basename, join } from "node:path";
import { cacheDir } from "../io/cache.ts";

export interface DownloadOptions {
  sha256?: string;
  retries?: number;
  /** first backoff in milliseconds, doubled after each failure */
  backoffMs?: number;
  dir?: string;
}

const OFFLINE_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ENETUNREACH", "EHOSTUNREACH"]);

export async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Where a URL is cached: a hash of the URL keeps names unique, the basename keeps the extension. */
export function cachedPath(url: string, dir = join(cacheDir(), "downloads")): string {
  const name = basename(new URL(url).pathname) || "index.html";
  return join(dir, `${createHash("sha256").update(url).digest("hex").slice(0, 16)}-${name}`);
}

class PermanentError extends Error {}

/** Downloads url (once) and returns the cached file's path. */
export async function download(url: string, o: DownloadOptions = {}): Promise<string> {
  const path = cachedPath(url, o.dir);
  if (existsSync(path)) return path;
  mkdirSync(join(path, ".."), { recursive: true });
  const part = `${path}.part`;
  const retries = o.retries ?? 3;
  let delay = o.backoffMs ?? 500;
  for (let attempt = 0; ; attempt++) {
    try {
      await fetchInto(url, part);
      break;
    } catch (e) {
      const err = e as Error & { cause?: { code?: string; message?: string } };
      if (err instanceof PermanentError) throw err;
      const code = err.cause?.code;
      if (code && OFFLINE_CODES.has(code) && attempt >= retries)
        throw new Error(
          `cannot reach ${new URL(url).host} (${code}): offline? download ${url} by hand and pass the file`,
        );
      const detail = err.cause?.message ? `${err.message}: ${err.cause.message}` : err.message;
      if (attempt >= retries) throw new Error(`download of ${url} failed after ${retries + 1} attempts: ${detail}`);
      await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
    }
  }
  if (o.sha256) {
    const got = await fileSha256(part);
    if (got !== o.sha256.toLowerCase()) {
      rmSync(part);
      throw new Error(`${url}: sha256 ${got} does not match the expected ${o.sha256}`);
    }
  }
  renameSync(part, path);
  return path;
}

/** One attempt: appends to the partial file, asking the server for the rest only. */
async function fetchInto(url: string, part: string): Promise<void> {
  const have = existsSync(part) ? statSync(part).size : 0;
  const res = await fetch(url, { headers: have > 0 ? { Range: `bytes=${have}-` } : {} });
  if (res.status === 416) return; // the partial file is already whole
  if (res.status === 429 || res.status >= 500) throw new Error(`HTTP ${res.status}`);
  if (!res.ok) throw new PermanentError(`${url}: HTTP ${res.status} ${res.statusText}`);
  if (res.status !== 206) writeFileSync(part, ""); // the server ignored the range: start over
  if (!res.body) return;
  const file = await open(part, "a");
  try {
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      await file.write(value);
    }
  } finally {
    await file.close();
  }
}
