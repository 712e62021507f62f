// The byte-level BPE tokenizer: exact agreement with tiktoken and Hugging Face's
// tokenizers, byte-exact round trips, training against a naive reference, formats,
// token shards, and errors on bad input.

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import fc from "fast-check";
import { get_encoding } from "tiktoken";
import { sotuText } from "../src/data/corpora.ts";
import { readShard } from "../src/io/shards.ts";
import { runPretrain } from "../src/pipeline/pretrain.ts";
import { tokenizeCorpus } from "../src/pipeline/tokenize.ts";
import { type ChunkCounts, countChunks } from "../src/tokenizer/chunk-count.ts";
import { loadBpeTokenizer, saveTokenizer } from "../src/tokenizer/files.ts";
import { parseTokenizerJson, toTokenizerJson } from "../src/tokenizer/huggingface.ts";
import { PATTERN_SOURCES } from "../src/tokenizer/patterns.ts";
import { loadBuiltinEncoding, parseTiktokenFile, toTiktokenFile } from "../src/tokenizer/tiktoken.ts";
import { SPECIAL_TOKENS, Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { trainTokenizer } from "../src/tokenizer/train.ts";
import { trainBpe } from "../src/tokenizer/trainer.ts";
import { parsePretrainConfig } from "../src/train/config.ts";
import { tempDir } from "./tmp.ts";

const shakespeare = readFileSync(new URL("../../shared/data/tinyshakespeare.txt", import.meta.url), "utf8");
const sotu = sotuText();

function tmp(): string {
  return tempDir("tok");
}

function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
}

let trainedCache: Tokenizer | null = null;
async function trained(): Promise<Tokenizer> {
  if (!trainedCache) {
    const dir = tmp();
    writeFileSync(join(dir, "sotu.txt"), sotu);
    trainedCache = (
      await trainTokenizer({ files: [join(dir, "sotu.txt")], vocabSize: 2048, pattern: "gpt4", threads: 1 })
    ).tokenizer;
  }
  return trainedCache;
}

describe("pretrained encodings against tiktoken", () => {
  for (const name of ["gpt2", "cl100k_base"] as const)
    test(`${name}: identical ids on tinyshakespeare and the SOTU corpus`, () => {
      const ours = loadBuiltinEncoding(name);
      const ref = get_encoding(name);
      try {
        for (const [corpus, text] of [
          ["tinyshakespeare", shakespeare],
          ["sotu", sotu],
        ] as const) {
          const a = ours.encodeOrdinary(text);
          const b = ref.encode_ordinary(text);
          assert.equal(firstDifference(a, b), -1, `${name} on ${corpus}: ids differ`);
          assert.equal(ours.decode(a), text);
        }
        const tricky =
          "Hello  world!\n\n\t  It's 2024: naïve café, 東京, emoji 🎉🎉 and CAPS'LL  \u00a0spaces\r\n123456789";
        assert.deepEqual(ours.encodeOrdinary(tricky), [...ref.encode_ordinary(tricky)]);
      } finally {
        ref.free();
      }
    });
});

describe("round trips", () => {
  test("decodeBytes(encodeBytes(b)) == b for arbitrary bytes, invalid UTF-8 included", async () => {
    const toks = [loadBuiltinEncoding("gpt2"), await trained()];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        for (const tok of toks) assert.deepEqual(tok.decodeBytes(tok.encodeBytes(bytes)), bytes);
      }),
      { numRuns: 300 },
    );
  });

  test("decode(encode(s)) == s for arbitrary Unicode text, and for the corpora", async () => {
    const toks = [loadBuiltinEncoding("cl100k_base"), await trained()];
    fc.assert(
      fc.property(
        fc.string({ unit: "binary", maxLength: 100 }).filter((s) => s.isWellFormed()),
        (s) => {
          for (const tok of toks) assert.equal(tok.decode(tok.encode(s)), s);
        },
      ),
      { numRuns: 300 },
    );
    const tok = await trained();
    assert.equal(tok.decode(tok.encodeOrdinary(shakespeare)), shakespeare);
  });

  test("streaming decode never splits a multi-byte character", () => {
    const tok = loadBuiltinEncoding("gpt2");
    const text = "caf\u00e9 \u6771\u4eac \ud83c\udf89 end";
    const ids = tok.encodeOrdinary(text);
    const stream = tok.streamDecoder();
    let out = "";
    for (const id of ids) {
      const piece = stream.push([id]);
      assert.ok(!piece.includes("\ufffd"), `a chunk split a character: ${JSON.stringify(piece)}`);
      out += piece;
    }
    assert.equal(out + stream.flush(), text);
  });
});

