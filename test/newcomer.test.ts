// What a new user runs into: numbers out of range, misleading messages, input that must
// be refused, debris from failed runs, conventions that differ between commands, and what
// people expect of a CLI. Each test guards one class of problem found by trying the README.

import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { continueTokens } from "../src/infer/continue.ts";
import { Engine, type EngineTokenizer } from "../src/infer/engine.ts";
import { loadModel } from "../src/model/directory.ts";
import { generate } from "../src/model/generate.ts";
import { describeRange, RANGES } from "../src/options/ranges.ts";
import { chatRequest } from "../src/server/schemas.ts";
import { modelIdOf, startServer } from "../src/server/serve.ts";
import { noGrad } from "../src/tensor/index.ts";
import { tinyChatModel } from "./chat-model.ts";
import { assertOneLineError, llmfab, root } from "./cli-helpers.ts";
import { tempDir } from "./tmp.ts";

const tmp = () => tempDir("new");
const shakespeare = readFileSync(join(root, "../shared/data/tinyshakespeare.txt"), "utf8").slice(0, 20_000);
const TINY_CONFIG = `
model:
  n_layer: 1
  n_head: 2
  n_embd: 16
  block_size: 16
train:
  batch_size: 2
  max_iters: 4
  eval_interval: 4
  eval_iters: 1
  precision: fp32
sample:
  count: 0
`;

function chats(dir: string, n: number): string {
  const path = join(dir, "chats.jsonl");
  const line = (i: number) =>
    JSON.stringify({
      messages: [
        { role: "user", content: `Hello there ${i}` },
        { role: "assistant", content: "I am fine, thank you." },
      ],
    });
  writeFileSync(path, `${Array.from({ length: n }, (_, i) => line(i)).join("\n")}\n`);
  return path;
}

describe("numbers are checked against one set of ranges", () => {
  test("sft, sample and chat refuse values out of range with one line naming the flag", async () => {
    const base = await tinyChatModel();
    const dir = tmp();
    const data = chats(dir, 8);
    const sft = (...flags: string[]) =>
      llmfab(["sft", "--model", base, "--data", data, "--out", join(dir, "o"), ...flags]);
    assertOneLineError(
      sft("--batch-size", "0"),
      /'--batch-size <n>' argument '0' is invalid\. It must be an integer >= 1/,
    );
    assertOneLineError(sft("--lr", "-1"), /'--lr <lr>' argument '-1' is invalid\. It must be a number > 0/);
    assertOneLineError(sft("--epochs", "0"), /'--epochs <n>' argument '0' is invalid\. It must be a number > 0/);
    assertOneLineError(sft("--epochs", "-1"), /'--epochs <n>'/);
    assertOneLineError(sft("--lora-rank", "0", "--mode", "lora"), /'--lora-rank <r>' argument '0'/);
    assertOneLineError(sft("--batch-size", "two"), /'--batch-size <n>' argument 'two' is invalid/);
    assertOneLineError(
      llmfab(["sample", "--model", base, "--temperature", "-1"]),
      /'--temperature <t>' argument '-1' is invalid\. It must be a number in \[0, 2\]/,
    );
    assertOneLineError(llmfab(["serve", "--model", base, "--port", "70000"]), /'--port <n>'/);
    assertOneLineError(llmfab(["--threads", "0", "sample", "--model", base]), /'--threads <n>'/);
    assert.ok(!existsSync(join(dir, "o")), "nothing written");
  });

  test("the server's schema and the CLI say the same about the same number", () => {
    const r = chatRequest.safeParse({ messages: [{ role: "user", content: "x" }], temperature: -1 });
    assert.ok(!r.success);
    assert.equal(r.error.issues[0]?.message, `must be ${describeRange(RANGES.temperature)}`);
  });

  test("--epochs 0.5 trains half an epoch; --max-steps caps it", async () => {
    const base = await tinyChatModel();
    const dir = tmp();
    const data = chats(dir, 16);
    const half = llmfab([
      "sft",
      "--model",
      base,
      "--data",
      data,
      "--val-fraction",
      "0",
      "--epochs",
      "0.5",
      "--batch-size",
      "4",
      "--out",
      join(dir, "half"),
    ]);
    assert.equal(half.code, 0, half.stderr);
    assert.match(half.stdout, /for 2 steps/);
    const capped = llmfab(["sft", "--model", base, "--data", data, "--max-steps", "1", "--out", join(dir, "one")]);
    assert.match(capped.stdout, /for 1 steps/);
  });
});

