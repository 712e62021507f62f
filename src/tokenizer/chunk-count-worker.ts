// Worker thread of countChunks: counts the chunks of the text blocks it receives and,
// on a null message, sends its table back.
import { parentPort, workerData } from "node:worker_threads";
import { type ChunkCounts, countChunksIn } from "./chunk-count.ts";
import { compilePattern } from "./patterns.ts";

const regex = compilePattern((workerData as { pattern: string }).pattern);
const counts: ChunkCounts = new Map();
parentPort?.on("message", (text: string | null) => {
  if (text === null) parentPort?.postMessage([...counts]);
  else countChunksIn(text, regex, counts);
});
