// A corpus worker: builds the steps once, then processes the batches it is sent.
import { parentPort, workerData } from "node:worker_threads";
import { processBatch, type RawDocument, StepRunner } from "./process.ts";
import type { StepSpec } from "./steps/index.ts";

const runner = new StepRunner((workerData as { steps: StepSpec[] }).steps);
parentPort?.on("message", (docs: RawDocument[]) => parentPort?.postMessage(processBatch(runner, docs)));