describe("messages say what is wrong", () => {
  test("merge on a missing folder, a full model and a broken adapter config", async () => {
    const base = await tinyChatModel();
    const dir = tmp();
    assertOneLineError(
      llmfab(["merge", "--adapter", join(dir, "nope"), "--out", join(dir, "m")]),
      /nope: no such adapter directory/,
    );
    assertOneLineError(
      llmfab(["merge", "--adapter", base, "--out", join(dir, "m")]),
      /a full model directory, not a LoRA adapter \(no adapter_config\.json\)/,
    );
    mkdirSync(join(dir, "broken"));
    writeFileSync(join(dir, "broken", "adapter_config.json"), "{");
    assertOneLineError(
      llmfab(["merge", "--adapter", join(dir, "broken"), "--out", join(dir, "m")]),
      /adapter_config\.json: invalid JSON \(/,
    );
  });

  test("a typo in a required config key names the unknown key and the likely one", () => {
    const dir = tmp();
    writeFileSync(join(dir, "c.yaml"), TINY_CONFIG.replace("n_layer:", "n_layers:"));
    assertOneLineError(
      llmfab(["pretrain", "--config", join(dir, "c.yaml"), "--out", join(dir, "o")]),
      /model: unknown key "n_layers" \(did you mean "n_layer"\?\)/,
    );
  });

  test("every command says the same about a missing model", () => {
    const missing = join(tmp(), "runs", "quickstart", "model");
    const message = /runs\/quickstart\/model: no such model directory/;
    assertOneLineError(llmfab(["sample", "--model", missing]), message);
    assertOneLineError(llmfab(["chat", "--model", missing], "/exit\n"), message);
    assertOneLineError(llmfab(["eval", "--model", missing, "--data", "sotu"]), message);
    assertOneLineError(llmfab(["serve", "--model", missing]), message);
    assertOneLineError(llmfab(["sft", "--model", missing, "--data", "x.jsonl"]), message);
  });

  test("corpus names only the folders it wrote", () => {
    const dir = tmp();
    mkdirSync(join(dir, "docs"));
    writeFileSync(join(dir, "docs", "a.txt"), "too short");
    const r = llmfab(["corpus", "--source", join(dir, "docs"), "--out", join(dir, "out")]);
    assert.equal(r.code, 0, r.stderr);
    const wrote = r.stderr.trim().split("\n").pop() ?? "";
    for (const folder of ["train", "val"])
      assert.equal(wrote.includes(`/out/${folder}`), existsSync(join(dir, "out", folder)), `${folder}: ${wrote}`);
  });
});

describe("input that must be refused", () => {
  test("invalid UTF-8 is refused by pretrain, eval and tokenizer encode, naming the byte", async () => {
    const dir = tmp();
    const latin1 = join(dir, "latin1.txt");
    writeFileSync(latin1, Buffer.from(`${"Caf\xe9 cr\xe8me. ".repeat(200)}`, "latin1"));
    writeFileSync(join(dir, "c.yaml"), TINY_CONFIG);
    const utf8 = /latin1\.txt: invalid UTF-8 at byte 3/;
    assertOneLineError(
      llmfab(["pretrain", "--config", join(dir, "c.yaml"), "--data", latin1, "--out", join(dir, "o")]),
      utf8,
    );
    assertOneLineError(llmfab(["eval", "--model", await tinyChatModel(), "--data", latin1]), utf8);
    assertOneLineError(llmfab(["tokenizer", "encode", "--tokenizer", "gpt2", "--data", latin1]), utf8);
    assert.ok(!existsSync(join(dir, "o")));
  });
});

describe("failed runs leave nothing behind, or resume", () => {
  test("pretrain with a config the model rejects leaves no run folder", () => {
    const dir = tmp();
    writeFileSync(join(dir, "corpus.txt"), shakespeare);
    writeFileSync(join(dir, "c.yaml"), TINY_CONFIG.replace("n_head: 2", "n_head: 3"));
    assertOneLineError(
      llmfab(["pretrain", "--config", join(dir, "c.yaml"), "--data", join(dir, "corpus.txt"), "--out", join(dir, "o")]),
      /not divisible/,
    );
    assert.ok(!existsSync(join(dir, "o")), "no run folder, no empty metrics.jsonl");
  });

  test("tokenize that fails writes no shards and no half folder; a good run then succeeds", () => {
    const dir = tmp();
    writeFileSync(join(dir, "play.txt"), shakespeare);
    const out = join(dir, "shards");
    const args = ["tokenize", "--tokenizer", "gpt2", "--out", out, "--data", join(dir, "play.txt")];
    assertOneLineError(llmfab([...args, join(dir, "missing.txt")]), /missing\.txt/);
    assert.deepEqual(readdirSync(dir).sort(), ["play.txt"], "neither the output nor a temporary folder is left");
    assert.equal(llmfab(args).code, 0);
  });

  test("sft that fails leaves no output folder", async () => {
    const dir = tmp();
    const good = '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}';
    writeFileSync(join(dir, "bad.jsonl"), `${good}\n{broken\n`);
    assertOneLineError(
      llmfab(["sft", "--model", await tinyChatModel(), "--data", join(dir, "bad.jsonl"), "--out", join(dir, "o")]),
      /bad\.jsonl:2: malformed JSON/,
    );
    assert.ok(!existsSync(join(dir, "o")));
  });
});

describe("tokenize and pretrain split a single text file the same way", () => {
  test("one file is split by position, the last val fraction held out, and pretrain trains on it", () => {
    const dir = tmp();
    writeFileSync(join(dir, "play.txt"), shakespeare);
    const r = llmfab(["tokenize", "--tokenizer", "gpt2", "--data", join(dir, "play.txt"), "--out", join(dir, "s")]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /1 document, split by position -> [\d,]+ train \+ [\d,]+ val tokens/);
    const meta = JSON.parse(readFileSync(join(dir, "s", "meta.json"), "utf8"));
    assert.equal(meta.split, "position");
    const total = meta.tokens.train + meta.tokens.val;
    assert.equal(meta.tokens.train, Math.floor(total * 0.95));
    writeFileSync(join(dir, "c.yaml"), TINY_CONFIG);
    const p = llmfab([
      "pretrain",
      "--config",
      join(dir, "c.yaml"),
      "--data",
      join(dir, "s"),
      "--out",
      join(dir, "run"),
    ]);
    assert.equal(p.code, 0, p.stderr);
  });
});

describe("sample runs on the KV-cache engine", () => {
  test("it stops before a stop id, and slides past the context like a window", async () => {
    const model = loadModel(await tinyChatModel());
    const prompt = [1, 2, 3];
    const options = { maxTokens: 8, temperature: 0, topK: 0, seed: 1 };
    const reference = [...noGrad(() => generate(model, Int32Array.from(prompt), options))];
    const tokenizer = (stopIds: Set<number>): EngineTokenizer => ({
      vocabSize: model.config.vocabSize,
      stopIds,
      streamDecoder: () => ({ push: () => "", flush: () => "" }),
    });
    const free = continueTokens(new Engine(model, tokenizer(new Set()), 1), prompt, options);
    assert.deepEqual(free, reference, "greedy tokens equal full recomputation's");
    const stopAt = reference[3] as number;
    const stopped = continueTokens(new Engine(model, tokenizer(new Set([stopAt])), 1), prompt, options);
    assert.deepEqual(stopped, reference.slice(0, reference.indexOf(stopAt)));
    const long = continueTokens(new Engine(model, tokenizer(new Set()), 1), prompt, { ...options, maxTokens: 250 });
    assert.equal(long.length, 250, `past the ${model.config.blockSize}-token context`);
  });

  test("llmfab sample streams a continuation", async () => {
    const r = llmfab(["sample", "--model", await tinyChatModel(), "--prompt", "Hello", "--max-tokens", "20"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith("Hello"));
  });
});

describe("one convention per thing", () => {
  test("tokenizer train refuses an existing --out as pretrain, sft and merge do", () => {
    const dir = tmp();
    writeFileSync(join(dir, "t.txt"), shakespeare);
    mkdirSync(join(dir, "tok"));
    writeFileSync(join(dir, "tok", "keep.txt"), "mine");
    assertOneLineError(
      llmfab(["tokenizer", "train", "--data", join(dir, "t.txt"), "--vocab-size", "300", "--out", join(dir, "tok")]),
      /tok already exists; choose another --out/,
    );
    assert.equal(readFileSync(join(dir, "tok", "keep.txt"), "utf8"), "mine");
  });

  test("JSON output uses snake_case keys in every command; global options go anywhere", async () => {
    const model = await tinyChatModel();
    const copy = llmfab(["eval", "--model", model, "--data", "sotu", "--copy", "--json"]);
    assert.equal(copy.code, 0, copy.stderr);
    assert.deepEqual(Object.keys(JSON.parse(copy.stdout)), ["first_copy", "second_copy", "windows", "length"]);
    const after = llmfab(["tokenizer", "encode", "--tokenizer", "gpt2", "--text", "hi", "--precision", "fp32"]);
    assert.equal(after.code, 0, after.stderr);
  });
});

describe("what people expect from a CLI", () => {
  test("--version, a pretraining summary, --set, perplexity, SFT progress with validation loss and metrics", async () => {
    const version = llmfab(["--version"]);
    assert.equal(version.stdout.trim(), JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version);

    const dir = tmp();
    writeFileSync(join(dir, "corpus.txt"), shakespeare);
    writeFileSync(join(dir, "c.yaml"), TINY_CONFIG);
    const run = llmfab([
      "pretrain",
      "--config",
      join(dir, "c.yaml"),
      "--data",
      join(dir, "corpus.txt"),
      "--set",
      "train.max_iters=2",
      "--set",
      "train.eval_interval=2",
      "--out",
      join(dir, "run"),
      "--json",
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).steps, 2, "--set overrode max_iters");
    assert.match(run.stderr, /gpt2: 1 layers, 2 heads, 16 wide, block 16; [\d.]+ M parameters, vocabulary \d+/);
    assert.match(run.stderr, /compute: 1 threads, matmuls in fp32, .*\(/);
    assertOneLineError(
      llmfab(["pretrain", "--config", join(dir, "c.yaml"), "--set", "train.max_iters=0", "--out", join(dir, "x")]),
      /train\.max_iters: /,
    );

    const ppl = llmfab(["eval", "--model", join(dir, "run", "model"), "--data", join(dir, "corpus.txt"), "--json"]);
    const r = JSON.parse(ppl.stdout) as { loss: number; perplexity: number };
    assert.ok(Math.abs(r.perplexity - Math.exp(r.loss)) < 1e-9);

    const base = await tinyChatModel();
    const data = chats(dir, 40);
    const sft = llmfab([
      "sft",
      "--model",
      base,
      "--data",
      data,
      "--max-steps",
      "4",
      "--val-fraction",
      "0.25",
      "--out",
      join(dir, "sft"),
    ]);
    assert.equal(sft.code, 0, sft.stderr);
    assert.match(sft.stdout, /validation loss \d+\.\d+/);
    assert.match(sft.stderr, /tok\/s/);
    const metrics = readFileSync(join(dir, "sft", "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(metrics.filter((m) => "loss" in m).length, 4);
    assert.ok(metrics.some((m) => "val_loss" in m && m.step === 4));
  });

  test("serve logs one line per request and names the model after its folder", async () => {
    assert.equal(modelIdOf("runs/quickstart/chat"), "quickstart/chat");
    assert.equal(modelIdOf("runs/shakespeare/model"), "shakespeare/model");
    assert.equal(modelIdOf("my-gpt"), "my-gpt");
    const lines: string[] = [];
    const server = await startServer({
      model: await tinyChatModel(),
      host: "127.0.0.1",
      port: 0,
      slots: 1,
      maxQueue: 1,
      threads: 1,
      modelName: "tiny",
      log: (line) => lines.push(line),
    });
    try {
      const models = (await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string }[] };
      assert.equal(models.data[0]?.id, "tiny");
      await fetch(`${server.url}/v1/nothing`);
      assert.match(lines[0] ?? "", /^GET \/v1\/models 200 \d+ ms$/);
      assert.match(lines[1] ?? "", /^GET \/v1\/nothing 404 \d+ ms$/);
    } finally {
      await server.close();
    }
  });
});
