// Data parallelism under mpirun (Open MPI): 2 ranks x 1 thread against 1 process with the
// same global batch must give the same losses, for pretraining and for SFT (padded batches,
// ignored positions counted over all ranks); a run killed with 2 ranks resumes with 2 or 1
// and its losses go on as if it had never stopped. Skipped where MPI is not installed
// (.ci/run installs it).

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { sotuDocuments } from "../src/data/corpora.ts";
import { tinyChatModel } from "./chat-model.ts";
import { root } from "./cli-helpers.ts";
import { tempDir } from "./tmp.ts";

const ADDON = join(root, "native/mpi/build/Release/llmfab_mpi.node");
const hasMpi = spawnSync("sh", ["-c", "command -v mpirun"]).status === 0 && existsSync(ADDON);
const skip = hasMpi
  ? false
  : "MPI is not installed (apt-get install libopenmpi-dev openmpi-bin, then npm run build:native)";
const CLI = join(root, "bin/llmfab.js");
const MPIRUN = ["--oversubscribe", "--allow-run-as-root", "--mca", "btl", "self,vader"];

/** mpirun's arguments for llmfab on `ranks` ranks, one thread each. */
const mpirunArgs = (ranks: number, args: string[]) => [
  ...MPIRUN,
  "-np",
  String(ranks),
  process.execPath,
  CLI,
  "--threads",
  "1",
  ...args,
];

