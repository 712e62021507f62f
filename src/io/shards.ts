// Token shards: a 32-byte header, then little-endian token ids.
//   bytes 0-7   magic "LLMFABTK"
//   bytes 8-11  version (1), uint32
//   bytes 12-15 bytes per token (2: uint16, 4: uint32), uint32
//   bytes 16-23 token count, uint64
//   bytes 24-31 reserved (0)
// Shards are read by memory mapping, so only the pages a batch touches are loaded.
import { closeSync, fsyncSync, openSync, renameSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { native } from "../backend/native.ts";
import { writeFully } from "./atomic.ts";

export const SHARD_MAGIC = "LLMFABTK";
export const SHARD_VERSION = 1;
export const HEADER_BYTES = 32;

export type TokenArray = Uint16Array | Uint32Array | Int32Array;

export function tokenWidth(vocabSize: number): 2 | 4 {
  return vocabSize <= 65536 ? 2 : 4;
}

/** Streams tokens into a shard file; it appears under its name only once finished. */
export class ShardWriter {
  private readonly fd: number;
  private readonly tmp: string;
  private count = 0;

  constructor(
    private readonly path: string,
    private readonly width: 2 | 4,
  ) {
    this.tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
    this.fd = openSync(this.tmp, "w");
    writeFully(this.fd, header(width, 0));
  }

  get tokens(): number {
    return this.count;
  }

  write(ids: ArrayLike<number>): void {
    const buf = this.width === 2 ? Uint16Array.from(ids) : Uint32Array.from(ids);
    writeFully(this.fd, new Uint8Array(buf.buffer));
    this.count += ids.length;
  }

  close(): void {
    writeFully(this.fd, header(this.width, this.count), 0);
    fsyncSync(this.fd);
    closeSync(this.fd);
    renameSync(this.tmp, this.path);
  }
}

function header(width: number, count: number): Uint8Array {
  const h = Buffer.alloc(HEADER_BYTES);
  h.write(SHARD_MAGIC, 0, "latin1");
  h.writeUInt32LE(SHARD_VERSION, 8);
  h.writeUInt32LE(width, 12);
  h.writeBigUInt64LE(BigInt(count), 16);
  return h;
}

/** Maps a shard into memory and returns its tokens (no copy). */
export function readShard(path: string): TokenArray {
  const buf = native.mapFile(path);
  const bad = (why: string) => new Error(`${path}: not a token shard: ${why}`);
  if (buf.byteLength < HEADER_BYTES) throw bad("shorter than its header");
  const h = Buffer.from(buf, 0, HEADER_BYTES);
  if (h.toString("latin1", 0, 8) !== SHARD_MAGIC) throw bad("wrong magic bytes");
  if (h.readUInt32LE(8) !== SHARD_VERSION) throw bad(`unsupported version ${h.readUInt32LE(8)}`);
  const width = h.readUInt32LE(12);
  if (width !== 2 && width !== 4) throw bad(`unsupported token width ${width}`);
  const count = Number(h.readBigUInt64LE(16));
  if (HEADER_BYTES + count * width !== buf.byteLength)
    throw bad(`header says ${count} tokens but the file holds ${(buf.byteLength - HEADER_BYTES) / width}`);
  return width === 2 ? new Uint16Array(buf, HEADER_BYTES, count) : new Uint32Array(buf, HEADER_BYTES, count);
}
