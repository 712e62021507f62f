// Post-training: data formats and their errors, assistant-only targets, and what each
// fine-tuning mode changes (full, freeze, LoRA, LoRA-FA), PEFT files and merging.

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { calculate } from "../src/agent/calculator.ts";
import { clockTool, readClock } from "../src/agent/clock.ts";
import { runTool } from "../src/agent/tool.ts";
import { renderChat } from "../src/infer/chat.ts";
import { loadModel } from "../src/model/directory.ts";
import { mergeAdapter } from "../src/model/lora.ts";
import type { Model } from "../src/model/model.ts";
import { loadWithAdapter } from "../src/model/peft.ts";
import { readSafetensors } from "../src/model/safetensors.ts";
import { Rng } from "../src/nn/random.ts";
import { answerChatTasks, evaluateChatTasks, type TaskAnswer } from "../src/pipeline/chat-eval.ts";
import { type ChatCodec, loadChatCodec } from "../src/pipeline/codec.ts";
import { runSftCommand } from "../src/pipeline/sft.ts";
import { type Conversation, readConversations } from "../src/posttrain/data.ts";
import { encodeConversation } from "../src/posttrain/encode.ts";
import { lengthGroupedBatches, prepareTrainable, runSft } from "../src/posttrain/sft.ts";
import { parseMix, type SynthConversation, synthesize, synthRecord } from "../src/posttrain/synth.ts";
import { noGrad } from "../src/tensor/index.ts";
import { clockExchange, sftDefaults, tinyChatModel, toolCallingModel } from "./chat-model.ts";
import { relError } from "./helpers.ts";
import { tempDir } from "./tmp.ts";

function tmp(): string {
  return tempDir("post");
}

const chats = Array.from({ length: 24 }, (_, i) =>
  JSON.stringify({
    messages: [
      { role: "system", content: "Be brief." },
      { role: "user", content: `Hello there ${i % 3}` },
      { role: "assistant", content: i % 2 ? "I am fine, thank you." : "How are you today?" },
    ],
  }),
);

function chatFile(): string {
  const path = join(tmp(), "chats.jsonl");
  writeFileSync(path, `${chats.join("\n")}\n`);
  return path;
}

/** The test conversations as training sequences, rendered with the model's template. */
function encodedChats(codec: ChatCodec) {
  const render = (m: Conversation["messages"], g: boolean) => codec.encode(renderChat(codec.chatTemplate, m, g), true);
  return readConversations([chatFile()]).map((c) => encodeConversation(c, render, 96));
}

function snapshot(model: Model): Map<string, Float32Array> {
  return new Map([...model.params].map(([n, t]) => [n, Float32Array.from(t.data)]));
}

function logits(model: Model): Float32Array {
  const idx = Int32Array.from({ length: 20 }, (_, i) => (i * 13) % 300);
  return noGrad(() => Float32Array.from(model.forward(idx, 2, 10).data));
}

