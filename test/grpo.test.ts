// GRPO: the token-level policy-gradient loss against float64 finite differences, group
// advantages, and learning from a reward alone: a tiny untrained model comes to say what
// the reward asks for, on prompts it never trained on too.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Engine } from "../src/infer/engine.ts";
import { loadModel } from "../src/model/directory.ts";
import { loadChatCodec } from "../src/pipeline/codec.ts";
import { groupAdvantages, REWARDS, runGrpo } from "../src/posttrain/grpo.ts";
import * as ops from "../src/tensor/index.ts";
import { tinyChatModel } from "./chat-model.ts";
import { llmfab } from "./cli-helpers.ts";
import { gradCheck } from "./helpers.ts";

describe("GRPO", () => {
  test("policy-gradient loss: -(1/tokens) sum A_i log pi_i, and its gradient", () => {
    const advantages = [0.5, -0.25, -0.25, 1.5];
    gradCheck("policyGradientLoss", {
      inputs: [Float64Array.from([-3.2, -1.1, -7.5, -0.4])],
      shapes: [[4]],
      op: ([l]) => ops.policyGradientLoss(l!, advantages, 13),
      ref: ([l]) => Float64Array.of(-advantages.reduce((s, a, i) => s + a * (l![i] as number), 0) / 13),
    });
  });

  test("advantages: reward minus the group's mean, divided by its std only when asked", () => {
    assert.deepEqual(
      groupAdvantages([1, 0, 0, 1, 1, 1], 3, false).map((x) => Math.round(x * 1e6) / 1e6),
      [0.666667, -0.333333, -0.333333, 0, 0, 0],
    );
    const scaled = groupAdvantages([1, 0], 2, true);
    assert.ok(Math.abs((scaled[0] as number) - 1) < 1e-4 && Math.abs((scaled[1] as number) + 1) < 1e-4);
    assert.equal(REWARDS.numeric?.("The sum is 1,085.", "1085"), 1);
    assert.equal(REWARDS.exact?.(" 42 ", "42"), 1);
  });

  test("a reward alone teaches a tiny model, and held-out prompts follow", async (t) => {
    const dir = await tinyChatModel(0, 96);
    const model = loadModel(dir);
    const codec = loadChatCodec(dir);
    const task = (q: string) => ({
      prompt: codec.encode(codec.renderChat([{ role: "user", content: q }], true), true),
      expected: "you",
      source: q,
    });
    const heldOut = ["Answer me.", "Say hi.", "Go on."].map(task);
    const rewardOn = (tasks: ReturnType<typeof task>[]) => {
      const engine = new Engine(model, codec, 8);
      let sum = 0;
      tasks.forEach((tk, i) => {
        for (let k = 0; k < 8; k++) {
          const r = engine.generate(tk.prompt, { temperature: 1, maxTokens: 8, seed: 1000 + i * 8 + k });
          sum += REWARDS.contains?.(r.text, tk.expected) ?? 0;
        }
      });
      return sum / (tasks.length * 8);
    };
    const before = rewardOn(heldOut);
    const rewards: number[] = [];
    runGrpo(
      model,
      codec,
      ["Say something.", "Talk to me.", "Greet me.", "Reply."].map(task),
      {
        mode: "full",
        trainableLayers: 1,
        trainHead: false,
        lora: { r: 4, alpha: 8, dropout: 0, targets: [], fa: false },
        lr: 1e-2,
        warmupIters: 2,
        weightDecay: 0,
        gradClip: 1,
        seed: 1,
        steps: 40,
        promptsPerStep: 4,
        group: 8,
        temperature: 1,
        maxTokens: 8,
        reward: REWARDS.contains as (a: string, e: string) => number,
        scaleByStd: false,
      },
      (s) => rewards.push(s.meanReward),
    );
    const after = rewardOn(heldOut);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    t.diagnostic(
      `mean reward: first 5 steps ${mean(rewards.slice(0, 5))}, last 5 ${mean(rewards.slice(-5))}; held-out ${before} -> ${after}`,
    );
    assert.ok(mean(rewards.slice(-5)) >= 0.9, `last steps' mean reward ${mean(rewards.slice(-5))}`);
    assert.ok(after >= 0.9 && before <= 0.2, `held-out reward ${before} -> ${after}`);
  });

  test("llmfab rl trains from a tasks file and reports its rewards; bad tasks are errors naming the line", async () => {
    const dir = await tinyChatModel(0, 96);
    const data = mkdtempSync(join(tmpdir(), "llmfab-rl-"));
    const tasks = join(data, "tasks.jsonl");
    const line = (q: string) =>
      JSON.stringify({
        messages: [
          { role: "user", content: q },
          { role: "assistant", content: "you" },
        ],
      });
    writeFileSync(tasks, ["Say something.", "Talk to me."].map(line).join("\n"));
    const out = join(data, "rl");
    const args = ["rl", "--model", dir, "--tasks", tasks, "--reward", "contains", "--steps", "6", "--group", "4"];
    const r = llmfab([...args, "--prompts-per-step", "2", "--max-tokens", "8", "--lr", "1e-2", "--out", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /GRPO: 6 steps; mean reward [\d.]+ in the first step, [\d.]+ in the last/);
    const metrics = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n");
    assert.equal(metrics.length, 6);
    assert.ok("mean_reward" in JSON.parse(metrics[0] as string));
    assert.ok(existsSync(join(out, "model.safetensors")));
    const unanswered = [
      { role: "user", content: "Hi" },
      { role: "assistant", content: "you" },
      { role: "user", content: "and then?" },
    ];
    writeFileSync(tasks, JSON.stringify({ messages: unanswered }));
    const bad = llmfab([...args, "--out", join(data, "bad")]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /tasks\.jsonl:1: a task must end with the assistant's expected answer/);
    const group = llmfab(["rl", "--model", dir, "--tasks", tasks, "--group", "1", "--out", join(data, "g")]);
    assert.match(group.stderr, /--group must be at least 2/);
  });

  test("a reward module: used as written; one that throws, hangs or returns NaN stops the run naming the task", async () => {
    const dir = await tinyChatModel(0, 96);
    const data = mkdtempSync(join(tmpdir(), "llmfab-reward-"));
    const tasks = join(data, "tasks.jsonl");
    const line = JSON.stringify({
      messages: [
        { role: "user", content: "Say it." },
        { role: "assistant", content: "you" },
      ],
    });
    writeFileSync(tasks, `${line}\n`);
    const modules: Record<string, string> = {
      "length.ts": "export default (answer: string): number => (answer.length % 2 === 0 ? 1 : 0);",
      "throws.ts": 'export default (): number => { throw new Error("no score for you"); };',
      "hangs.ts": "export default (): number => { for (;;) {} };",
      "nan.ts": "export default (): number => Number.NaN;",
    };
    for (const [name, code] of Object.entries(modules)) writeFileSync(join(data, name), code);
    const rl = (reward: string, out: string) =>
      llmfab([
        "rl",
        "--model",
        dir,
        "--tasks",
        tasks,
        "--reward",
        join(data, reward),
        "--steps",
        "2",
        "--group",
        "4",
        "--prompts-per-step",
        "1",
        "--max-tokens",
        "4",
        "--reward-timeout",
        "1",
        "--out",
        join(data, out),
      ]);
    const ok = rl("length.ts", "ok");
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(existsSync(join(data, "ok", "model.safetensors")));
    assert.match(rl("throws.ts", "t").stderr, /tasks\.jsonl:1: the reward failed: .*throws\.ts: no score for you/);
    assert.match(rl("nan.ts", "n").stderr, /tasks\.jsonl:1: the reward returned NaN, not a finite number/);
    assert.match(
      rl("hangs.ts", "h").stderr,
      /tasks\.jsonl:1: the reward failed: .*hangs\.ts: the reward took longer than/,
    );
    assert.ok(!existsSync(join(data, "t")) && !existsSync(join(data, "h")), "a failed run leaves nothing behind");
  });
});
