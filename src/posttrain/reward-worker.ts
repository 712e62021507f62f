// The worker side of a user's reward module (reward-module.ts): imports the module, then
// answers each request through shared memory, so the trainer can wait with a time limit.
import { parentPort, workerData } from "node:worker_threads";
import { tsImport } from "tsx/esm/api";

const { path, state, value, error } = workerData as {
  path: string;
  state: SharedArrayBuffer;
  value: SharedArrayBuffer;
  error: SharedArrayBuffer;
};
const flag = new Int32Array(state);
const result = new Float64Array(value);
const message = new Uint8Array(error);

function done(code: 1 | 2, text = ""): void {
  const bytes = new TextEncoder().encode(text).subarray(0, message.length - 4);
  new DataView(error).setUint32(0, bytes.length, true);
  message.set(bytes, 4);
  Atomics.store(flag, 0, code);
  Atomics.notify(flag, 0);
}

type RewardFn = (answer: string, expected: string) => number | Promise<number>;

// tsx's own import: a .ts file loads as a module wherever it sits (a folder without "type": "module" too).
const loaded = tsImport(path, import.meta.url).then((m: { default?: unknown; reward?: unknown }) => {
  // Loaded as CommonJS (outside an ESM package), the module's default export sits one level down.
  const inner = m.default as { default?: unknown; reward?: unknown } | undefined;
  const fn = typeof m.default === "function" ? m.default : (inner?.default ?? inner?.reward ?? m.reward);
  if (typeof fn !== "function") throw new Error("exports no function (export default (answer, expected) => number)");
  return fn as RewardFn;
});

parentPort?.on("message", async (req: { answer: string; expected: string }) => {
  try {
    result[0] = await (await loaded)(req.answer, req.expected);
    done(1);
  } catch (e) {
    done(2, (e as Error)?.message ?? String(e));
  }
});