describe("conversation data", () => {
  test("OpenAI chat, ShareGPT and Alpaca lines read into one shape", () => {
    const path = join(tmp(), "mixed.jsonl");
    writeFileSync(
      path,
      [
        JSON.stringify({
          messages: [
            { role: "user", content: "a" },
            { role: "assistant", content: "b" },
          ],
        }),
        JSON.stringify({
          conversations: [
            { from: "system", value: "s" },
            { from: "human", value: "a" },
            { from: "gpt", value: "b" },
          ],
        }),
        JSON.stringify({ instruction: "Translate", input: "hola", output: "hello" }),
      ].join("\n"),
    );
    const cs = readConversations([path]);
    assert.deepEqual(
      cs[1]?.messages.map((m) => m.role),
      ["system", "user", "assistant"],
    );
    assert.deepEqual(cs[2]?.messages, [
      { role: "user", content: "Translate\n\nhola" },
      { role: "assistant", content: "hello" },
    ]);
  });

  for (const [what, line, pattern] of [
    ["a malformed JSONL line", "{oops", /bad\.jsonl:2: malformed JSON/],
    [
      "an unknown role",
      JSON.stringify({ messages: [{ role: "robot", content: "x" }] }),
      /bad\.jsonl:2: messages\[0\]: unknown role "robot"/,
    ],
    [
      "an empty assistant turn",
      JSON.stringify({
        messages: [
          { role: "user", content: "x" },
          { role: "assistant", content: " " },
        ],
      }),
      /bad\.jsonl:2: message 1 is an empty assistant turn/,
    ],
    [
      "a tool call whose arguments are not JSON",
      JSON.stringify({
        messages: [
          { role: "user", content: "x" },
          { role: "assistant", content: null, tool_calls: [{ id: "a", function: { name: "clock", arguments: "{" } }] },
        ],
      }),
      /bad\.jsonl:2: messages\[1\]\.tool_calls\[0\]: function\.arguments is not valid JSON/,
    ],
    [
      "a tool turn without its call id",
      JSON.stringify({
        messages: [
          { role: "tool", content: "{}" },
          { role: "assistant", content: "ok" },
        ],
      }),
      /bad\.jsonl:2: messages\[0\]: a tool message needs its tool_call_id/,
    ],
  ] as const)
    test(`${what} is an error with file and line`, () => {
      const path = join(tmp(), "bad.jsonl");
      writeFileSync(path, `${chats[0]}\n${line}\n`);
      assert.throws(() => readConversations([path]), pattern);
    });

  test("OpenAI's fine-tuning format with tools: calls, results, and the tools rendered in the prompt", async () => {
    const path = join(tmp(), "tools.jsonl");
    const clock = { name: "clock", description: "the time", parameters: { type: "object" } };
    const line = clockExchange(clock, "c1", '{"timezone":"UTC"}');
    writeFileSync(path, `${JSON.stringify(line)}\n`);
    const [c] = readConversations([path]);
    assert.deepEqual(c?.tools, [{ name: "clock", description: "the time", parameters: { type: "object" } }]);
    assert.deepEqual(c?.messages[1], {
      role: "assistant",
      content: "",
      toolCalls: [{ id: "c1", name: "clock", arguments: { timezone: "UTC" } }],
    });
    assert.deepEqual(c?.messages[2], { role: "tool", content: '{"weekday":"Saturday"}', toolCallId: "c1" });
    const dir = await tinyChatModel(0, 512);
    const codec = loadChatCodec(dir);
    const render = (m: Conversation["messages"], g: boolean) =>
      codec.encode(renderChat(codec.chatTemplate, m, g, c?.tools ?? []), true);
    const e = encodeConversation(c as Conversation, render, 512);
    const prompt = codec.decodeRaw(e.tokens);
    assert.match(prompt, /You can call these tools: \[\{"type": "function", "function": \{"name": "clock"/);
    const learned = codec.decodeRaw(e.targets.filter((t) => t >= 0));
    assert.equal(
      learned,
      '<|tool_call_start|>{"name": "clock", "arguments": {"timezone": "UTC"}}<|tool_call_end|><|assistant_end|>It is Saturday.<|assistant_end|>',
      "the model learns the call and the answer, not the tool's result",
    );
  });

  test("targets cover only the assistant's words and its end of turn; too long is an error", async () => {
    const dir = await tinyChatModel();
    const codec = loadChatCodec(dir);
    const render = (m: Conversation["messages"], g: boolean) =>
      codec.encode(renderChat(codec.chatTemplate, m, g), true);
    const c = readConversations([chatFile()])[1] as Conversation;
    const e = encodeConversation(c, render, 96);
    const learned = e.targets.filter((t) => t >= 0);
    const tok = codec.decode(learned);
    assert.equal(tok, "I am fine, thank you.");
    assert.equal(
      learned.at(-1),
      [...codec.stopIds].find((id) => codec.encode("<|assistant_end|>", true)[0] === id),
    );
    assert.throws(
      () => encodeConversation(c, render, 10),
      /chats\.jsonl:2: the conversation is \d+ tokens, longer than the context of 10/,
    );
  });
});

describe("fine-tuning modes", () => {
  test("length-grouped batches: every conversation once per epoch, little padding", () => {
    const lengths = Array.from({ length: 1000 }, (_, i) => 5 + ((i * 7919) % 120));
    const data = lengths.map((n) => ({ tokens: new Array<number>(n).fill(1), targets: new Array<number>(n).fill(1) }));
    const batches = lengthGroupedBatches(data, 16, new Rng(1));
    assert.deepEqual(
      batches.flat().sort((a, b) => a - b),
      lengths.map((_, i) => i),
    );
    assert.equal(batches.length, Math.ceil(1000 / 16));
    const slots = batches.reduce((n, b) => n + b.length * Math.max(...b.map((i) => lengths[i] as number)), 0);
    const tokens = lengths.reduce((a, b) => a + b, 0);
    assert.ok(tokens / slots > 0.9, `padding efficiency ${tokens / slots}`);
    assert.notDeepEqual(batches, lengthGroupedBatches(data, 16, new Rng(2)), "the seed shuffles");
  });

  test("freeze changes only the top blocks' tensors", async () => {
    const base = await tinyChatModel();
    const before = snapshot(loadModel(base));
    const out = join(tmp(), "freeze");
    await runSftCommand({ ...sftDefaults, model: base, data: [chatFile()], mode: "freeze", out });
    const after = loadModel(out);
    for (const [name, t] of after.params) {
      const changed = !t.data.every((v, i) => v === before.get(name)?.[i]);
      assert.equal(changed, name.startsWith("transformer.h.0."), `${name} changed: ${changed}`);
    }
  });

  test("LoRA and LoRA-FA: PEFT files, base untouched, merged logits equal base + adapter", async () => {
    const base = await tinyChatModel();
    const before = snapshot(loadModel(base));
    for (const fa of [false, true]) {
      const out = join(tmp(), fa ? "lora-fa" : "lora");
      await runSftCommand({ ...sftDefaults, model: base, data: [chatFile()], mode: "lora", loraFa: fa, out });
      const config = JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8"));
      assert.equal(config.peft_type, "LORA");
      assert.equal(config.r, 4);
      const { tensors } = readSafetensors(join(out, "adapter_model.safetensors"));
      const a = tensors.get("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight");
      const b = tensors.get("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight");
      assert.deepEqual(a?.shape, [4, 32]);
      assert.deepEqual(b?.shape, [96, 4]);
      assert.ok(
        b?.data.some((v) => v !== 0),
        "B trained",
      );
      const withAdapter = loadWithAdapter(out);
      for (const [name, t] of withAdapter.params) assert.deepEqual(t.data, before.get(name), `${name} untouched`);
      const merged = loadWithAdapter(out);
      for (const [name, adapter] of merged.adapters)
        mergeAdapter(merged.params.get(name) as NonNullable<ReturnType<typeof merged.params.get>>, "in-out", adapter);
      merged.adapters.clear();
      const err = relError(logits(merged), logits(withAdapter));
      assert.ok(err < 1e-5, `merged logits differ by ${err}`);
    }
  });

  test("LoRA-FA trains only B: A keeps its initialisation", async () => {
    const dir = await tinyChatModel();
    const model = loadModel(dir);
    const options = { ...sftDefaults, mode: "lora" as const, warmupIters: 2, weightDecay: 0, gradClip: 1 };
    const lora = { r: 4, alpha: 8, dropout: 0, targets: ["c_attn"], fa: true };
    const trained = prepareTrainable(model, { ...options, lora });
    assert.deepEqual(
      trained.map(([n]) => n),
      ["transformer.h.0.attn.c_attn.lora_B"],
    );
    const adapter = model.adapters.get("transformer.h.0.attn.c_attn.weight");
    const a0 = Float32Array.from(adapter?.A.data ?? []);
    const codec = loadChatCodec(dir);
    const data = encodedChats(codec);
    model.adapters.clear(); // runSft prepares again, with the same seed: the same A
    runSft(model, data, { ...options, lora });
    const after = model.adapters.get("transformer.h.0.attn.c_attn.weight");
    assert.deepEqual(after?.A.data, a0);
    assert.ok(after?.B.data.some((v) => v !== 0));
  });

  test("full fine-tuning lowers the loss on its data", async () => {
    const dir = await tinyChatModel();
    const codec = loadChatCodec(dir);
    const data = encodedChats(codec);
    const losses: number[] = [];
    const lora = { r: 4, alpha: 8, dropout: 0, targets: [], fa: false };
    runSft(
      loadModel(dir),
      data,
      { ...sftDefaults, mode: "full", epochs: 8, lora, warmupIters: 2, weightDecay: 0, gradClip: 1 },
      (s) => losses.push(s.loss),
    );
    assert.ok((losses.at(-1) as number) < (losses[0] as number) * 0.5, `loss ${losses[0]} -> ${losses.at(-1)}`);
  });

  test("gradient accumulation over padded micro-batches equals one batch twice the size", async () => {
    const dir = await tinyChatModel();
    const codec = loadChatCodec(dir);
    const data = encodedChats(codec);
    const lora = { r: 4, alpha: 8, dropout: 0, targets: [], fa: false };
    const o = { ...sftDefaults, mode: "full" as const, epochs: 2, lora, warmupIters: 1, weightDecay: 0.1, gradClip: 1 };
    const train = (batchSize: number, gradAccum: number, maxSteps?: number) => {
      const model = loadModel(dir);
      const losses: number[] = [];
      runSft(model, data, { ...o, batchSize, gradAccum, maxSteps }, (s) => losses.push(s.loss));
      return { losses, params: model.params };
    };
    const [accum, whole] = [train(4, 2), train(8, 1)];
    assert.equal(accum.losses.length, whole.losses.length);
    accum.losses.forEach((l, i) => {
      const w = whole.losses[i] as number;
      assert.ok(Math.abs(l - w) < 1e-4 * w, `step ${i}: ${l} vs ${w}`);
    });
    // One step's update: the same (Adam's later steps amplify float rounding in tiny gradients).
    // The key bias is left out: its gradient is zero in exact arithmetic (softmax ignores a
    // shift every key shares), so Adam's first step turns its rounding noise into +-lr.
    const withoutKeyBias = (name: string, data: Float32Array) => {
      if (!name.endsWith("attn.c_attn.bias")) return data;
      const C = data.length / 3;
      return Float32Array.of(...data.subarray(0, C), ...data.subarray(2 * C));
    };
    const [a1, w1] = [train(4, 2, 1), train(8, 1, 1)];
    for (const [name, t] of a1.params) {
      const expected = w1.params.get(name)?.data as Float32Array;
      const err = relError(withoutKeyBias(name, t.data), withoutKeyBias(name, expected));
      assert.ok(err < 1e-4, `${name}: relative difference ${err.toExponential(2)}`);
    }
  });
});

describe("synthetic tasks and their evaluation", () => {
  const passages = Array.from(
    { length: 40 },
    (_, i) => `The nation stands ready for peace and work in year ${i} today`,
  );
  test("synth is deterministic and its held-out values differ from training's", () => {
    const a = synthesize(300, 5, passages);
    assert.deepEqual(a, synthesize(300, 5, passages));
    const key = (c: { messages: { content: string }[] }) => c.messages.map((m) => m.content).join("|");
    const train = new Set(a.train.map(key));
    assert.ok(a.heldout.every((c) => !train.has(key(c))));
    assert.deepEqual([...new Set(a.heldout.map((c) => c.meta.task))].sort(), [
      "arithmetic",
      "date",
      "in-context",
      "tool-date",
      "tool-sum",
      "tool-weekday",
      "weekday",
    ]);
  });

  test("synth --mix weights the training tasks; the held-out split keeps the default mix", () => {
    const count = (cs: { meta: { task: string } }[]) => {
      const n: Record<string, number> = {};
      for (const c of cs) n[c.meta.task] = (n[c.meta.task] ?? 0) + 1;
      return n;
    };
    // The default weights, spelled out, reproduce the default output exactly.
    assert.deepEqual(
      synthesize(200, 5, passages, { mix: parseMix("identity=1,weekday=2,date=1") }),
      synthesize(200, 5, passages),
    );
    const mix = parseMix("arithmetic=18, weekday=0, tool-date=0, tool-sum=0");
    const mixed = synthesize(260, 5, passages, { mix, heldout: 96 });
    assert.deepEqual(count(mixed.train), {
      identity: 10,
      date: 10,
      arithmetic: 180,
      "in-context": 30,
      "tool-weekday": 30,
    });
    assert.deepEqual(count(mixed.heldout), {
      weekday: 12,
      date: 6,
      arithmetic: 18,
      "in-context": 18,
      "tool-weekday": 18,
      "tool-date": 6,
      "tool-sum": 12,
    });
    assert.throws(() => parseMix("algebra=2"), /unknown task "algebra" \(tasks: identity, weekday/);
    assert.throws(() => parseMix("arithmetic=1.5"), /weight of arithmetic must be a whole number/);
    assert.throws(() => parseMix("arithmetic"), /"arithmetic" is not task=weight/);
    assert.throws(
      () =>
        synthesize(10, 1, passages, {
          mix: parseMix("identity=0,weekday=0,date=0,arithmetic=0,in-context=0,tool-weekday=0,tool-date=0,tool-sum=0"),
        }),
      /at least one task/,
    );
    assert.throws(() => synthesize(10, 1, passages, { heldout: 0 }), /--heldout must be a positive integer, got 0/);
  });

  test("tool tasks: the real tools' results, held-out layouts unseen in training, JSONL readable", async () => {
    const { train, heldout } = synthesize(600, 7, passages, { heldout: 300 });
    const tools = (cs: SynthConversation[], task: string) => cs.filter((c) => c.meta.task === task);
    for (const c of [...tools(train, "tool-weekday"), ...tools(heldout, "tool-date")]) {
      const clock = c.meta.clock;
      assert.ok(clock, "the moment the clock reads");
      const call = c.messages.find((m) => m.toolCalls)?.toolCalls?.[0];
      assert.equal(call?.name, "clock");
      // What the clock tool itself answers to the call's arguments at that moment.
      const read = await runTool(
        clockTool(() => new Date(clock.now), clock.timezone),
        call?.arguments ?? {},
      );
      assert.equal(c.messages.find((m) => m.role === "tool")?.content, read.content);
      const reading = JSON.parse(read.content) as ReturnType<typeof readClock>;
      const answer = c.messages.at(-1)?.content ?? "";
      const [y, m, d] = reading.date.split("-");
      const expected = [`It is ${reading.weekday}.`, `It is ${reading.date}.`, `今天是${y}年${m}月${d}日。`];
      assert.ok(expected.includes(answer) || answer === `今天是${reading.weekday}。`, answer);
      // A Chinese question asks for the weekday in Chinese.
      if (/[\u4e00-\u9fff]/.test(answer)) assert.deepEqual(call?.arguments, { language: "zh" });
    }
    for (const c of tools(heldout, "tool-sum")) {
      const call = c.messages.find((m) => m.toolCalls)?.toolCalls?.[0];
      assert.equal(c.messages.at(-1)?.content, calculate(String(call?.arguments.expression)));
    }
    // Held-out layouts: no phrasing, system prompt or time zone of a held-out tool task occurs in training.
    const layout = (cs: SynthConversation[]) => {
      const seen = new Set<string>();
      for (const c of cs.filter((x) => x.meta.task.startsWith("tool-"))) {
        for (const m of c.messages) if (m.role === "user" || m.role === "system") seen.add(m.content);
        if (c.meta.clock) seen.add(c.meta.clock.timezone);
      }
      return seen;
    };
    const trained = layout(train);
    const unseen = [...layout(heldout)];
    assert.ok(unseen.length > 20);
    assert.deepEqual(
      unseen.filter((x) => trained.has(x) && !/\d/.test(x)),
      [],
    );
    // Written as OpenAI's fine-tuning format, read back with their tools.
    const dir = tempDir("synth");
    writeFileSync(join(dir, "s.jsonl"), `${heldout.map((c) => JSON.stringify(synthRecord(c))).join("\n")}\n`);
    const read = readConversations([join(dir, "s.jsonl")]);
    assert.deepEqual(
      read.map((c) => c.tools?.map((t) => t.name) ?? []),
      heldout.map((c) => c.tools?.map((t) => t.name) ?? []),
    );
    assert.deepEqual(
      read.map((c) => c.messages),
      heldout.map((c) => c.messages),
    );
  });

  test("tool tasks are evaluated through the agent loop, with the clock at the task's moment", async () => {
    const clock = clockTool();
    const spec = { name: "clock", description: clock.description, parameters: clock.parameters };
    const moment = "2024-03-09T12:00:00.000Z";
    const dir = await toolCallingModel(spec, JSON.stringify(readClock(new Date(moment), "Asia/Tokyo")));
    const task: Conversation = {
      source: "t.jsonl:1",
      tools: [spec],
      messages: [
        { role: "user", content: "What day is it?" },
        { role: "assistant", content: "", toolCalls: [{ id: "call_1", name: "clock", arguments: {} }] },
        { role: "tool", content: "(the clock's reading)", toolCallId: "call_1" },
        { role: "assistant", content: "It is Saturday." },
      ],
      meta: { task: "tool-weekday", clock: { now: moment, timezone: "Asia/Tokyo" } },
    };
    const [model, codec] = [loadModel(dir), loadChatCodec(dir)];
    const [withTools] = await answerChatTasks(model, codec, [task]);
    assert.deepEqual([withTools?.calls, withTools?.got, withTools?.correct], [["clock"], "It is Saturday.", true]);
    const [without] = await answerChatTasks(model, codec, [task], { withoutTools: true });
    assert.equal(without?.calls, undefined);
    assert.equal(without?.correct, false, "with no tool listed it cannot read the clock");
    const unknown = { ...task, tools: [{ ...spec, name: "weather" }] };
    await assert.rejects(
      answerChatTasks(model, codec, [unknown]),
      /t\.jsonl:1: unknown tool "weather".*built-in tools only/,
    );
  });

  test("task evaluation scores exact matches per task", async () => {
    const dir = await tinyChatModel();
    const [model, codec] = [loadModel(dir), loadChatCodec(dir)];
    const cs = readConversations([chatFile()])
      .slice(0, 4)
      .map((c, i) => ({ ...c, meta: { task: i < 2 ? "x" : "y" } }));
    const answers = await answerChatTasks(model, codec, cs, { maxTokens: 4 });
    assert.deepEqual(
      answers.map((a) => [a.task, a.question]),
      cs.map((c) => [c.meta.task, c.messages.findLast((m) => m.role === "user")?.content]),
    );
    // Make the references of conversations 0 and 2 what the model answers (greedy, so
    // deterministic) and those of 1 and 3 something else: each task is then half right.
    const rigged = cs.map((c, i) => {
      const got = (answers[i] as TaskAnswer).got;
      const last = c.messages.length - 1;
      const content = i % 2 === 0 ? got : `${got} (not this)`;
      return { ...c, messages: c.messages.map((m, j) => (j === last ? { ...m, content } : m)) };
    });
    const scores = await evaluateChatTasks(model, codec, rigged, { maxTokens: 4 });
    assert.deepEqual(
      scores.map((s) => [s.task, s.correct, s.total]),
      [
        ["x", 1, 2],
        ["y", 1, 2],
        ["overall", 2, 4],
      ],
    );
  });
});
