// Runs the PyTorch reference (../shared/bench/torch_gpt_bench.py) where python3-torch is
// installed, at its best settings per ../shared/bench/README.md: OPENBLAS_CORETYPE unset
// for its command only, and for 2 threads the best of OMP_WAIT_POLICY=PASSIVE, one torch
// thread with OPENBLAS_NUM_THREADS=2, and PyTorch's defaults (those two win in fp32, where
// OpenBLAS's and OpenMP's pools busy-wait against each other; under bf16 autocast the
// matmuls run on oneDNN's OpenMP pool and the default busy-waiting is faster: config B,
// side by side on a Sapphire Rapids, 527-546 ms against 740-776 ms with PASSIVE, so
// leaving the defaults out flattered us).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const gptScript = fileURLToPath(new URL("../../shared/bench/torch_gpt_bench.py", import.meta.url));
/** The ViT reference lives with our benches (the shared folder has the GPT one only). */
export const VIT_SCRIPT = fileURLToPath(new URL("./torch_vit_bench.py", import.meta.url));
const python = "/usr/bin/python3";

export interface TorchResult {
  ms_per_step: number;
  tok_per_s: number;
  peak_rss_mb: number;
  setting: string;
}

export function torchAvailable(script = gptScript): boolean {
  if (!existsSync(script) || !existsSync(python)) return false;
  return spawnSync(python, ["-c", "import torch"], { encoding: "utf8" }).status === 0;
}

/** One way to run the reference: its arguments, environment and a label for reports. */
export interface TorchSetting {
  args: string[];
  env: Record<string, string>;
  label: string;
}

/**
 * One run of the reference at one setting (null if it failed), in-process under runpy so
 * that the peak RSS can be read at the end.
 */
export function runTorch({ args, env, label }: TorchSetting, script = gptScript): TorchResult | null {
  const code = [
    "import runpy, sys, resource",
    `sys.argv = ${JSON.stringify([script, ...args])}`,
    "runpy.run_path(sys.argv[0], run_name='__main__')",
    "print('RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
  ].join("\n");
  const base = { ...process.env };
  delete base.OPENBLAS_CORETYPE;
  delete base.OPENBLAS_L2_SIZE;
  const r = spawnSync(python, ["-c", code], { encoding: "utf8", env: { ...base, ...env } });
  if (r.status !== 0) return null;
  const lines = r.stdout.trim().split("\n");
  const json = JSON.parse(lines.find((l) => l.startsWith("{")) ?? "{}") as {
    step_ms_median?: number;
    tok_per_s?: number;
    tok_per_s_median?: number;
    images_per_s?: number;
  };
  const rss = Number(lines.find((l) => l.startsWith("RSS_KB"))?.split(" ")[1] ?? 0) / 1024;
  // The ViT script's rate is images per second: it stands in the same field.
  const tokPerS = json.tok_per_s ?? json.tok_per_s_median ?? json.images_per_s ?? 0;
  return { ms_per_step: json.step_ms_median ?? 0, tok_per_s: tokPerS, peak_rss_mb: rss, setting: label };
}

/**
 * The settings a PyTorch user would try: each thread setting, in fp32 and (where the CPU
 * has bf16) under bf16 autocast.
 */
export function torchSettings(extraArgs: string[], threads: number, autocast: boolean): TorchSetting[] {
  const settings = (ac: "none" | "bf16"): TorchSetting[] => {
    const args = [...extraArgs, "--autocast", ac];
    const label = ac === "bf16" ? ", bf16 autocast" : ", fp32";
    return threads === 1
      ? [{ args: [...args, "--threads", "1"], env: { OPENBLAS_NUM_THREADS: "1" }, label: `1 thread${label}` }]
      : [
          {
            args: [...args, "--threads", String(threads)],
            env: { OMP_WAIT_POLICY: "PASSIVE" },
            label: `${threads} threads, OMP_WAIT_POLICY=PASSIVE${label}`,
          },
          {
            args: [...args, "--threads", "1"],
            env: { OPENBLAS_NUM_THREADS: String(threads) },
            label: `1 torch thread, OPENBLAS_NUM_THREADS=${threads}${label}`,
          },
          { args: [...args, "--threads", String(threads)], env: {}, label: `${threads} threads${label}` },
        ];
  };
  return [...settings("none"), ...(autocast ? settings("bf16") : [])];
}

/** The fastest of some runs (null if there are none). */
export function fastest<R extends { tok_per_s: number }>(runs: (R | null)[]): R | null {
  const ok = runs.filter((r): r is R => r !== null);
  return ok.length ? ok.reduce((a, b) => (b.tok_per_s > a.tok_per_s ? b : a)) : null;
}

/** PyTorch at its best: every setting of torchSettings, the fastest wins. */
export function torchBest(
  extraArgs: string[],
  threads: number,
  autocast: boolean,
  script = gptScript,
): TorchResult | null {
  return fastest(torchSettings(extraArgs, threads, autocast).map((s) => runTorch(s, script)));
}
