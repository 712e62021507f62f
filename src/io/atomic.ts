// Atomic writes: a file or a whole directory appears complete or not at all, so a crash
// mid-write never leaves a half-written checkpoint in place of a good one.
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";

/** Writes all of `content` to fd (at `position`, or the current offset): one write may be partial. */
export function writeFully(fd: number, content: Uint8Array | string, position: number | null = null): void {
  const bytes = typeof content === "string" ? Buffer.from(content) : content;
  let off = 0;
  while (off < bytes.length)
    off += writeSync(fd, bytes, off, bytes.length - off, position === null ? null : position + off);
}

function writeSynced(path: string, content: Uint8Array | string): void {
  const fd = openSync(path, "w");
  try {
    writeFully(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function writeFileAtomic(path: string, content: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  writeSynced(tmp, content);
  renameSync(tmp, path);
}

/** Writes one JSON value per line (JSONL), atomically. */
export function writeJsonLinesAtomic(path: string, values: readonly unknown[]): void {
  writeFileAtomic(path, values.map((v) => `${JSON.stringify(v)}\n`).join(""));
}

/** Replaces directory `dir` with one holding exactly `files`, atomically. */
export function writeDirAtomic(dir: string, files: Record<string, Uint8Array | string>): void {
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.${basename(dir)}.tmp-${process.pid}`);
  const old = join(parent, `.${basename(dir)}.old-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  for (const [name, content] of Object.entries(files)) writeSynced(join(tmp, name), content);
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}

/** Commands never overwrite: an output folder that exists and holds anything is refused. */
export function refuseExisting(out: string): void {
  if (existsSync(out) && readdirSync(out).length > 0) throw new Error(`${out} already exists; choose another --out`);
}

/**
 * Builds directory `dir` by running `fill` on a temporary folder beside it, which is
 * renamed to `dir` when fill succeeds and removed when it throws: a failed run leaves nothing.
 */
export async function buildDirAtomic<T>(dir: string, fill: (tmp: string) => Promise<T>): Promise<T> {
  refuseExisting(dir);
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.${basename(dir)}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    const result = await fill(tmp);
    rmSync(dir, { recursive: true, force: true }); // an empty folder the user made
    renameSync(tmp, dir);
    return result;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
