// `npm run bench -- <name> [--json] [options]`: speed, side by side with a reference
// measured in the same run, as a ratio (> 1 means we are better).
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { cpuHasBf16, cpuSummary } from "../src/tensor/index.ts";
import { BENCH_CONFIGS, type BenchConfigName } from "./configs.ts";
import { corpusBench } from "./corpus.ts";
import { inferBench } from "./infer.ts";
import { llamaCppInferBench } from "./llama-cpp.ts";
import { runWorker } from "./measure.ts";
import { rlBench } from "./rl.ts";
import { searchBench } from "./search.ts";
import { tokenizerBench } from "./tokenizer.ts";
import { fastest, runTorch, type TorchResult, torchAvailable, torchSettings } from "./torch-ref.ts";
import { visionBench } from "./vision.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    json: { type: "boolean", default: false },
    config: { type: "string", multiple: true },
    threads: { type: "string", multiple: true },
    precision: { type: "string", multiple: true },
    steps: { type: "string" },
    profile: { type: "boolean", default: false },
    ranks: { type: "string" },
    rounds: { type: "string" },
  },
});

/** The CPU and the features the kernels use, in every row: figures mean nothing without them. */
const cpu = cpuSummary();
const [cpuModel, isa] = [cpu.replace(/ \(.*\)$/, ""), /\(([^)]*)\)$/.exec(cpu)?.[1] ?? ""];

const benches: Record<string, () => void | Promise<void>> = {
  train: trainBench,
  tokenizer: () => tokenizerBench(emit),
  corpus: () => corpusBench(emit, (values.threads ?? ["1", "2"]).map(Number)),
  sft: sftBench,
  rl: () => rlBench(emit, (values.threads ?? ["1", "2"]).map(Number)),
  search: () => searchBench(emit),
  vision: () =>
    visionBench(
      emit,
      (values.threads ?? ["2"]).map(Number),
      (values.precision?.[0] as "fp32" | "bf16" | undefined) ?? (cpuHasBf16() ? "bf16" : "fp32"),
      cpuHasBf16(),
    ),
  infer: () => {
    const configs = (values.config ?? ["B", "C"]) as BenchConfigName[];
    const threads = (values.threads ?? ["1", "2"]).map(Number);
    inferBench(emit, configs, threads);
    llamaCppInferBench(emit, configs, threads);
  },
};
const which = positionals.length ? positionals : Object.keys(benches);
for (const name of which) {
  const run = benches[name];
  if (!run) {
    console.error(`bench: unknown benchmark ${name} (available: ${Object.keys(benches).join(", ")})`);
    process.exit(1);
  }
  await run();
}

/** A row: JSON with --json, else its text (a row without text is shown only as JSON). */
function emit(row: Record<string, unknown>, text: string): void {
  if (values.json) console.log(JSON.stringify({ ...row, cpu: cpuModel, isa }));
  else if (text) console.log(text);
}

