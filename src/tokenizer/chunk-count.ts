// Counting pre-tokenized chunks: the whole input of BPE training is reduced to a table
// of distinct chunks and their counts, so memory depends on that table, not the corpus.
// Files are streamed in blocks and counted on worker threads.
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { StringDecoder } from "node:string_decoder";
import type { Worker } from "node:worker_threads";
import { startWorker } from "../io/worker.ts";
import { compilePattern } from "./patterns.ts";

export type ChunkCounts = Map<string, number>;

const BLOCK_BYTES = 1 << 22;

export function countChunksIn(text: string, regex: RegExp, counts: ChunkCounts): void {
  regex.lastIndex = 0;
  for (let m = regex.exec(text); m !== null; m = regex.exec(text)) {
    const c = m[0];
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
}

/** Calls onBlock with text blocks of a file, each ending at a line break where possible. */
export function readTextBlocks(path: string, onBlock: (text: string) => void): number {
  const fd = openSync(path, "r");
  const decoder = new StringDecoder("utf8");
  const buf = Buffer.alloc(BLOCK_BYTES);
  let carry = "";
  let total = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, BLOCK_BYTES, null);
      if (n === 0) break;
      total += n;
      if (buf.subarray(0, n).includes(0)) throw new Error(`${path}: looks like a binary file (it contains NUL bytes)`);
      const text = carry + decoder.write(buf.subarray(0, n));
      const cut = text.lastIndexOf("\n") + 1;
      carry = cut > 0 ? text.slice(cut) : text;
      if (cut > 0) onBlock(text.slice(0, cut));
    }
    carry += decoder.end();
    if (carry) onBlock(carry);
  } finally {
    closeSync(fd);
  }
  return total;
}

/** Below this much input per thread, starting workers costs more than it saves. */
const BYTES_PER_WORKER = 32 << 20;

/** Counts the chunks of every file, on up to `threads` worker threads. */
export async function countChunks(
  paths: string[],
  pattern: string,
  threads: number,
): Promise<{ counts: ChunkCounts; bytes: number }> {
  const regex = compilePattern(pattern);
  const total = paths.reduce((sum, p) => sum + statSync(p).size, 0);
  threads = Math.min(threads, Math.ceil(total / BYTES_PER_WORKER));
  if (threads <= 1) {
    const counts: ChunkCounts = new Map();
    let bytes = 0;
    for (const p of paths) bytes += readTextBlocks(p, (text) => countChunksIn(text, regex, counts));
    return { counts, bytes };
  }
  const workers = Array.from({ length: threads }, () =>
    startWorker(new URL("./chunk-count-worker.ts", import.meta.url), { pattern }),
  );
  let next = 0;
  let bytes = 0;
  for (const p of paths) {
    bytes += readTextBlocks(p, (text) => {
      (workers[next++ % threads] as Worker).postMessage(text);
    });
  }
  const tables = await Promise.all(
    workers.map(
      (w) =>
        new Promise<[string, number][]>((resolve, reject) => {
          w.once("message", resolve);
          w.once("error", reject);
          w.postMessage(null); // end of input: send back the table
        }),
    ),
  );
  await Promise.all(workers.map((w) => w.terminate()));
  const counts: ChunkCounts = new Map(tables[0]);
  for (const table of tables.slice(1)) for (const [c, n] of table) counts.set(c, (counts.get(c) ?? 0) + n);
  return { counts, bytes };
}
