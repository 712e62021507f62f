// GRPO: the token-level policy-gradient loss against float64 finite differences, group
// advantages, and learning from a reward alone: a tiny untrained model comes to say what
// the reward asks for, on prompts it never trained on too.

import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Engine } from "../src/infer/engine.ts";
import { loadModel } from "../src/model/directory.ts";
import { loadChatCodec } from "../src/pipeline/codec.ts";
import { encodeRlTasks, type RlCommand, runRlCommand } from "../src/pipeline/rl.ts";
import { type GrpoStep, groupAdvantages, REWARDS, runGrpo } from "../src/posttrain/grpo.ts";
import * as ops from "../src/tensor/index.ts";
import { sftDefaults, tinyChatModel } from "./chat-model.ts";
import { llmfab } from "./cli-helpers.ts";
import { gradCheck } from "./helpers.ts";
import { tempDir } from "./tmp.ts";

/** GRPO on a tiny model: full fine-tuning at a high rate, groups of 8 short answers, one update, no KL. */
const TINY_GRPO = {
  mode: "full" as const,
  trainableLayers: 1,
  trainHead: false,
  lora: { r: 4, alpha: 8, dropout: 0, targets: [], fa: false },
  lr: 1e-2,
  weightDecay: 0,
  gradClip: 1,
  seed: 1,
  group: 8,
  temperature: 1,
  maxTokens: 8,
  reward: REWARDS.contains as (a: string, e: string) => number,
  scaleByStd: false,
  updates: 1,
  clip: 0.2,
  klBeta: 0,
};

/** A tasks file in a fresh folder: each question's expected answer is "you". */
function youTasks(what: string, questions: string[]): { data: string; tasks: string } {
  const data = tempDir(what);
  const tasks = join(data, "tasks.jsonl");
  const line = (q: string) =>
    JSON.stringify({
      messages: [
        { role: "user", content: q },
        { role: "assistant", content: "you" },
      ],
    });
  writeFileSync(tasks, questions.map(line).join("\n"));
  return { data, tasks };
}