describe("special tokens", () => {
  test("never arise from ordinary text unless allowed", async () => {
    const tok = await trained();
    const text = "<|user_start|>hi<|user_end|><|assistant_start|>";
    const ordinary = tok.encode(text);
    for (const name of SPECIAL_TOKENS) assert.ok(!ordinary.includes(tok.specialId(name)));
    assert.equal(tok.decode(ordinary), text);
    const allowed = tok.encode(text, { allowedSpecial: "all" });
    assert.equal(allowed[0], tok.specialId("<|user_start|>"));
    assert.equal(allowed.at(-1), tok.specialId("<|assistant_start|>"));
    assert.equal(tok.decode(allowed), text);
    const some = tok.encode(text, { allowedSpecial: new Set(["<|user_end|>"]) });
    assert.ok(some.includes(tok.specialId("<|user_end|>")) && !some.includes(tok.specialId("<|user_start|>")));
  });
});

/** Naive BPE training: recount every pair after every merge (minbpe's loop). */
function naiveMerges(counts: ChunkCounts, merges: number): [number, number][] {
  let words = [...counts].map(([c, n]) => ({ syms: [...Buffer.from(c, "utf8")], n }));
  const tokens = Array.from({ length: 256 }, (_, b) => String.fromCharCode(b));
  const out: [number, number][] = [];
  const banned = new Set<string>();
  while (out.length < merges) {
    const pc = new Map<string, number>();
    for (const w of words)
      for (let i = 0; i + 1 < w.syms.length; i++)
        pc.set(`${w.syms[i]},${w.syms[i + 1]}`, (pc.get(`${w.syms[i]},${w.syms[i + 1]}`) ?? 0) + w.n);
    let best: [number, number] | null = null;
    let bestCount = 0;
    for (const [k, n] of pc) {
      if (banned.has(k)) continue;
      const [a, b] = k.split(",").map(Number) as [number, number];
      if (n > bestCount || (n === bestCount && best && a * 2 ** 22 + b < best[0] * 2 ** 22 + best[1])) {
        best = [a, b];
        bestCount = n;
      }
    }
    if (!best) break;
    const bytes = (tokens[best[0]] as string) + (tokens[best[1]] as string);
    if (tokens.includes(bytes)) {
      banned.add(`${best[0]},${best[1]}`);
      continue;
    }
    const id = tokens.length;
    tokens.push(bytes);
    out.push(best);
    const [a, b] = best;
    words = words.map((w) => {
      const syms: number[] = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (w.syms[i] === a && w.syms[i + 1] === b) {
          syms.push(id);
          i++;
        } else syms.push(w.syms[i] as number);
      }
      return { syms, n: w.n };
    });
  }
  return out;
}

describe("training", () => {
  test("incremental pair counting learns the same merges as recounting from scratch", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "t.txt"), shakespeare.slice(0, 30_000));
    const { counts } = await countChunks([join(dir, "t.txt")], PATTERN_SOURCES.gpt2, 1);
    const tok = trainBpe(counts, {
      vocabSize: 256 + 120 + SPECIAL_TOKENS.length,
      pattern: PATTERN_SOURCES.gpt2,
      specialTokens: SPECIAL_TOKENS,
    });
    assert.deepEqual(tok.merges, naiveMerges(counts, 120));
  });

  test("worker threads count the same chunks as one thread", async () => {
    const dir = tmp();
    const big = join(dir, "big.txt");
    writeFileSync(big, sotu.repeat(7)); // above the per-worker threshold
    const one = await countChunks([big], PATTERN_SOURCES.gpt4, 1);
    const two = await countChunks([big], PATTERN_SOURCES.gpt4, 2);
    assert.equal(two.bytes, one.bytes);
    assert.deepEqual(new Map([...two.counts].sort()), new Map([...one.counts].sort()));
  });

  test("the vocabulary has the requested size, bytes first, special tokens last", async () => {
    const tok = await trained();
    assert.equal(tok.vocabSize, 2048);
    assert.equal(tok.tokenBytes(65), "A");
    assert.equal(tok.specialId("<|endoftext|>"), 2048 - SPECIAL_TOKENS.length);
  });
});

