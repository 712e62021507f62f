// The inference engine on its own thread, so the HTTP server stays responsive while it
// generates. Messages in: generate / cancel. Messages out: token / done / error, and a
// heartbeat after engine steps (at most five a second) so the server can tell a busy
// engine from a stuck one.
import { parentPort, workerData } from "node:worker_threads";
import { native } from "../backend/native.ts";
import { Engine, type GenerationOptions, type GenerationResult, type PromptImages } from "../infer/engine.ts";
import type { Model } from "../model/model.ts";
import { loadAnyModel } from "../model/peft.ts";
import { loadChatCodec } from "../pipeline/codec.ts";

export type WorkerRequest =
  | { type: "generate"; id: number; prompt: number[]; options: Partial<GenerationOptions>; images?: PromptImages }
  | { type: "cancel"; id: number };

export type WorkerEvent =
  | { type: "token"; id: number; token: number; text: string; logprob: number }
  | { type: "done"; id: number; result: GenerationResult }
  | { type: "error"; id: number; message: string }
  | { type: "step" };

/**
 * A fault to inject, for tests of what the server does when the engine fails: the
 * model's forward pass number `at` (1-based) throws, blocks for `ms`, or ends the thread.
 */
export interface InjectedFault {
  kind: "throw" | "hang" | "exit";
  at: number;
  ms?: number;
}

export interface WorkerData {
  modelDir: string;
  slots: number;
  threads: number;
  fault?: InjectedFault;
}

const { modelDir, slots, threads, fault } = workerData as WorkerData;
native.setThreads(threads);
const engine = new Engine(withFault(loadAnyModel(modelDir), fault), loadChatCodec(modelDir), slots);
const engineIds = new Map<number, number>();
let running = false;
const HEARTBEAT_MS = 200;
let lastHeartbeat = 0;

function post(e: WorkerEvent): void {
  parentPort?.postMessage(e);
}

function withFault(model: Model, f: InjectedFault | undefined): Model {
  if (!f) return model;
  let calls = 0;
  const forward: Model["forward"] = (...args) => {
    calls++;
    if (calls === f.at) {
      if (f.kind === "throw") throw new Error(`injected fault in forward pass ${calls}`);
      if (f.kind === "exit") process.exit(3);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, f.ms ?? 1000);
    }
    return model.forward(...args);
  };
  return { ...model, forward };
}

/** Steps the engine, yielding to the message queue between steps so new requests join. */
function pump(): void {
  if (running) return;
  running = true;
  const loop = () => {
    if (engine.idle) {
      running = false;
      return;
    }
    engine.step();
    // The heartbeat: a few a second are enough to tell progress (tokens count too).
    const now = performance.now();
    if (now - lastHeartbeat > HEARTBEAT_MS) {
      lastHeartbeat = now;
      post({ type: "step" });
    }
    setImmediate(loop);
  };
  setImmediate(loop);
}

parentPort?.on("message", (m: WorkerRequest) => {
  if (m.type === "cancel") {
    const engineId = engineIds.get(m.id);
    if (engineId !== undefined) engine.cancel(engineId);
    return;
  }
  try {
    const engineId = engine.submit({
      prompt: m.prompt,
      ...(m.images ? { images: m.images } : {}),
      options: m.options,
      onToken: (t) => post({ type: "token", id: m.id, token: t.id, text: t.text, logprob: t.logprob }),
      onDone: (result) => {
        engineIds.delete(m.id);
        post({ type: "done", id: m.id, result });
      },
      onError: (e) => {
        engineIds.delete(m.id);
        post({ type: "error", id: m.id, message: `generation failed: ${e.message}` });
      },
    });
    engineIds.set(m.id, engineId);
    pump();
  } catch (e) {
    post({ type: "error", id: m.id, message: (e as Error).message });
  }
});
parentPort?.postMessage({ type: "ready" });
