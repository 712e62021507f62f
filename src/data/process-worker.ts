// A corpus worker: builds the steps once, then processes the batches it is sent.
import { parentPort, workerData } from "node:worker_threads";
import { processBatch, type RawDocument, StepRunner } from "./process.ts";
import type { StepSpec } from "./steps/index.ts";

// Messages that arrive while the steps load wait in the port's queue.
const runner = await StepRunner.create((workerData as { steps: StepSpec[] }).steps);
parentPort?.on("message", (docs: RawDocument[]) => parentPort?.postMessage(processBatch(runner, docs)));
