// Text files are strict UTF-8: a binary file or an invalid byte sequence is an error that
// names the file and the byte, never text quietly full of replacement characters.
import { readFileSync } from "node:fs";

/** Decodes UTF-8, or throws "WHERE: invalid UTF-8 at byte N" / "WHERE: looks like a binary file". */
export function decodeText(bytes: Uint8Array, where: string): string {
  if (bytes.includes(0)) throw new Error(`${where}: looks like a binary file (it contains NUL bytes)`);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`${where}: invalid UTF-8 at byte ${firstInvalidByte(bytes)}; convert the file to UTF-8 first`);
  }
}

export function readTextFile(path: string): string {
  return decodeText(readFileSync(path), path);
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence. */
function firstInvalidByte(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i] as number;
    const n = c < 0x80 ? 0 : c >= 0xc2 && c < 0xe0 ? 1 : c >= 0xe0 && c < 0xf0 ? 2 : c >= 0xf0 && c < 0xf5 ? 3 : -1;
    if (n < 0) return i;
    const end = i + n + 1;
    if (end > b.length) return i;
    for (let k = i + 1; k < end; k++) if (((b[k] as number) & 0xc0) !== 0x80) return i;
    const second = b[i + 1] as number;
    // overlong forms, surrogates, and code points past U+10FFFF
    if ((c === 0xe0 && second < 0xa0) || (c === 0xed && second >= 0xa0)) return i;
    if ((c === 0xf0 && second < 0x90) || (c === 0xf4 && second >= 0x90)) return i;
    i = end;
  }
  return b.length;
}

/** Levenshtein distance between two sequences (strings, or arrays of characters). */
export function editDistance(a: ArrayLike<unknown>, b: ArrayLike<unknown>): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min(
        (row[j] as number) + 1,
        (next[j - 1] as number) + 1,
        (row[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    row = next;
  }
  return row[b.length] as number;
}