function trainBench(): void {
  const configs = (values.config ?? ["A", "B", "C"]) as BenchConfigName[];
  const threadList = (values.threads ?? ["1", "2"]).map(Number);
  const precisions = values.precision ?? ["fp32", "bf16"];
  const worker = fileURLToPath(new URL("./train-worker.ts", import.meta.url));
  const haveTorch = torchAvailable();
  if (values.profile) {
    trainProfile(configs, threadList, precisions);
    return;
  }
  if (values.ranks) {
    ranksBench(configs, Number(values.ranks), precisions);
    return;
  }
  const rounds = Number(values.rounds ?? "1");
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new Error(`--rounds must be a whole number >= 1, got ${values.rounds}`);
  if (!values.json) {
    console.log(`CPU: ${cpu}`);
    console.log(
      `train bench: ms/step (median), tok/s, GFLOP/s, peak RSS; bf16 ${cpuHasBf16() ? "native" : "emulated (no avx512_bf16)"}`,
    );
    console.log(
      haveTorch
        ? `reference: PyTorch (torch_gpt_bench.py) at its best setting (fp32${cpuHasBf16() ? " or bf16 autocast" : ""}); one run of ours before each of its settings, each side's fastest run counts`
        : "reference: none (python3-torch not installed)",
    );
  }
  for (const config of configs) {
    if (!(config in BENCH_CONFIGS)) throw new Error(`unknown config ${config}`);
    const steps = values.steps ?? (config === "A" ? "30" : "8");
    for (const threads of threadList) {
      const settings = haveTorch
        ? torchSettings(["--config", config, "--steps", steps, "--warmup", "3"], threads, cpuHasBf16())
        : [];
      // Our runs and the reference's alternate, one of ours before each of its settings,
      // --rounds times over, and each side's fastest counts: a burst of noise on a shared
      // machine then hits both sides alike.
      const ours = precisions.map((): StepResult[] => []); // runs per precision
      const refRuns: (TorchResult | null)[] = [];
      const perRound = Math.max(1, settings.length);
      for (let k = 0; k < rounds * perRound; k++) {
        for (const [p, precision] of precisions.entries())
          ours[p]?.push(trainRun(worker, config, threads, precision, steps));
        const setting = settings[k % perRound];
        if (setting) refRuns.push(runTorch(setting));
      }
      const ref = fastest(refRuns);
      for (const [i, precision] of precisions.entries()) {
        const runs = ours[i] as StepResult[];
        const best = fastest(runs) as StepResult;
        const ratio = ref ? best.tok_per_s / ref.tok_per_s : null;
        const row = {
          bench: "train",
          metric: "tok_per_s",
          config,
          threads,
          precision: precision === "bf16" && !cpuHasBf16() ? "bf16-emulated" : precision,
          ms_per_step: round(best.ms_per_step),
          tok_per_s: round(best.tok_per_s),
          gflops: round(best.gflops),
          peak_rss_mb: round(Math.max(...runs.map((r) => r.peak_rss_mb))),
          runs_ms_per_step: runs.map((r) => round(r.ms_per_step)),
          ours: round(best.tok_per_s),
          ref: ref ? round(ref.tok_per_s) : null,
          ref_tok_per_s: ref ? round(ref.tok_per_s) : null,
          ref_ms_per_step: ref ? round(ref.ms_per_step) : null,
          ref_peak_rss_mb: ref ? round(ref.peak_rss_mb) : null,
          ref_setting: ref?.setting ?? null,
          ref_runs_ms_per_step: refRuns.map((r) => (r ? round(r.ms_per_step) : null)),
          ratio: ratio === null ? null : round(ratio, 3),
        };
        const refText = ref
          ? ` | torch ${round(ref.ms_per_step)} ms ${round(ref.tok_per_s)} tok/s ${round(ref.peak_rss_mb)} MB (${ref.setting}) | ratio ${ratio?.toFixed(2)}x`
          : "";
        emit(
          row,
          `${config} ${threads}t ${row.precision.padEnd(13)} ${row.ms_per_step} ms ${row.tok_per_s} tok/s ${row.gflops} GFLOP/s ${row.peak_rss_mb} MB${refText}`,
        );
      }
    }
  }
}

interface StepResult {
  ms_per_step: number;
  tok_per_s: number;
  gflops: number;
  peak_rss_mb: number;
}

/** One run of the training step in its own process (so that its peak RSS is its own). */
function trainRun(worker: string, config: string, threads: number, precision: string, steps: string): StepResult {
  return runWorker("bench worker", ["--import", "tsx", worker, config, String(threads), precision, steps, "3"]);
}

/**
 * Data parallelism: R ranks x 1 thread under mpirun, beside 1 rank x R threads and 1 rank x
 * 1 thread on the same global batch, and R ranks with ZeRO-1; the all-reduce time per step
 * and peak RSS per rank.
 */
