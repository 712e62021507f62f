// The command line on bad input: one-line errors that name the problem, and nothing on
// disk overwritten or lost.

import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { assertOneLineError, llmfab, root } from "./cli-helpers.ts";
import { tempDir } from "./tmp.ts";

const corpus = readFileSync(join(root, "../shared/data/tinyshakespeare.txt"), "utf8").slice(0, 20_000);

function setup(config: string): { dir: string; config: string; data: string } {
  const dir = tempDir("cli");
  writeFileSync(join(dir, "corpus.txt"), corpus);
  writeFileSync(join(dir, "config.yaml"), config);
  return { dir, config: join(dir, "config.yaml"), data: join(dir, "corpus.txt") };
}

const tiny = (model = "n_layer: 1\n  n_head: 2\n  n_embd: 16\n  block_size: 16", train = "") => `
model:
  ${model}
train:
  batch_size: 2
  max_iters: 4
  eval_interval: 4
  eval_iters: 1
  checkpoint_interval: 2
  precision: fp32
  ${train}
sample:
  count: 0
`;

describe("llmfab pretrain on bad input", () => {
  test("an unknown config key", () => {
    const s = setup(tiny(undefined, "learning_rate: 0.1"));
    assertOneLineError(
      llmfab(["pretrain", "--config", s.config, "--data", s.data, "--out", join(s.dir, "o")]),
      /train: unknown key "learning_rate"/,
    );
  });

  test("n_embd not divisible by n_head", () => {
    const s = setup(tiny("n_layer: 1\n  n_head: 3\n  n_embd: 16\n  block_size: 16"));
    assertOneLineError(
      llmfab(["pretrain", "--config", s.config, "--data", s.data, "--out", join(s.dir, "o")]),
      /n_embd 16 is not divisible by n_head 3/,
    );
  });

  test("an empty data file", () => {
    const s = setup(tiny());
    writeFileSync(s.data, "");
    assertOneLineError(
      llmfab(["pretrain", "--config", s.config, "--data", s.data, "--out", join(s.dir, "o")]),
      /corpus\.txt: the file is empty/,
    );
  });

  test("a block size longer than the data", () => {
    const s = setup(tiny("n_layer: 1\n  n_head: 2\n  n_embd: 16\n  block_size: 4096"));
    assertOneLineError(
      llmfab(["pretrain", "--config", s.config, "--data", s.data, "--out", join(s.dir, "o")]),
      /validation split has \d+ tokens, but block_size 4096/,
    );
  });

  test("--resume without a checkpoint", () => {
    const s = setup(tiny());
    assertOneLineError(
      llmfab(["pretrain", "--config", s.config, "--data", s.data, "--out", join(s.dir, "o"), "--resume"]),
      /no checkpoint to resume \(trainer_state\.json is missing\)/,
    );
  });

  test("a corrupt checkpoint is named and left as it was", () => {
    const s = setup(tiny());
    const out = join(s.dir, "o");
    assert.equal(llmfab(["pretrain", "--config", s.config, "--data", s.data, "--out", out]).code, 0);
    const weights = join(out, "model", "model.safetensors");
    writeFileSync(weights, "garbage");
    assertOneLineError(
      llmfab(["pretrain", "--config", s.config, "--data", s.data, "--out", out, "--resume"]),
      /model\.safetensors: not a valid safetensors file/,
    );
    assert.equal(readFileSync(weights, "utf8"), "garbage");
  });

  test("an existing run is not overwritten without --resume", () => {
    const s = setup(tiny());
    const out = join(s.dir, "o");
    assert.equal(llmfab(["pretrain", "--config", s.config, "--data", s.data, "--out", out]).code, 0);
    const before = readFileSync(join(out, "model", "model.safetensors"));
    const metrics = readFileSync(join(out, "metrics.jsonl"), "utf8");
    assertOneLineError(
      llmfab(["pretrain", "--config", s.config, "--data", s.data, "--out", out]),
      /already holds a run; pass --resume/,
    );
    assert.deepEqual(readFileSync(join(out, "model", "model.safetensors")), before);
    assert.equal(readFileSync(join(out, "metrics.jsonl"), "utf8"), metrics);
    assert.deepEqual(readdirSync(out).sort(), ["metrics.jsonl", "model"]);
  });

  test("--json prints one line with the results", () => {
    const s = setup(tiny());
    const r = llmfab(["pretrain", "--config", s.config, "--data", s.data, "--out", join(s.dir, "o"), "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim());
    assert.deepEqual(Object.keys(summary).sort(), [
      "out",
      "steps",
      "tok_per_s",
      "tokens",
      "train_loss",
      "val_loss",
      "wall_s",
    ]);
    assert.equal(summary.steps, 4);
  });
});

describe("llmfab eval and sample", () => {
  test("eval prints {loss, tokens}; sample continues a prompt", () => {
    const s = setup(tiny());
    const out = join(s.dir, "o");
    assert.equal(llmfab(["pretrain", "--config", s.config, "--data", s.data, "--out", out]).code, 0);
    const val = join(s.dir, "val.txt");
    writeFileSync(val, corpus.slice(0, 1000));
    const r = llmfab(["eval", "--model", join(out, "model"), "--data", val, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const e = JSON.parse(r.stdout);
    assert.equal(e.tokens, 999);
    assert.ok(e.loss > 0 && e.loss < 10);
    const g = llmfab([
      "sample",
      "--model",
      join(out, "model"),
      "--prompt",
      "ROMEO:",
      "--max-tokens",
      "10",
      "--seed",
      "1",
    ]);
    assert.equal(g.code, 0, g.stderr);
    assert.ok(g.stdout.startsWith("ROMEO:") && g.stdout.length >= 16);
  });

  test("a missing model directory is a one-line error", () => {
    const dir = tempDir("cli");
    mkdirSync(join(dir, "empty"));
    assertOneLineError(
      llmfab(["eval", "--model", join(dir, "empty"), "--data", "sotu"]),
      /empty: not a model directory \(no config\.json/,
    );
  });
});

describe("llmfab tokenizer and tokenize", () => {
  test("train, encode with ids, decode, and shards from the built-in corpus", () => {
    const dir = tempDir("cli");
    const tok = join(dir, "tok");
    const t = llmfab(["tokenizer", "train", "--data", "sotu", "--vocab-size", "600", "--out", tok]);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /trained 600 tokens on 10\.\d MB/);
    const e = llmfab(["tokenizer", "encode", "--tokenizer", tok, "--text", "Fellow citizens", "--ids"]);
    const ids = JSON.parse(e.stdout) as number[];
    const d = llmfab(["tokenizer", "decode", "--tokenizer", tok, "--text", JSON.stringify(ids)]);
    assert.equal(d.stdout, "Fellow citizens\n");
    const s = llmfab(["tokenize", "--tokenizer", tok, "--data", "sotu", "--out", join(dir, "shards")]);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /\d+ \+ \d+ documents -> [\d,]+ train \+ [\d,]+ val tokens \(uint16\)/);
    assert.match(s.stdout, /bytes per token/);
  });

  test("bad input: unknown pattern, tiny vocabulary, corrupt tokenizer.json", () => {
    const dir = tempDir("cli");
    writeFileSync(join(dir, "a.txt"), "some text");
    assertOneLineError(
      llmfab(["tokenizer", "train", "--data", join(dir, "a.txt"), "--vocab-size", "300", "--pattern", "bert"]),
      /unknown pattern "bert"/,
    );
    assertOneLineError(
      llmfab(["tokenizer", "train", "--data", join(dir, "a.txt"), "--vocab-size", "260"]),
      /--vocab-size 260 is too small/,
    );
    assertOneLineError(
      llmfab(["tokenizer", "train", "--data", join(dir, "a.txt"), "--vocab-size", "100"]),
      /option '--vocab-size <n>' argument '100' is invalid\. It must be an integer >= 257/,
    );
    writeFileSync(join(dir, "tokenizer.json"), "{broken");
    assertOneLineError(
      llmfab(["tokenizer", "encode", "--tokenizer", dir, "--text", "x"]),
      /tokenizer\.json: invalid JSON/,
    );
  });
});

describe("llmfab synth, sft and merge", () => {
  test("LoRA fine-tuning from the command line, then merging into a plain model directory", async () => {
    const { tinyChatModel } = await import("./chat-model.ts");
    const base = await tinyChatModel();
    const dir = tempDir("cli");
    const data = join(dir, "chats.jsonl");
    const chat = {
      messages: [
        { role: "user", content: "Hello there" },
        { role: "assistant", content: "I am fine, thank you." },
      ],
    };
    writeFileSync(data, `${Array.from({ length: 8 }, () => JSON.stringify(chat)).join("\n")}\n`);
    const sft = llmfab([
      "sft",
      "--model",
      base,
      "--data",
      data,
      "--mode",
      "lora",
      "--epochs",
      "1",
      "--batch-size",
      "4",
      "--out",
      join(dir, "adapter"),
    ]);
    assert.equal(sft.code, 0, sft.stderr);
    assert.match(sft.stdout, /fine-tuned [\d,]+ parameters for 2 steps/);
    const merge = llmfab(["merge", "--adapter", join(dir, "adapter"), "--out", join(dir, "merged")]);
    assert.equal(merge.code, 0, merge.stderr);
    assert.match(merge.stdout, /merged 4 adapters/);
    const again = llmfab(["merge", "--adapter", join(dir, "adapter"), "--out", join(dir, "merged")]);
    assertOneLineError(again, /merged already exists; choose another --out/);
    assertOneLineError(
      llmfab(["sft", "--model", base, "--data", data, "--mode", "half", "--out", join(dir, "x")]),
      /--mode must be full, freeze or lora/,
    );
    const synth = llmfab([
      "synth",
      "--out",
      join(dir, "s.jsonl"),
      "--n",
      "50",
      "--mix",
      "arithmetic=6",
      "--heldout",
      "20",
    ]);
    assert.match(synth.stdout, /50 training conversations in .*s\.jsonl, 18 held-out in .*s\.heldout\.jsonl/);
    assertOneLineError(
      llmfab(["synth", "--out", join(dir, "t.jsonl"), "--mix", "algebra=1"]),
      /unknown task "algebra"/,
    );
    const answers = join(dir, "answers.jsonl");
    const tasks = join(dir, "s.heldout.jsonl");
    const evaluated = llmfab(["eval", "--model", join(dir, "merged"), "--tasks", tasks, "--answers", answers]);
    assert.equal(evaluated.code, 0, evaluated.stderr);
    assert.match(evaluated.stdout, /overall\s+\d+\.\d%\s+\(\d+\/18\)/);
    const lines = readFileSync(answers, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 18);
    assert.deepEqual(Object.keys(lines[0]), ["task", "question", "expected", "got", "correct"]);
    assertOneLineError(
      llmfab(["eval", "--model", base, "--data", data, "--answers", answers]),
      /--answers needs --tasks/,
    );
  });
});