describe("formats", () => {
  test("a trained tokenizer loads in @huggingface/tokenizers and gives the same ids", async () => {
    const tok = await trained();
    const hf = new HfTokenizer(JSON.parse(toTokenizerJson(tok)), {});
    for (const text of [shakespeare.slice(0, 100_000), sotu.slice(-100_000), "naïve café 東京 🎉 It's"]) {
      const ours = tok.encodeOrdinary(text);
      assert.equal(firstDifference(ours, hf.encode(text, { add_special_tokens: false }).ids), -1);
    }
  });

  test("gpt4-digits: one chunk per digit, and the same ids in @huggingface/tokenizers", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "sotu.txt"), sotu.slice(0, 1_000_000));
    const { tokenizer: tok } = await trainTokenizer({
      files: [join(dir, "sotu.txt")],
      vocabSize: 600,
      pattern: "gpt4-digits",
      threads: 1,
    });
    const ids = tok.encodeOrdinary("In 1999 we spent $2,024.");
    const pieces = ids.map((id) => tok.decode([id]));
    for (const digit of ["1", "9", "2", "0", "4"])
      assert.ok(pieces.includes(digit), `"${digit}" alone in ${JSON.stringify(pieces)}`);
    assert.ok(!pieces.some((p) => /\d\d/.test(p)), `no token holds two digits: ${JSON.stringify(pieces)}`);
    const hf = new HfTokenizer(JSON.parse(toTokenizerJson(tok)), {});
    const text = sotu.slice(-50_000);
    assert.equal(firstDifference(tok.encodeOrdinary(text), hf.encode(text, { add_special_tokens: false }).ids), -1);
  });

  test("weighted sources: a file counted three times trains the tokenizer its text repeated three times would", async () => {
    const dir = tmp();
    const [a, b] = [`${sotu.slice(0, 200_000)}\n`, `${shakespeare.slice(0, 60_000)}\n`];
    writeFileSync(join(dir, "a.txt"), a);
    writeFileSync(join(dir, "b.txt"), b);
    writeFileSync(join(dir, "ab3.txt"), a + b.repeat(3));
    const options = { vocabSize: 400, pattern: "gpt4", threads: 1 };
    const weighted = await trainTokenizer({
      ...options,
      files: [join(dir, "a.txt"), join(dir, "b.txt")],
      weights: [1, 3],
    });
    const repeated = await trainTokenizer({ ...options, files: [join(dir, "ab3.txt")] });
    const plain = await trainTokenizer({ ...options, files: [join(dir, "a.txt"), join(dir, "b.txt")] });
    assert.deepEqual(toTokenizerJson(weighted.tokenizer), toTokenizerJson(repeated.tokenizer));
    assert.notDeepEqual(toTokenizerJson(weighted.tokenizer), toTokenizerJson(plain.tokenizer));
    await assert.rejects(
      trainTokenizer({ ...options, files: [join(dir, "a.txt")], weights: [0] }),
      /one whole number >= 1 per file/,
    );
  });

  test("GPT-2 exported to tokenizer.json (merges recovered from ranks) matches in @huggingface/tokenizers", () => {
    const tok = loadBuiltinEncoding("gpt2");
    const hf = new HfTokenizer(JSON.parse(toTokenizerJson(tok)), {});
    const text = shakespeare.slice(0, 50_000);
    assert.equal(firstDifference(tok.encodeOrdinary(text), hf.encode(text, { add_special_tokens: false }).ids), -1);
  });

  test("tokenizer.json and .tiktoken files round trip", async () => {
    const tok = await trained();
    const dir = tmp();
    saveTokenizer(dir, tok);
    const loaded = loadBpeTokenizer(dir);
    const text = sotu.slice(0, 50_000);
    assert.deepEqual(loaded.encodeOrdinary(text), tok.encodeOrdinary(text));
    assert.deepEqual(loaded.merges, tok.merges);
    assert.deepEqual([...loaded.specialTokens], [...tok.specialTokens]);
    const ranks = parseTiktokenFile(readFileSync(join(dir, "tokenizer.tiktoken"), "utf8"), "tokenizer.tiktoken");
    assert.deepEqual(
      new Tokenizer({ pattern: tok.pattern, ranks, specialTokens: tok.specialTokens }).encodeOrdinary(text),
      tok.encodeOrdinary(text),
    );
    assert.equal(toTiktokenFile(ranks), readFileSync(join(dir, "tokenizer.tiktoken"), "utf8"));
  });
});

