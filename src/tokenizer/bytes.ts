// Byte strings as JavaScript strings with one char (0-255) per byte ("binary" strings):
// cheap Map keys for token lookups, and exact for any bytes, valid UTF-8 or not.

const encoder = new TextEncoder();

export function bytesToBinary(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

export function binaryToBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** The UTF-8 bytes of a text, as a binary string. */
export function utf8Binary(text: string): string {
  // Latin-1 decoding maps each byte to the char of the same code: the binary string.
  return Buffer.from(encoder.encode(text)).toString("latin1");
}

/**
 * GPT-2's reversible map from bytes to printable characters, used by byte-level BPE
 * vocabularies in Hugging Face tokenizer.json files.
 */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const table = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = printable.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
  }
  return table;
}
