// JSONL output shards, one folder per split (train/00000.jsonl, ...). A shard is written
// under a temporary name and renamed when committed, so a crash never leaves a partial
// shard under a real name.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync } from "node:fs";
import { join } from "node:path";
import { writeFully } from "../io/atomic.ts";

export const shardName = (index: number) => `${String(index).padStart(5, "0")}.jsonl`;

export class ShardWriter {
  private fd: number | null = null;
  private pending: string[] = [];
  private pendingChars = 0;
  docs = 0;
  bytes = 0;

  constructor(
    private readonly dir: string,
    /** index of the shard being written */
    public index: number,
  ) {}

  private get tmpPath(): string {
    return join(this.dir, `.${shardName(this.index)}.tmp`);
  }

  write(line: string, bytes: number): void {
    this.pending.push(line);
    this.pendingChars += line.length;
    this.docs++;
    this.bytes += bytes;
    if (this.pendingChars > 1 << 20) this.flush();
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    if (this.fd === null) {
      mkdirSync(this.dir, { recursive: true });
      this.fd = openSync(this.tmpPath, "w");
    }
    writeFully(this.fd, this.pending.join(""));
    this.pending = [];
    this.pendingChars = 0;
  }

  /** Makes the current shard durable under its real name; the next write starts a new one. */
  commit(): void {
    if (this.docs === 0) return;
    this.flush();
    const fd = this.fd as number;
    fsyncSync(fd);
    closeSync(fd);
    renameSync(this.tmpPath, join(this.dir, shardName(this.index)));
    this.fd = null;
    this.index++;
    this.docs = 0;
    this.bytes = 0;
  }

  /** Drops the uncommitted shard (after a failure). */
  abandon(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
