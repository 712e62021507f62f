// A reward written by the user as a TypeScript (or JavaScript) module:
//   export default function reward(answer: string, expected: string): number | Promise<number>
// It runs on a worker thread; each call waits at most `timeoutMs`, so a reward that hangs
// stops the run with an error instead of hanging it.
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Worker } from "node:worker_threads";
import { startWorker } from "../io/worker.ts";
import type { Reward } from "./grpo.ts";

export interface RewardModule {
  reward: Reward;
  close(): Promise<void>;
}

export function loadRewardModule(path: string, timeoutMs = 10_000): RewardModule {
  const url = pathToFileURL(isAbsolute(path) ? path : resolve(path)).href;
  const state = new SharedArrayBuffer(4);
  const value = new SharedArrayBuffer(8);
  const error = new SharedArrayBuffer(4096);
  const flag = new Int32Array(state);
  let worker: Worker | null = startWorker(new URL("./reward-worker.ts", import.meta.url), {
    path: url,
    state,
    value,
    error,
  });
  const reward: Reward = (answer, expected) => {
    if (!worker) throw new Error(`${path}: the reward module was stopped after an earlier failure`);
    Atomics.store(flag, 0, 0);
    worker.postMessage({ answer, expected });
    if (Atomics.wait(flag, 0, 0, timeoutMs) === "timed-out") {
      void worker.terminate();
      worker = null;
      throw new Error(`${path}: the reward took longer than ${timeoutMs} ms`);
    }
    if (Atomics.load(flag, 0) === 2) {
      const length = new DataView(error).getUint32(0, true);
      throw new Error(`${path}: ${new TextDecoder().decode(new Uint8Array(error, 4, length))}`);
    }
    return new Float64Array(value)[0] as number;
  };
  return {
    reward,
    close: async () => {
      await worker?.terminate();
      worker = null;
    },
  };
}
