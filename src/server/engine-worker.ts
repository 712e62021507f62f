// The inference engine on its own thread, so the HTTP server stays responsive while it
// generates. Messages in: generate / cancel. Messages out: token / done / error.
import { parentPort, workerData } from "node:worker_threads";
import { native } from "../backend/native.ts";
import { Engine, type GenerationOptions } from "../infer/engine.ts";
import { loadAnyModel } from "../model/peft.ts";
import { loadChatCodec } from "../pipeline/codec.ts";

export type WorkerRequest =
  | { type: "generate"; id: number; prompt: number[]; options: Partial<GenerationOptions> }
  | { type: "cancel"; id: number };

export type WorkerEvent =
  | { type: "token"; id: number; token: number; text: string; logprob: number }
  | { type: "done"; id: number; result: import("../infer/engine.ts").GenerationResult }
  | { type: "error"; id: number; message: string };

const { modelDir, slots, threads } = workerData as { modelDir: string; slots: number; threads: number };
native.setThreads(threads);
const engine = new Engine(loadAnyModel(modelDir), loadChatCodec(modelDir), slots);
const engineIds = new Map<number, number>();
let running = false;

function post(e: WorkerEvent): void {
  parentPort?.postMessage(e);
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
      options: m.options,
      onToken: (t) => post({ type: "token", id: m.id, token: t.id, text: t.text, logprob: t.logprob }),
      onDone: (result) => {
        engineIds.delete(m.id);
        post({ type: "done", id: m.id, result });
      },
    });
    engineIds.set(m.id, engineId);
    pump();
  } catch (e) {
    post({ type: "error", id: m.id, message: (e as Error).message });
  }
});
parentPort?.postMessage({ type: "ready" });
