// Worker threads that run TypeScript modules. A worker does not inherit the tsx loader
// that runs the main thread, so a small bootstrap registers it and imports the module.
import { type ResourceLimits, Worker } from "node:worker_threads";

const tsxApi = import.meta.resolve("tsx/esm/api");

export function startWorker(module: URL, workerData: unknown, resourceLimits?: ResourceLimits): Worker {
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then(({ register }) => { register(); return import(${JSON.stringify(module.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData, resourceLimits });
}