/** llmfab on `ranks` ranks (1: a plain process, no mpirun), one thread each. */
function run(ranks: number, args: string[]): { code: number; stdout: string; stderr: string } {
  const r =
    ranks === 1
      ? spawnSync(process.execPath, [CLI, "--threads", "1", ...args], { encoding: "utf8" })
      : spawnSync("mpirun", mpirunArgs(ranks, args), { encoding: "utf8" });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The per-step training losses a run logged. */
function losses(dir: string): Map<number, number> {
  const lines = readFileSync(join(dir, "metrics.jsonl"), "utf8").trim().split("\n");
  const out = new Map<number, number>();
  for (const line of lines) {
    if (!line.endsWith("}")) continue; // a line being written as we read
    const r = JSON.parse(line) as { step: number; loss?: number };
    if (r.loss !== undefined) out.set(r.step, r.loss);
  }
  return out;
}

/** The largest difference between two runs' losses, over the steps both logged (at least `min` of them). */
function largestDifference(a: Map<number, number>, b: Map<number, number>, min: number): number {
  const steps = [...a.keys()].filter((s) => b.has(s));
  assert.ok(steps.length >= min, `${steps.length} common steps`);
  return Math.max(...steps.map((s) => Math.abs((a.get(s) as number) - (b.get(s) as number))));
}

const PRETRAIN = [
  "--set",
  "model.n_layer=2",
  "--set",
  "model.n_embd=64",
  "--set",
  "train.batch_size=8",
  "--set",
  "train.log_interval=1",
  "--set",
  "train.eval_interval=1000",
  "--set",
  "train.eval_iters=2",
  "--set",
  "train.precision=fp32",
  "--set",
  "sample.count=0",
  "--set",
  "train.checkpoint_interval=10",
];

describe("data parallelism with MPI", { skip }, () => {
  let dir: string;
  let text: string;
  const pretrainArgs = (out: string, steps: number, ...more: string[]) => [
    "pretrain",
    "--config",
    join(root, "configs/nanogpt-shakespeare-char-cpu.yaml"),
    "--data",
    text,
    ...PRETRAIN,
    "--set",
    `train.max_iters=${steps}`,
    "--out",
    out,
    ...more,
  ];
  const pretrain = (ranks: number, out: string, steps: number, ...more: string[]) =>
    run(ranks, pretrainArgs(out, steps, ...more));

  before(() => {
    dir = tempDir("mpi");
    text = join(dir, "text.txt");
    writeFileSync(text, sotuDocuments().slice(150, 160).join("\n\n"));
  });

  it("pretraining: 2 ranks x 1 thread give the losses of 1 process on the same global batch, for 50 steps", () => {
    const one = pretrain(1, join(dir, "one"), 50);
    assert.equal(one.code, 0, one.stderr);
    const two = pretrain(2, join(dir, "two"), 50);
    assert.equal(two.code, 0, two.stderr);
    const diff = largestDifference(losses(join(dir, "one")), losses(join(dir, "two")), 50);
    assert.ok(diff <= 1e-5, `largest loss difference ${diff}`);
    // ZeRO stage 1: each rank keeps half the moments; the steps are the same.
    const sharded = pretrain(2, join(dir, "zero"), 50, "--set", "train.zero_stage=1");
    assert.equal(sharded.code, 0, sharded.stderr);
    const zeroDiff = largestDifference(losses(join(dir, "one")), losses(join(dir, "zero")), 50);
    assert.ok(zeroDiff <= 1e-5, `with a sharded optimizer: largest loss difference ${zeroDiff}`);
    const state = (run: string) => readFileSync(join(dir, run, "model", "trainer_state.safetensors"));
    assert.ok(state("zero").equals(state("two")), "the checkpoint holds the whole optimizer state, gathered");
    const logged = readFileSync(join(dir, "two", "metrics.jsonl"), "utf8");
    assert.match(logged, /"ranks":2,"allreduce_ms":/);
    assert.equal((two.stdout.match(/model directory:/g) ?? []).length, 1, "rank 0 alone reports");
  });

  it("a run killed with 2 ranks resumes with 2 or with 1, and its losses go on as if it had not stopped", async () => {
    const reference = join(dir, "reference");
    assert.equal(pretrain(1, reference, 60).code, 0);
    const killed = join(dir, "killed");
    const child = spawn("mpirun", mpirunArgs(2, pretrainArgs(killed, 60)), { stdio: "ignore" });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const logged = () => (existsSync(join(killed, "metrics.jsonl")) ? losses(killed).size : 0);
    while (child.exitCode === null && logged() < 25) await new Promise((r) => setTimeout(r, 10));
    child.kill("SIGKILL");
    assert.equal(await exited, null, "killed before it finished");
    await new Promise((r) => setTimeout(r, 500)); // mpirun's ranks go down with it
    cpSync(killed, join(dir, "killed-copy"), { recursive: true });
    for (const [ranks, out] of [
      [2, killed],
      [1, join(dir, "killed-copy")],
    ] as const) {
      const resumed = pretrain(ranks, out, 60, "--resume");
      assert.equal(resumed.code, 0, resumed.stderr);
      const diff = largestDifference(losses(reference), losses(out), 60);
      assert.ok(diff <= 1e-5, `resumed with ${ranks}: largest loss difference ${diff}`);
    }
  });

  it("SFT: padded batches of different lengths, target tokens counted over all ranks, give 1 process's losses", async () => {
    const model = await tinyChatModel(0, 128);
    const conversations = Array.from({ length: 24 }, (_, i) => ({
      messages: [
        { role: "user", content: `Question ${i}: ${"how are you ".repeat(1 + (i % 5))}?` },
        { role: "assistant", content: `Answer ${i}. ${"I am fine, thank you. ".repeat(1 + ((i * 7) % 4))}` },
      ],
    }));
    const data = join(dir, "chat.jsonl");
    writeFileSync(data, `${conversations.map((c) => JSON.stringify(c)).join("\n")}\n`);
    const sft = (ranks: number, out: string, ...more: string[]) =>
      run(ranks, [
        "--precision",
        "fp32",
        "sft",
        "--model",
        model,
        "--data",
        data,
        "--mode",
        "full",
        "--epochs",
        "3",
        "--batch-size",
        "6",
        "--lr",
        "3e-3",
        "--val-fraction",
        "0",
        "--seed",
        "2",
        "--out",
        out,
        ...more,
      ]);
    const one = sft(1, join(dir, "sft-one"));
    assert.equal(one.code, 0, one.stderr);
    const two = sft(2, join(dir, "sft-two"));
    assert.equal(two.code, 0, two.stderr);
    const diff = largestDifference(losses(join(dir, "sft-one")), losses(join(dir, "sft-two")), 12);
    assert.ok(diff <= 1e-5, `largest loss difference ${diff}`);
    assert.ok(existsSync(join(dir, "sft-two", "model.safetensors")), "rank 0 wrote the model");
    const sharded = sft(2, join(dir, "sft-zero"), "--zero-stage", "1");
    assert.equal(sharded.code, 0, sharded.stderr);
    const zeroDiff = largestDifference(losses(join(dir, "sft-one")), losses(join(dir, "sft-zero")), 12);
    assert.ok(zeroDiff <= 1e-5, `with a sharded optimizer: largest loss difference ${zeroDiff}`);
  });

  it("GRPO: 2 ranks each sampling and training on half the prompts give 1 process's losses and rewards", async () => {
    const model = await tinyChatModel(0, 96);
    const tasks = join(dir, "rl-tasks.jsonl");
    const questions = ["Say something.", "Talk to me.", "Hello?", "What now?"];
    writeFileSync(
      tasks,
      `${questions
        .map((q) =>
          JSON.stringify({
            messages: [
              { role: "user", content: q },
              { role: "assistant", content: "you" },
            ],
          }),
        )
        .join("\n")}\n`,
    );
    // A reward that varies within every group, so that every step trains.
    const reward = join(dir, "length-reward.mjs");
    writeFileSync(reward, "export default function reward(answer) { return (answer.length % 7) / 7; }\n");
    const rl = (ranks: number, out: string, ...more: string[]) =>
      run(ranks, [
        "--precision",
        "fp32",
        "rl",
        "--model",
        model,
        "--tasks",
        tasks,
        "--reward",
        reward,
        "--steps",
        "5",
        "--group",
        "4",
        "--prompts-per-step",
        "4",
        "--max-tokens",
        "8",
        "--lr",
        "1e-2",
        "--updates",
        "2",
        "--out",
        out,
        ...more,
      ]);
    const one = rl(1, join(dir, "rl-one"));
    assert.equal(one.code, 0, one.stderr);
    const two = rl(2, join(dir, "rl-two"));
    assert.equal(two.code, 0, two.stderr);
    const metrics = (out: string) =>
      readFileSync(join(out, "metrics.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, number>);
    // A sharded optimizer, checkpointed (its state gathered) every 2 steps, takes the same steps.
    const sharded = rl(2, join(dir, "rl-zero"), "--zero-stage", "1", "--checkpoint-interval", "2");
    assert.equal(sharded.code, 0, sharded.stderr);
    const a = metrics(join(dir, "rl-one"));
    for (const run of ["rl-two", "rl-zero"]) {
      const b = metrics(join(dir, run));
      assert.equal(b.length, 5);
      for (const key of ["loss", "mean_reward", "pass_at_group", "flat", "mean_length", "entropy", "clipped"]) {
        const diff = Math.max(
          ...a.map((r, i) => Math.abs((r[key] as number) - ((b[i] as Record<string, number>)[key] as number))),
        );
        assert.ok(diff <= 1e-5, `${run}, ${key}: largest difference ${diff}`);
      }
    }
    assert.ok(
      a.some((r) => r.loss !== 0),
      "the steps trained",
    );
  });

  it("a rank that dies ends the job, with mpirun naming it, instead of leaving the others waiting", async () => {
    const out = join(dir, "dies");
    const child = spawn("mpirun", mpirunArgs(2, pretrainArgs(out, 100_000)), { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      while (child.exitCode === null && !(existsSync(join(out, "metrics.jsonl")) && losses(out).size >= 5))
        await new Promise((r) => setTimeout(r, 20));
      // Rank 1's process: the one whose environment says so.
      const pids = spawnSync("pgrep", ["-f", out], { encoding: "utf8" }).stdout.trim().split("\n");
      const rank1 = pids.find((pid) => {
        try {
          return readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes("OMPI_COMM_WORLD_RANK=1");
        } catch {
          return false;
        }
      });
      assert.ok(rank1, `rank 1 among ${pids.join(", ")}`);
      process.kill(Number(rank1), "SIGKILL");
      const code = await exited;
      assert.notEqual(code, 0);
      assert.match(stderr, /rank 1[\s\S]*(signal 9|Killed)/);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("a batch the ranks cannot share equally is a clear error, and the job ends", () => {
    const r = pretrain(2, join(dir, "odd"), 5, "--set", "train.batch_size=3");
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /train\.batch_size is 3, which 2 ranks cannot share equally/);
  });
});
