// DPO end to end on a tiny model: pairs whose chosen answer is in the prompt's language
// (English or French); after training, held-out pairs (unseen subjects) prefer the answer in
// the prompt's language, which the untrained model does only by chance.

import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { loadModel } from "../src/model/directory.ts";
import { loadChatCodec } from "../src/pipeline/codec.ts";
import type { Message } from "../src/posttrain/data.ts";
import { referenceLogProbs, runDpo } from "../src/posttrain/dpo.ts";
import { type EncodedPair, encodePair, readPreferencePairs } from "../src/posttrain/preference.ts";
import { startServer } from "../src/server/serve.ts";
import { sftDefaults, tinyChatModel } from "./chat-model.ts";
import { llmfab } from "./cli-helpers.ts";
import { tempDir } from "./tmp.ts";

const THINGS = ["bread", "water", "light", "stone", "music", "paper", "salt", "wood", "glass", "rain", "snow", "wind"];
const HELD_OUT = ["honey", "cloud", "sand", "iron"];

function pairs(things: string[]): object[] {
  return things.flatMap((t) => [
    { prompt: `Answer in English: what is ${t}?`, chosen: `It is ${t}.`, rejected: `C'est ${t}.` },
    { prompt: `Réponds en français : qu'est-ce que ${t} ?`, chosen: `C'est ${t}.`, rejected: `It is ${t}.` },
  ]);
}

/** Share of pairs where the model gives the chosen answer the higher log-probability. */
function prefersChosen(model: ReturnType<typeof loadModel>, encoded: EncodedPair[]): number {
  const [chosen, rejected] = referenceLogProbs(model, encoded, 8) as [Float64Array, Float64Array];
  return chosen.filter((c, i) => c > (rejected[i] as number)).length / encoded.length;
}

describe("DPO", () => {
  test("held-out pairs come to prefer the answer in the prompt's language", async (t) => {
    const dir = await tinyChatModel(0, 128);
    const data = tempDir("dpo");
    const write = (name: string, rows: object[]) => {
      writeFileSync(join(data, name), rows.map((r) => JSON.stringify(r)).join("\n"));
      return join(data, name);
    };
    const codec = loadChatCodec(dir);
    const render = (m: Message[], g: boolean) => codec.encode(codec.renderChat(m, g), true);
    const encode = (file: string) => readPreferencePairs([file]).map((p) => encodePair(p, render, 128));
    const train = encode(write("train.jsonl", pairs(THINGS)));
    const heldOut = encode(write("heldout.jsonl", pairs(HELD_OUT)));
    const model = loadModel(dir);
    const before = prefersChosen(model, heldOut);
    const lora = { r: 4, alpha: 8, dropout: 0, targets: [], fa: false };
    const accuracies: number[] = [];
    runDpo(
      model,
      train,
      {
        ...sftDefaults,
        mode: "full",
        lora,
        epochs: 30,
        batchSize: 8,
        lr: 3e-3,
        warmupIters: 5,
        weightDecay: 0,
        gradClip: 1,
        beta: 0.1,
      },
      (s) => accuracies.push(s.accuracy),
    );
    const after = prefersChosen(model, heldOut);
    t.diagnostic(`held-out preference for the prompt's language: ${before} before, ${after} after`);
    assert.ok(after >= 0.9, `held-out preference ${after} (before: ${before})`);
    assert.ok((accuracies.at(-1) as number) >= 0.9, `training accuracy ${accuracies.at(-1)}`);
  });

  test("llmfab dpo writes a PEFT adapter and reports held-out preference accuracy", async () => {
    const dir = await tinyChatModel(0, 128);
    const data = tempDir("dpo");
    writeFileSync(
      join(data, "pairs.jsonl"),
      pairs(THINGS)
        .map((r) => JSON.stringify(r))
        .join("\n"),
    );
    const out = join(data, "adapter");
    const r = llmfab([
      "dpo",
      "--model",
      dir,
      "--data",
      join(data, "pairs.jsonl"),
      "--mode",
      "lora",
      "--lora-rank",
      "4",
      "--epochs",
      "2",
      "--batch-size",
      "4",
      "--lr",
      "1e-3",
      "--val-fraction",
      "0.25",
      "--out",
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /DPO: \d+ steps; held-out preference accuracy [\d.]+%, mean reward margin -?[\d.]+/);
    assert.ok(existsSync(join(out, "adapter_config.json")) && existsSync(join(out, "metrics.jsonl")));
    const bad = llmfab(["dpo", "--model", dir, "--data", join(data, "missing.jsonl"), "--out", join(data, "x")]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /missing\.jsonl: cannot read the preference file/);
  });

  test("feedback on answers: kept through the API, exported as pairs, accepted by llmfab dpo", async () => {
    const dir = await tinyChatModel(0, 128);
    const data = tempDir("feedback");
    const feedbackFile = join(data, "feedback.jsonl");
    const server = await startServer({
      model: dir,
      host: "127.0.0.1",
      port: 0,
      slots: 1,
      maxQueue: 2,
      threads: 1,
      feedbackFile,
    });
    const send = (body: object) =>
      fetch(`${server.url}/v1/feedback`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    try {
      const ask = [{ role: "user", content: "How are you?" }];
      // Regenerated twice, the third answer kept and liked.
      assert.equal(
        (await send({ messages: ask, answer: "I am fine.", rating: "up", replaced: ["Hello.", "Thank you."] })).status,
        200,
      );
      // Another conversation: one answer liked, one disliked.
      const hi = [{ role: "user", content: "Hi there" }];
      await send({ messages: hi, answer: "Hello there, how are you?", rating: "up" });
      await send({ messages: hi, answer: "fine fine fine", rating: "down" });
      const bad = await send({ messages: [], answer: "x" });
      assert.equal(bad.status, 400);
    } finally {
      await server.close();
    }
    const pairsFile = join(data, "pairs.jsonl");
    const exported = llmfab(["feedback", "export", "--data", feedbackFile, "--format", "dpo", "--out", pairsFile]);
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stdout, /^3 preference pairs written/);
    const pairs = readPreferencePairs([pairsFile]);
    assert.deepEqual(
      pairs.map((p) => [p.prompt[0]?.content, p.chosen[0]?.content, p.rejected[0]?.content]),
      [
        ["How are you?", "I am fine.", "Hello."],
        ["How are you?", "I am fine.", "Thank you."],
        ["Hi there", "Hello there, how are you?", "fine fine fine"],
      ],
    );
    const r = llmfab([
      "dpo",
      "--model",
      dir,
      "--data",
      pairsFile,
      "--max-steps",
      "1",
      "--val-fraction",
      "0.3",
      "--out",
      join(data, "dpo"),
    ]);
    assert.equal(r.code, 0, r.stderr);
  });

  test("bad pairs are errors naming the line", () => {
    const data = tempDir("dpo");
    const file = join(data, "bad.jsonl");
    writeFileSync(file, `${JSON.stringify({ prompt: "p", chosen: "same", rejected: "same" })}\n`);
    assert.throws(() => readPreferencePairs([file]), /bad\.jsonl:1: chosen and rejected are the same answer/);
    writeFileSync(file, `{"prompt": "p"}\n`);
    assert.throws(() => readPreferencePairs([file]), /bad\.jsonl:1: not a preference pair: chosen/);
  });
});
