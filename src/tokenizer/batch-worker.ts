// Worker thread of EncoderPool.
import { parentPort, workerData } from "node:worker_threads";
import { loadBpeTokenizer } from "./files.ts";

const tok = loadBpeTokenizer((workerData as { spec: string }).spec);
parentPort?.on("message", (texts: string[]) => {
  const ids = texts.map((t) => Uint32Array.from(tok.encodeOrdinary(t)));
  parentPort?.postMessage(
    ids,
    ids.map((a) => a.buffer),
  );
});
