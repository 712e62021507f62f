// One llama.cpp decode measurement in a process of its own (so no other thread pool is
// awake beside it): `node --import tsx llama-cpp-worker.ts GGUF THREADS CONTEXT TOKENS`
// prints the median tok/s of 3 greedy generations of TOKENS tokens at batch 1.
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { median } from "./configs.ts";

const [path, threads, contextSize, tokens] = process.argv.slice(2) as [string, string, string, string];
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: path });
const rates: number[] = [];
for (let i = 0; i < 4; i++) {
  const context = await model.createContext({ contextSize: Number(contextSize), threads: Number(threads) });
  let n = 0;
  const t = performance.now();
  for await (const _ of context.getSequence().evaluate([i + 1] as never, { temperature: 0 })) {
    if (++n >= Number(tokens)) break;
  }
  if (i > 0) rates.push(Number(tokens) / ((performance.now() - t) / 1000)); // the first is a warm-up
  await context.dispose();
}
console.log(JSON.stringify({ tok_per_s: median(rates) }));
await model.dispose();
await llama.dispose();
