// The main thread's handle on the engine worker: generate() resolves when a request is
// done and reports tokens as they come; a bounded queue refuses work beyond its size.
// It watches the worker: a worker that dies fails its requests and refuses new ones, and
// one that holds requests without finishing an engine step for too long is "stalled".
import type { Worker } from "node:worker_threads";
import type { GenerationOptions, GenerationResult, PromptImages } from "../infer/engine.ts";
import { startWorker } from "../io/worker.ts";
import type { InjectedFault, WorkerData, WorkerEvent, WorkerRequest } from "./engine-worker.ts";

export class QueueFullError extends Error {}
/** The engine is not running (its thread died); nothing can be generated. */
export class EngineDownError extends Error {}

interface Pending {
  onToken?: (text: string, token: number, logprob: number) => void;
  resolve: (r: GenerationResult) => void;
  reject: (e: Error) => void;
}

export interface EngineHealth {
  status: "ok" | "stalled" | "stopped";
  in_flight: number;
  /** seconds since the engine last finished a step (or went idle) */
  since_progress_s: number;
  error?: string;
}

export interface GeneratorOptions {
  modelDir: string;
  slots: number;
  threads: number;
  /** requests generating or queued at once; more get QueueFullError */
  maxInFlight: number;
  /** seconds without a finished engine step, with requests in flight, before health says "stalled" */
  stallSeconds: number;
  fault?: InjectedFault;
}

export class Generator {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private lastProgress = performance.now();
  private stopped: string | null = null;
  readonly ready: Promise<void>;
  readonly maxInFlight: number;

  constructor(private readonly o: GeneratorOptions) {
    this.maxInFlight = o.maxInFlight;
    const data: WorkerData = { modelDir: o.modelDir, slots: o.slots, threads: o.threads, fault: o.fault };
    this.worker = startWorker(new URL("./engine-worker.ts", import.meta.url), data);
    this.ready = new Promise((resolve, reject) => {
      const onMessage = (m: { type: string }) => {
        if (m.type !== "ready") return;
        this.worker.off("message", onMessage);
        resolve();
      };
      this.worker.on("message", onMessage);
      this.worker.once("error", reject);
      this.worker.once("exit", (code) => reject(new Error(`the engine stopped while loading (exit code ${code})`)));
    });
    this.worker.on("message", (m: WorkerEvent | { type: "ready" }) => this.dispatch(m));
    this.worker.on("error", (e) => this.stop(`the engine failed: ${e.message}`));
    this.worker.on("exit", (code) => this.stop(`the engine stopped (exit code ${code})`));
  }

  get inFlight(): number {
    return this.pending.size;
  }

  health(): EngineHealth {
    const idle = this.pending.size === 0;
    if (idle) this.lastProgress = performance.now();
    const since = (performance.now() - this.lastProgress) / 1000;
    const base = { in_flight: this.pending.size, since_progress_s: Math.round(since * 10) / 10 };
    if (this.stopped) return { status: "stopped", ...base, error: this.stopped };
    return { status: since > this.o.stallSeconds ? "stalled" : "ok", ...base };
  }

  generate(
    prompt: number[],
    options: Partial<GenerationOptions>,
    onToken?: Pending["onToken"],
    signal?: AbortSignal,
    images?: PromptImages,
  ): Promise<GenerationResult> {
    if (this.stopped) return Promise.reject(new EngineDownError(this.stopped));
    if (this.pending.size >= this.maxInFlight)
      return Promise.reject(new QueueFullError("the server is busy; try again shortly"));
    if (this.pending.size === 0) this.lastProgress = performance.now();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { onToken, resolve, reject });
      this.send({ type: "generate", id, prompt, options, ...(images ? { images } : {}) });
      signal?.addEventListener("abort", () => this.send({ type: "cancel", id }), { once: true });
    });
  }

  async close(): Promise<void> {
    this.stopped ??= "the server is shutting down";
    await this.worker.terminate();
  }

  private stop(reason: string): void {
    if (this.stopped) return;
    this.stopped = reason;
    for (const p of this.pending.values()) p.reject(new EngineDownError(reason));
    this.pending.clear();
  }

  private send(m: WorkerRequest): void {
    if (!this.stopped) this.worker.postMessage(m);
  }

  private dispatch(m: WorkerEvent | { type: "ready" }): void {
    if (m.type === "ready") return;
    this.lastProgress = performance.now();
    if (m.type === "step") return;
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
