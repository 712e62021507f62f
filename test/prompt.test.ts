// Prompt optimisation on a real (tiny) model fine-tuned to answer one way under a system
// prompt and another way without: the search must find that prompt on dev, and the test
// split, never used to choose, must show the gain. PROMPT.json then works in eval --prompt.

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { applyPrompt, readPromptFile } from "../src/infer/prompt-file.ts";
import { loadAnyModel } from "../src/model/peft.ts";
import { loadChatCodec } from "../src/pipeline/codec.ts";
import { optimizePrompt, pairedStandardError } from "../src/pipeline/prompt-optimize.ts";
import { runSftCommand } from "../src/pipeline/sft.ts";
import { readConversations } from "../src/posttrain/data.ts";
import { sftDefaults, tinyChatModel } from "./chat-model.ts";
import { llmfab } from "./cli-helpers.ts";
import { tempDir } from "./tmp.ts";

const SYSTEM = "Answer with the answer only.";
const THINGS = ["the sea", "the sky", "a sapphire", "a bluebird", "the ink"];

const line = (messages: { role: string; content: string }[]) => `${JSON.stringify({ messages })}\n`;

describe("llmfab prompt optimize", () => {
  let dir: string;
  let model: string;
  let tasks: string;
  before(async () => {
    dir = tempDir("prompt");
    // Under the system prompt the answer is "blue"; without it, a sentence that is not the answer.
    const train = THINGS.flatMap((t) => {
      const user = { role: "user", content: `What colour is ${t}?` };
      return [
        line([{ role: "system", content: SYSTEM }, user, { role: "assistant", content: "blue" }]),
        line([user, { role: "assistant", content: "I would say it is red." }]),
      ];
    });
    writeFileSync(join(dir, "train.jsonl"), train.join(""));
    model = join(dir, "model");
    await runSftCommand({
      ...sftDefaults,
      model: await tinyChatModel(0, 256),
      data: [join(dir, "train.jsonl")],
      mode: "full",
      epochs: 60,
      warmup: 10,
      batchSize: 2,
      seed: 1,
      out: model,
    });
    tasks = join(dir, "tasks.jsonl");
    const lines = Array.from({ length: 30 }, (_, i) =>
      line([
        { role: "user", content: `What colour is ${THINGS[i % THINGS.length]}?` },
        { role: "assistant", content: "blue" },
      ]),
    );
    writeFileSync(tasks, lines.join(""));
  });

  it("finds the system prompt that works on dev, and shows the gain on a test split it never chose on", async () => {
    const conversations = readConversations([tasks]);
    const trials: number[] = [];
    const r = await optimizePrompt(loadAnyModel(model), loadChatCodec(model), conversations, {
      candidates: ["", "Be chatty and verbose.", SYSTEM],
      shots: 2,
      trials: 8,
      seed: 3,
      split: { train: 0.4, dev: 0.3 },
      margin: 1,
      onTrial: (t) => trials.push(t.dev),
    });
    assert.deepEqual(r.sizes, { train: 12, dev: 9, test: 9 });
    assert.equal(r.trials.length, 8);
    assert.deepEqual([r.trials[0]?.system, r.trials[0]?.shots], ["", 0], "the default is tried first");
    assert.equal(r.dev.chosen, Math.max(...trials), "the best on dev is chosen");
    assert.equal(r.test.default, 0, "without the prompt the model never says the answer");
    assert.ok(r.test.chosen >= 0.9, `test accuracy with the chosen prompt: ${r.test.chosen}`);
    assert.equal(r.best.system, SYSTEM);
    assert.ok(r.top.gain > r.top.standardError, "a gain well above dev's noise");
  });

  it("measures a gain against dev's noise: the standard error of the paired per-task difference", () => {
    // Differences 1, 1, 0, 0: mean 0.5, sample variance 1/3, standard error sqrt(1/12).
    const se = pairedStandardError([true, true, false, true], [false, false, false, true]);
    assert.ok(Math.abs(se - Math.sqrt(1 / 12)) < 1e-12, String(se));
    assert.equal(pairedStandardError([true, true], [false, false]), 0, "a gain on every task has no noise");
  });

  it("writes PROMPT.json with every trial, which eval --prompt puts before each task", () => {
    const out = join(dir, "prompt.json");
    const optimize = (candidates: string, ...more: string[]) =>
      llmfab([
        "prompt",
        "optimize",
        "--model",
        model,
        "--tasks",
        tasks,
        "--candidates",
        candidates,
        "--out",
        out,
        ...more,
      ]);
    const missing = optimize(join(dir, "none.txt"));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /none\.txt/);
    writeFileSync(join(dir, "candidates.txt"), `${SYSTEM}\nBe chatty and verbose.\n`);
    const run = optimize(join(dir, "candidates.txt"), "--trials", "4", "--shots", "1");
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.match(/^ +\d+ +\d+ +[\d.]+% /gm)?.length, 4, run.stdout);
    assert.match(run.stdout, /test: default 0\.0%, chosen (9\d|100)\.\d%/);
    const prompt = readPromptFile(out);
    assert.equal(prompt.system, SYSTEM);
    assert.equal((prompt.chosen_by?.trials as unknown[] | undefined)?.length, 4);
    const asked = applyPrompt(prompt, [{ role: "user", content: "What colour is the sea?" }]);
    assert.deepEqual(asked[0], { role: "system", content: SYSTEM });
    const withPrompt = llmfab(["eval", "--model", model, "--tasks", tasks, "--prompt", out, "--json"]);
    const without = llmfab(["eval", "--model", model, "--tasks", tasks, "--json"]);
    const overall = (out: string) => (JSON.parse(out) as { task: string; accuracy: number }[]).at(-1)?.accuracy;
    assert.ok((overall(withPrompt.stdout) ?? 0) >= 0.9, withPrompt.stdout + withPrompt.stderr);
    assert.equal(overall(without.stdout), 0);
    assert.match(readFileSync(out, "utf8"), /"chosen_by"/);
  });
});