describe("GRPO", () => {
  test("policy loss: clipped ratio and KL penalty against a float64 reference, and their gradients", () => {
    // Six tokens: the fifth is not an answer token. Against the old log-probabilities the
    // ratios are exp(0.1), exp(-0.3), exp(0.5), exp(-0.05), -, exp(0.25): with clip 0.2 the
    // first and fourth stay inside [0.8, 1.2], the others are clipped where that lowers the objective.
    const current = [-1.0, -2.3, -0.5, -3.05, -9, -0.75];
    const old = [-1.1, -2.0, -1.0, -3.0, -9, -1.0];
    const advantages = [0.5, 0.5, -0.75, -0.75, 0, 1.25];
    const mask = Uint8Array.from([1, 1, 1, 1, 0, 1]);
    const reference = [-1.2, -2.2, -0.9, -2.5, -9, -1.1];
    const terms = { old, advantages, mask, tokens: 5, clip: 0.2, reference, beta: 0.1 };
    const ref64 = (lp: Float64Array) => {
      let sum = 0;
      for (let i = 0; i < lp.length; i++) {
        if (!mask[i]) continue;
        const r = Math.exp((lp[i] as number) - (old[i] as number));
        const a = advantages[i] as number;
        sum -= Math.min(r * a, Math.min(Math.max(r, 0.8), 1.2) * a);
        const d = (reference[i] as number) - (lp[i] as number);
        sum += 0.1 * (Math.exp(d) - d - 1);
      }
      return Float64Array.of(sum / 5);
    };
    gradCheck("policyLoss", {
      inputs: [Float64Array.from(current)],
      shapes: [[6]],
      op: ([l]) => ops.policyLoss(l!, terms),
      ref: ([l]) => ref64(l!),
    });
    // On a batch's first update (old = current, no KL) it is the plain token-level policy gradient.
    const plain = ops.policyLoss(ops.Tensor.from(current, [6]), { ...terms, old: current, beta: 0 });
    const expected = -advantages.reduce((s, a, i) => s + (mask[i] ? a : 0), 0) / 5;
    assert.ok(Math.abs((plain.data[0] as number) - expected) < 1e-6);
    const lp = ops.Tensor.from(current, [6]);
    assert.throws(() => ops.policyLoss(lp, { ...terms, reference: undefined }), /needs the reference/);
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
        ...TINY_GRPO,
        warmupIters: 2,
        steps: 40,
        promptsPerStep: 4,
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

  test("several updates per batch clip the ratio; a KL penalty is measured against the starting model", async () => {
    const dir = await tinyChatModel(0, 96);
    const [model, reference, codec] = [loadModel(dir), loadModel(dir), loadChatCodec(dir)];
    const task = (q: string) => ({
      prompt: codec.encode(codec.renderChat([{ role: "user", content: q }], true), true),
      expected: "you",
      source: q,
    });
    const steps: GrpoStep[] = [];
    const options = {
      ...TINY_GRPO,
      warmupIters: 0,
      steps: 8,
      promptsPerStep: 2,
      updates: 3,
      clip: 0.2,
      klBeta: 0.1,
      reference,
    };
    runGrpo(model, codec, ["Say something.", "Talk to me."].map(task), options, (s) => steps.push(s));
    const trained = steps.filter((s) => s.trainTokPerSec > 0);
    assert.ok(trained.length >= 2, "some steps had a learning signal");
    assert.equal(trained[0]?.kl, 0, "the first batch is sampled from the reference itself");
    assert.ok(
      trained.slice(1).some((s) => s.kl > 0),
      "the policy moves away from the reference",
    );
    assert.ok(
      trained.some((s) => s.clipped > 0),
      "later updates clip some ratios",
    );
    for (const s of trained) {
      assert.ok(s.clipped >= 0 && s.clipped <= 1);
      assert.ok(s.entropy > 0 && s.entropy <= Math.log(model.config.vocabSize) + 1e-6, `entropy ${s.entropy}`);
    }
    assert.throws(
      () => runGrpo(model, codec, [task("Hi.")], { ...options, reference: undefined }),
      /needs the reference/,
    );
  });

  test("a run interrupted after its checkpoint resumes exactly: the same metrics and weights as one that ran through", async () => {
    const dir = await tinyChatModel(0, 96);
    const { data, tasks } = youTasks("rl-resume", ["Say something.", "Talk to me.", "Greet me."]);
    const run = (out: string, extra: Partial<RlCommand> = {}) =>
      runRlCommand({
        ...sftDefaults,
        mode: "full",
        model: dir,
        tasks: [tasks],
        reward: "contains",
        steps: 8,
        promptsPerStep: 2,
        group: 4,
        temperature: 1,
        maxTokens: 8,
        scaleByStd: false,
        updates: 2,
        klBeta: 0.05,
        checkpointInterval: 2,
        out,
        ...extra,
      });
    const through = join(data, "through");
    run(through);
    const broken = join(data, "broken");
    assert.throws(() => run(broken, { interruptAfter: 4 }), /interrupted after step 4/);
    assert.ok(existsSync(join(broken, "checkpoint", "trainer_state.json")), "the checkpoint of step 4 is kept");
    assert.throws(() => run(broken), /already exists/, "without --resume the folder is refused");
    assert.throws(() => run(broken, { resume: true, lr: 2e-2 }), /other settings, model or tasks/);
    run(broken, { resume: true });
    const metrics = (out: string) => readFileSync(join(out, "metrics.jsonl"), "utf8");
    const strip = (text: string) => text.replace(/"(sample|train)_tok_per_sec":[^,}]+,?/g, "");
    assert.equal(strip(metrics(broken)), strip(metrics(through)));
    assert.equal(metrics(broken).trim().split("\n").length, 8);
    const [a, b] = [loadModel(through), loadModel(broken)];
    for (const [name, t] of a.params) assert.deepEqual(b.params.get(name)?.data, t.data, name);
    assert.ok(!existsSync(join(broken, "checkpoint")), "a finished run drops its checkpoint");
    assert.throws(() => run(join(data, "none"), { resume: true }), /no checkpoint to resume/);
  });

  test("llmfab rl trains from a tasks file and reports its rewards; bad tasks are errors naming the line", async () => {
    const dir = await tinyChatModel(0, 96);
    const { data, tasks } = youTasks("rl", ["Say something.", "Talk to me."]);
    const out = join(data, "rl");
    const args = ["rl", "--model", dir, "--tasks", tasks, "--reward", "contains", "--steps", "6", "--group", "4"];
    const r = llmfab([...args, "--prompts-per-step", "2", "--max-tokens", "8", "--lr", "1e-2", "--out", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /GRPO: 6 steps; mean reward [\d.]+ in the first step, [\d.]+ in the last/);
    // Progress lines give each step's time and sampling speed; a matmul MFU would mean nothing here.
    const steps = r.stderr.split("\n").filter((l) => l.startsWith("step "));
    assert.equal(steps.length, 6, r.stderr);
    for (const line of steps)
      assert.match(line, /^step \d: loss -?[\d.]+, lr [\d.]+e[-+]\d+, \d*[1-9][\d.]* ms, \d+ tok\/s$/);
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

  test("a task's prompt carries the tools it offers; one too long for the context is an error naming it", async () => {
    const codec = loadChatCodec(await tinyChatModel(0, 96));
    const clock = { name: "clock", description: "Today's date.", parameters: { type: "object", properties: {} } };
    const messages = [
      { role: "user" as const, content: "What day is it?" },
      { role: "assistant" as const, content: "Saturday" },
    ];
    const [withTools, plain] = encodeRlTasks(
      [
        { messages, tools: [clock], source: "tasks.jsonl:1" },
        { messages, source: "tasks.jsonl:2" },
      ],
      codec,
      8,
      4096,
    );
    const text = (ids: number[]) => codec.decode(ids);
    assert.match(text(withTools?.prompt ?? []), /clock[\s\S]*Today's date\./);
    assert.doesNotMatch(text(plain?.prompt ?? []), /clock/);
    assert.equal(withTools?.expected, "Saturday");
    assert.throws(
      () => encodeRlTasks([{ messages, tools: [clock], source: "tasks.jsonl:7" }], codec, 8, 20),
      /tasks\.jsonl:7: \d+ prompt tokens \+ --max-tokens 8 exceed the context of 20/,
    );
  });

  test("a reward module: used as written; one that throws, hangs or returns NaN stops the run naming the task", async () => {
    const dir = await tinyChatModel(0, 96);
    const data = tempDir("reward");
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