function ranksBench(configs: BenchConfigName[], ranks: number, precisions: string[]): void {
  if (!values.json)
    console.log(`CPU: ${cpu}
train bench with ${ranks} ranks (MPI): global tok/s, all-reduce ms/step`);
  const worker = fileURLToPath(new URL("./ranks-worker.ts", import.meta.url));
  for (const config of configs)
    for (const precision of precisions) {
      const steps = values.steps ?? (config === "A" ? "30" : "8");
      const args = ["--import", "tsx", worker, config];
      const mpirun = ["--oversubscribe", "--allow-run-as-root", "-np", String(ranks), process.execPath, ...args, "1"];
      const settings: [string, string, string[], string][] = [
        [`${ranks} ranks x 1 thread`, "mpirun", mpirun, ""],
        [`1 rank x ${ranks} threads`, process.execPath, [...args, String(ranks)], ""],
        ["1 rank x 1 thread", process.execPath, [...args, "1"], ""],
        [`${ranks} ranks, ZeRO-1`, "mpirun", mpirun, "zero1"],
      ];
      const results = settings.map(([setting, command, argv, shard]) => ({
        setting,
        ...runWorker<{ ms_per_step: number; tok_per_s: number; allreduce_ms: number; peak_rss_mb: number }>(
          `bench worker (${setting})`,
          [...argv, precision, steps, "3", shard],
          command,
        ),
      }));
      const [dp, threaded, single] = results as [(typeof results)[0], (typeof results)[0], (typeof results)[0]];
      for (const r of results)
        emit(
          {
            bench: "train",
            metric: "tok_per_s",
            config,
            precision,
            setting: r.setting,
            ours: round(r.tok_per_s),
            ref: round(threaded.tok_per_s),
            ratio: round(r.tok_per_s / threaded.tok_per_s, 3),
            allreduce_ms: round(r.allreduce_ms),
            peak_rss_mb: round(r.peak_rss_mb),
          },
          `${config} ${precision.padEnd(5)} ${r.setting.padEnd(20)} ${round(r.ms_per_step)} ms/step ${round(r.tok_per_s)} tok/s, all-reduce ${round(r.allreduce_ms)} ms/step, peak RSS ${round(r.peak_rss_mb)} MB/rank`,
        );
      if (!values.json)
        console.log(
          `${config} ${precision}: ${ranks} ranks x 1 thread = ${(dp.tok_per_s / threaded.tok_per_s).toFixed(2)}x of 1 rank x ${ranks} threads, ${(dp.tok_per_s / single.tok_per_s).toFixed(2)}x of 1 rank x 1 thread`,
        );
    }
}

/** Milliseconds per step by category (matmul, attention, conversions, elementwise, optimizer, other). */
function trainProfile(configs: BenchConfigName[], threadList: number[], precisions: string[]): void {
  if (!values.json) console.log(`CPU: ${cpu}\ntrain profile: ms per step by category (mean of 5 steps)`);
  const worker = fileURLToPath(new URL("./profile-worker.ts", import.meta.url));
  for (const config of configs)
    for (const threads of threadList)
      for (const precision of precisions) {
        const args = ["--import", "tsx", worker, config, String(threads), precision, "5"];
        const ms = runWorker<Record<string, number>>("profile worker", args);
        const parts = Object.entries(ms)
          .filter(([k]) => k !== "step")
          .map(([k, v]) => `${k} ${round(v)}`)
          .join(", ");
        emit(
          {
            bench: "train-profile",
            config,
            threads,
            precision,
            ...Object.fromEntries(Object.entries(ms).map(([k, v]) => [`${k}_ms`, round(v)])),
          },
          `${config} ${threads}t ${precision.padEnd(5)} ${round(ms.step ?? 0)} ms/step: ${parts}`,
        );
      }
}

/** Peak memory of full, freeze (top 2 blocks), LoRA and LoRA-FA fine-tuning, each in its own process. */
function sftBench(): void {
  const configs = (values.config ?? ["C"]) as BenchConfigName[];
  const threads = (values.threads ?? ["2"])[0] as string;
  const worker = fileURLToPath(new URL("./sft-worker.ts", import.meta.url));
  for (const config of configs) {
    for (const [mode, fa] of [
      ["full", ""],
      ["freeze", ""],
      ["lora", ""],
      ["lora", "fa"],
    ] as const) {
      const m = runWorker<{ peak_rss_mb: number; ms_per_step: number; trainable_params: number }>("sft bench worker", [
        "--import",
        "tsx",
        worker,
        config,
        mode,
        fa || "-",
        threads,
      ]);
      const label = fa ? "lora-fa" : mode;
      emit(
        {
          bench: "sft",
          metric: "peak_rss_mb",
          config,
          mode: label,
          threads: Number(threads),
          ours: round(m.peak_rss_mb),
          ref: null,
          ratio: null,
          ms_per_step: round(m.ms_per_step),
          trainable_params: m.trainable_params,
        },
        `${config} ${label.padEnd(8)} peak RSS ${round(m.peak_rss_mb)} MB, ${round(m.ms_per_step)} ms/step, ${m.trainable_params.toLocaleString()} trainable parameters`,
      );
    }
  }
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
