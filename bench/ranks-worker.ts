// One data-parallel training benchmark, run on every rank by mpirun (or alone, as a job of
// one): each rank takes its share of the config's batch, the trainer sums the gradients
// across ranks (with "zero1", each rank keeps half the optimizer moments), and rank 0 prints the step time, the global tok/s, the time spent in
// all-reduce and the largest peak RSS of any rank.
import { communicator } from "../src/backend/mpi.ts";
import { native } from "../src/backend/native.ts";
import { makeConfig } from "../src/model/config.ts";
import { initModel } from "../src/model/model.ts";
import { trainable } from "../src/nn/parameters.ts";
import { Rng } from "../src/nn/random.ts";
import { type Precision, setPrecision } from "../src/tensor/index.ts";
import { rankRows } from "../src/train/distributed.ts";
import { Trainer } from "../src/train/trainer.ts";
import { BENCH_CONFIGS, type BenchConfigName, median } from "./configs.ts";

const [name, threads, precision, steps, warmup, shard] = process.argv.slice(2) as [
  BenchConfigName,
  string,
  Precision,
  string,
  string,
  string | undefined,
];
const c = BENCH_CONFIGS[name];
const comm = communicator();
native.setThreads(Number(threads));
setPrecision(precision);
const model = initModel(makeConfig({ arch: "gpt2", bias: false, ...c }));
const trainer = new Trainer(trainable(model.params), {
  adam: { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 },
  schedule: { lr: 1e-3, minLr: 1e-3, warmupIters: 0, decayIters: 1 },
  gradClip: 1,
  comm,
  shardOptimizer: shard === "zero1",
});
const rows = rankRows(c.batch, comm, `config ${name}'s batch`);
const rng = new Rng(1337 + comm.rank);
const tokens = rows.count * c.blockSize;
const times: number[] = [];
const reduce: number[] = [];
for (let i = 0; i < Number(warmup) + Number(steps); i++) {
  const x = Int32Array.from({ length: tokens }, () => rng.int(c.vocabSize));
  const y = Int32Array.from({ length: tokens }, () => rng.int(c.vocabSize));
  const t0 = performance.now();
  const r = trainer.step(i, [{ count: tokens, loss: () => model.loss(x, y, rows.count, c.blockSize) }]);
  if (i >= Number(warmup)) {
    times.push(performance.now() - t0);
    reduce.push(r.allreduceSeconds * 1000);
  }
}
const rss = new Float64Array(comm.size);
rss[comm.rank] = process.resourceUsage().maxRSS / 1024;
comm.sumScalars(rss);
const ms = median(times);
if (comm.rank === 0)
  process.stdout.write(
    `${JSON.stringify({ ms_per_step: ms, tok_per_s: ((c.batch * c.blockSize) / ms) * 1000, allreduce_ms: median(reduce), peak_rss_mb: Math.max(...rss) })}\n`,
  );
comm.finish();