describe("token shards", () => {
  test("tokenize splits documents deterministically into uint16 shards that pretrain reads", async () => {
    const dir = tmp();
    saveTokenizer(join(dir, "tok"), await trained());
    const docs = join(dir, "docs.jsonl");
    const sentences = sotu.split(/(?<=\.) /).slice(0, 400);
    writeFileSync(docs, sentences.map((text) => JSON.stringify({ text })).join("\n"));
    const meta = await tokenizeCorpus({
      tokenizer: join(dir, "tok"),
      data: [docs],
      out: join(dir, "shards"),
      valFraction: 0.1,
      threads: 2,
    });
    const again = await tokenizeCorpus({
      tokenizer: join(dir, "tok"),
      data: [docs],
      out: join(dir, "shards2"),
      valFraction: 0.1,
      threads: 1,
    });
    assert.deepEqual(again, meta);
    assert.equal(meta.token_bytes, 2);
    assert.equal(meta.documents.train + meta.documents.val, 400);
    assert.ok(meta.documents.val > 10 && meta.documents.val < 80);
    const train = readShard(join(dir, "shards", "train_0000.bin"));
    assert.ok(train instanceof Uint16Array);
    assert.equal(train.length, meta.tokens.train);
    const tok = await trained();
    assert.equal(train[0], tok.specialId("<|endoftext|>"));
    assert.deepEqual(
      readFileSync(join(dir, "shards", "train_0000.bin")),
      readFileSync(join(dir, "shards2", "train_0000.bin")),
    );

    const config = parsePretrainConfig(
      {
        data: join(dir, "shards"),
        model: { n_layer: 1, n_head: 2, n_embd: 16, block_size: 32 },
        train: { batch_size: 2, max_iters: 3, eval_interval: 3, eval_iters: 1, precision: "fp32" },
        sample: { count: 1, max_tokens: 5 },
      },
      "test",
    );
    const r = await runPretrain({ config, out: join(dir, "run"), resume: false, quiet: true, threads: 1 });
    assert.equal(r.steps, 3);
    assert.equal(JSON.parse(readFileSync(join(r.modelDir, "config.json"), "utf8")).vocab_size, 2048);
    assert.deepEqual(
      loadBpeTokenizer(r.modelDir).encodeOrdinary("Fellow citizens"),
      tok.encodeOrdinary("Fellow citizens"),
    );
  });
});

describe("tokenize splits too few documents by position", () => {
  test("one text file over many shards: train then val, every token once, in order", async () => {
    const dir = tmp();
    const text = sotu.slice(0, 60_000);
    writeFileSync(join(dir, "one.txt"), text);
    const meta = await tokenizeCorpus({
      tokenizer: "gpt2",
      data: [join(dir, "one.txt")],
      out: join(dir, "shards"),
      valFraction: 0.1,
      threads: 1,
      shardTokens: 1000,
    });
    assert.equal(meta.split, "position");
    assert.ok(meta.shards.train.length > 5 && meta.shards.val.length >= 2, JSON.stringify(meta.shards));
    const read = (names: string[]) => names.flatMap((n) => [...readShard(join(dir, "shards", n))]);
    const train = read(meta.shards.train);
    const val = read(meta.shards.val);
    const gpt2 = loadBpeTokenizer("gpt2");
    const all = [gpt2.specialId("<|endoftext|>"), ...gpt2.encodeOrdinary(text)];
    assert.deepEqual([...train, ...val], all);
    assert.equal(train.length, Math.floor(all.length * 0.9));
    assert.deepEqual(meta.tokens, { train: train.length, val: val.length });
  });
});

describe("bad input", () => {
  test("a binary file, a tiny vocabulary, an unknown pattern, a corrupt tokenizer.json", async () => {
    const dir = tmp();
    const bin = join(dir, "blob.bin");
    writeFileSync(bin, Buffer.from([1, 2, 0, 3, 0, 0, 7]));
    await assert.rejects(
      trainTokenizer({ files: [bin], vocabSize: 300, pattern: "gpt2", threads: 1 }),
      /blob\.bin: looks like a binary file/,
    );
    await assert.rejects(
      trainTokenizer({ files: [bin], vocabSize: 260, pattern: "gpt2", threads: 1 }),
      /--vocab-size 260 is too small: it needs at least 256 bytes \+ 12 special tokens = 268/,
    );
    await assert.rejects(
      trainTokenizer({ files: [bin], vocabSize: 300, pattern: "gpt5", threads: 1 }),
      /unknown pattern "gpt5" \(known: gpt2, gpt4, gpt4-digits\)/,
    );
    assert.throws(() => parseTokenizerJson("{", "t/tokenizer.json"), /t\/tokenizer\.json: invalid JSON/);
    assert.throws(
      () => parseTokenizerJson(JSON.stringify({ model: { type: "WordPiece", vocab: {} } }), "t/tokenizer.json"),
      /t\/tokenizer\.json: not a byte-level BPE tokenizer\.json: model\.type/,
    );
    assert.throws(
      () =>
        parseTokenizerJson(
          JSON.stringify({ model: { type: "BPE", vocab: { a: 0 } }, pre_tokenizer: { type: "ByteLevel" } }),
          "t/tokenizer.json",
        ),
      /t\/tokenizer\.json: the vocabulary has no token for byte 0/,
    );
  });
});
