// Batch encoding on worker threads: each worker loads the tokenizer once, then encodes
// the batches it is sent. Results come back in order.
import type { Worker } from "node:worker_threads";
import { startWorker } from "../io/worker.ts";
import { loadBpeTokenizer } from "./files.ts";
import type { Tokenizer } from "./tokenizer.ts";

export class EncoderPool {
  private readonly workers: Worker[];
  private readonly local: Tokenizer | null;
  private next = 0;

  /** spec: a tokenizer directory or built-in name; threads <= 1 encodes on this thread. */
  constructor(spec: string, threads: number) {
    this.local = threads <= 1 ? loadBpeTokenizer(spec) : null;
    this.workers =
      threads <= 1
        ? []
        : Array.from({ length: threads }, () => startWorker(new URL("./batch-worker.ts", import.meta.url), { spec }));
  }

  /** Encodes texts (ordinary text, no special tokens). */
  async encode(texts: string[]): Promise<Uint32Array[]> {
    if (this.local) {
      const tok = this.local;
      return texts.map((t) => Uint32Array.from(tok.encodeOrdinary(t)));
    }
    const n = this.workers.length;
    const parts = Array.from({ length: n }, (_, w) => texts.filter((_, i) => i % n === w));
    const results = await Promise.all(parts.map((p, w) => this.ask(this.workers[(w + this.next) % n] as Worker, p)));
    this.next++;
    return texts.map((_, i) => (results[i % n] as Uint32Array[])[Math.floor(i / n)] as Uint32Array);
  }

  private ask(worker: Worker, texts: string[]): Promise<Uint32Array[]> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      worker.once("error", onError);
      worker.once("message", (ids: Uint32Array[]) => {
        worker.off("error", onError);
        resolve(ids);
      });
      worker.postMessage(texts);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
