// The main thread's handle on the engine worker: generate() resolves when a request is
// done and reports tokens as they come; a bounded queue refuses work beyond its size.
import type { Worker } from "node:worker_threads";
import type { GenerationOptions, GenerationResult } from "../infer/engine.ts";
import { startWorker } from "../io/worker.ts";
import type { WorkerEvent, WorkerRequest } from "./engine-worker.ts";

export class QueueFullError extends Error {}

interface Pending {
  onToken?: (text: string, token: number, logprob: number) => void;
  resolve: (r: GenerationResult) => void;
  reject: (e: Error) => void;
}

export class Generator {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  readonly ready: Promise<void>;

  /** maxInFlight: requests generating or queued at once; more get QueueFullError. */
  constructor(
    modelDir: string,
    slots: number,
    threads: number,
    readonly maxInFlight: number,
  ) {
    this.worker = startWorker(new URL("./engine-worker.ts", import.meta.url), { modelDir, slots, threads });
    this.ready = new Promise((resolve, reject) => {
      const onMessage = (m: { type: string }) => {
        if (m.type !== "ready") return;
        this.worker.off("message", onMessage);
        resolve();
      };
      this.worker.on("message", onMessage);
      this.worker.once("error", reject);
    });
    this.worker.on("message", (m: WorkerEvent | { type: "ready" }) => this.dispatch(m));
    this.worker.on("error", (e) => {
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    });
  }

  get inFlight(): number {
    return this.pending.size;
  }

  generate(
    prompt: number[],
    options: Partial<GenerationOptions>,
    onToken?: Pending["onToken"],
    signal?: AbortSignal,
  ): Promise<GenerationResult> {
    if (this.pending.size >= this.maxInFlight)
      return Promise.reject(new QueueFullError("the server is busy; try again shortly"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { onToken, resolve, reject });
      this.send({ type: "generate", id, prompt, options });
      signal?.addEventListener("abort", () => this.send({ type: "cancel", id }), { once: true });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }

  private send(m: WorkerRequest): void {
    this.worker.postMessage(m);
  }

  private dispatch(m: WorkerEvent | { type: "ready" }): void {
    if (m.type === "ready") return;
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.type === "token") p.onToken?.(m.text, m.token, m.logprob);
    else {
      this.pending.delete(m.id);
      if (m.type === "done") p.resolve(m.result);
      else p.reject(new Error(m.message));
    }
  }
}
