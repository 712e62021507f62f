// Built-in tools: the calculator computes what it should and refuses hostile expressions
// with a clear message; the clock reads an injected moment in any IANA zone; bad
// arguments, failures and hangs become error results, never exceptions. Tool calls in the
// chat template, the parser, and the agent loop.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { z } from "zod";
import { calculate, calculatorTool } from "../src/agent/calculator.ts";
import { clockTool, readClock } from "../src/agent/clock.ts";
import { agentTurn, parseToolCalls } from "../src/agent/loop.ts";
import { defineTool, openAiTools, runTool, ToolError } from "../src/agent/tool.ts";
import { isChinese, todayLine } from "../src/cli/chat.ts";
import { type ChatMessage, PLAIN_CHAT_TEMPLATE, renderChat } from "../src/infer/chat.ts";
import { Engine } from "../src/infer/engine.ts";
import { loadModel } from "../src/model/directory.ts";
import { loadChatCodec } from "../src/pipeline/codec.ts";
import { CHAT_TEMPLATE } from "../src/tokenizer/huggingface.ts";
import { tinyChatModel } from "./chat-model.ts";
import { HOSTILE_EXPRESSIONS } from "./fixtures/hostile-expressions.ts";

describe("calculator", () => {
  test("arithmetic and functions", () => {
    const cases: [string, string][] = [
      ["2+2", "4"],
      ["12 * (3 + 4)", "84"],
      ["2^10", "1024"],
      ["17 % 5", "2"],
      ["sqrt(16)", "4"],
      ["sin(pi / 2)", "1"],
      ["round(2.5) + floor(-1.5)", "1"],
      ["mean([2, 4, 9])", "5"],
      ["max(3, 7, 5) - min(3, 7, 5)", "4"],
      ["5!", "120"],
      ["combinations(5, 2)", "10"],
      ["0.1 + 0.2", "0.3"],
      ["123456789 * 987654321", "1.2193263111264e+17"],
      ["778 * 845", "657410"],
      ["99999999 * 999999", "99999899000001"],
      ["0.00001234", "0.00001234"],
      ["sqrt(-4)", "2i"],
      ["3 > 2", "true"],
    ];
    for (const [expression, expected] of cases) assert.equal(calculate(expression), expected, expression);
  });

  test("thirty hostile expressions are each refused with a reason", () => {
    assert.ok(HOSTILE_EXPRESSIONS.length >= 30);
    for (const [expression, reason] of HOSTILE_EXPRESSIONS) {
      assert.throws(
        () => calculate(expression),
        (e: unknown) => e instanceof ToolError && reason.test(e.message),
        expression.slice(0, 60),
      );
    }
  });

  test("as a tool: a JSON Schema for the model, refusals as error results", async () => {
    const tool = calculatorTool();
    assert.deepEqual(tool.parameters.required, ["expression"]);
    assert.deepEqual(await runTool(tool, { expression: "6 * 7" }), { ok: true, content: "42" });
    assert.deepEqual(await runTool(tool, { expression: "zeros(9, 9)" }), {
      ok: false,
      content: "error: the function zeros is not available",
    });
    assert.match((await runTool(tool, { expr: "1" })).content, /^error: .*expression/);
    assert.match((await runTool(tool, { expression: 7 })).content, /^error: expression: /);
  });
});

describe("clock", () => {
  const moment = new Date("2024-03-09T14:02:05Z"); // a Saturday

  test("reads the date, time and weekday in a time zone", () => {
    assert.deepEqual(readClock(moment, "UTC"), {
      date: "2024-03-09",
      time: "14:02:05",
      weekday: "Saturday",
      timezone: "UTC",
    });
    const shanghai = readClock(moment, "Asia/Shanghai");
    assert.equal(shanghai.time, "22:02:05");
    const samoa = readClock(new Date("2024-03-09T23:30:00Z"), "Pacific/Kiritimati");
    assert.deepEqual([samoa.date, samoa.weekday], ["2024-03-10", "Sunday"], "past midnight east of UTC");
  });

  test("as a tool with an injected clock; an unknown zone is an error result", async () => {
    const tool = clockTool(() => moment);
    const r = await runTool(tool, { timezone: "Europe/Paris" });
    assert.ok(r.ok);
    assert.deepEqual(JSON.parse(r.content), {
      date: "2024-03-09",
      time: "15:02:05",
      weekday: "Saturday",
      timezone: "Europe/Paris",
    });
    assert.match(
      (await runTool(tool, { timezone: "Mars/Olympus" })).content,
      /^error: unknown time zone "Mars\/Olympus"/,
    );
    // The weekday in the language asked for; the 22:02 Shanghai evening is still Saturday there.
    const zh = JSON.parse((await runTool(tool, { timezone: "Asia/Shanghai", language: "zh" })).content);
    assert.deepEqual([zh.date, zh.weekday], ["2024-03-09", "星期六"]);
    assert.equal(JSON.parse((await runTool(tool, { language: "fr", timezone: "UTC" })).content).weekday, "samedi");
    assert.match((await runTool(tool, { language: "xx-invalid-" })).content, /^error: unknown language "xx-invalid-"/);
    assert.match((await runTool(tool, { timezone: "UTC", extra: 1 })).content, /^error: /);
    assert.ok((await runTool(tool, {})).ok, "the zone is optional");
  });
});

describe("today's date for the system turn", () => {
  test("in the forms the synthetic training data uses, in the user's language and time zone", () => {
    const moment = new Date("2024-03-09T23:30:00Z");
    assert.equal(todayLine(moment, false, "UTC"), "Today is Saturday, 9 March 2024.");
    assert.equal(todayLine(moment, true, "UTC"), "今天是2024年3月9日，星期六。");
    assert.equal(todayLine(moment, false, "Asia/Shanghai"), "Today is Sunday, 10 March 2024.");
    assert.ok(isChinese("今天星期几?"));
    assert.ok(!isChinese("What day is it?"));
  });
});

describe("running tools", () => {
  test("a tool that throws or hangs gives an error result; OpenAI's tools format", async () => {
    const failing = defineTool("fail", "always fails", z.object({}), () => {
      throw new Error("disk on fire");
    });
    assert.deepEqual(await runTool(failing, {}), { ok: false, content: "error: disk on fire" });
    const hanging = defineTool("hang", "never answers", z.object({}), () => new Promise<string>(() => {}));
    assert.deepEqual(await runTool(hanging, {}, 50), { ok: false, content: "error: hang took longer than 50 ms" });
    const listed = openAiTools([calculatorTool(), clockTool()]);
    assert.deepEqual(
      listed.map((t) => [t.type, t.function.name, (t.function.parameters as { type: string }).type]),
      [
        ["function", "calculator", "object"],
        ["function", "clock", "object"],
      ],
    );
  });
});

describe("tool calls in the chat format and the agent loop", () => {
  const moment = new Date("2024-03-09T14:02:05Z");
  const tools = [clockTool(() => moment), calculatorTool()];
  const specs = openAiTools(tools).map((t) => t.function);

  test("llmfab's template renders tools, calls and results; a template without tools gets them in the system turn", () => {
    const messages: ChatMessage[] = [
      { role: "system", content: "Be brief." },
      { role: "user", content: "What day is it?" },
      { role: "assistant", content: "", toolCalls: [{ id: "call_1", name: "clock", arguments: { timezone: "UTC" } }] },
      { role: "tool", content: '{"weekday":"Saturday"}', toolCallId: "call_1" },
    ];
    const text = renderChat(CHAT_TEMPLATE, messages, true, specs);
    assert.ok(text.startsWith("<|bos|><|system_start|>Be brief.\nYou can call these tools: [{"), text.slice(0, 80));
    assert.equal(text.split("<|system_start|>").length, 2, "one system turn");
    assert.ok(
      text.endsWith(
        '<|user_start|>What day is it?<|user_end|><|assistant_start|><|tool_call_start|>{"name": "clock", "arguments": {"timezone": "UTC"}}<|tool_call_end|><|assistant_end|><|tool_result_start|>{"weekday":"Saturday"}<|tool_result_end|><|assistant_start|>',
      ),
      text,
    );
    const plain = renderChat(PLAIN_CHAT_TEMPLATE, messages.slice(0, 2), true, specs);
    assert.match(plain, /^system: Be brief\.\nYou can call these tools: \[\{"name":"clock"/);
  });

  test("the parser reads calls, keeps the text, and reports malformed ones", () => {
    let n = 0;
    const id = () => `call_${++n}`;
    const r = parseToolCalls(
      'Let me check.<|tool_call_start|>{"name": "clock", "arguments": {}}<|tool_call_end|><|tool_call_start|>{"name": "calculator", "arguments": "{\\"expression\\": \\"2+2\\"}"}<|tool_call_end|><|tool_call_start|>{oops<|tool_call_end|>',
      id,
    );
    assert.equal(r.content, "Let me check.");
    assert.deepEqual(r.calls, [
      { id: "call_1", name: "clock", arguments: {} },
      { id: "call_2", name: "calculator", arguments: { expression: "2+2" } },
    ]);
    assert.deepEqual(r.malformed, ["not JSON: {oops"]);
  });

  test("a turn runs the calls, feeds back results (errors included) and ends with the answer", async () => {
    const seen: ChatMessage[][] = [];
    const script = [
      '<|tool_call_start|>{"name": "clock", "arguments": {"timezone": "UTC"}}<|tool_call_end|><|tool_call_start|>{"name": "abacus", "arguments": {}}<|tool_call_end|>',
      "It is Saturday.",
    ];
    const steps: string[] = [];
    const added = await agentTurn([{ role: "user", content: "What day is it?" }], {
      tools,
      generate: (messages) => {
        seen.push(messages);
        return script[seen.length - 1] ?? "";
      },
      onToolCall: (s) => steps.push(`${s.call.name}:${s.ok}`),
    });
    assert.deepEqual(steps, ["clock:true", "abacus:false"]);
    assert.deepEqual(
      added.map((m) => [m.role, m.content]),
      [
        ["assistant", ""],
        ["tool", '{"date":"2024-03-09","time":"14:02:05","weekday":"Saturday","timezone":"UTC"}'],
        ["tool", 'error: unknown tool "abacus" (tools: clock, calculator)'],
        ["assistant", "It is Saturday."],
      ],
    );
    assert.equal(seen[1]?.length, 4, "the second answer sees the calls and results");
    const endless = await agentTurn([{ role: "user", content: "loop" }], {
      tools,
      maxSteps: 3,
      generate: () => '<|tool_call_start|>{"name": "clock", "arguments": {}}<|tool_call_end|>',
    });
    assert.equal(endless.filter((m) => m.role === "assistant").length, 3, "stops at the step limit");
  });

  test("with a real model and engine, a turn without calls is one answer", async () => {
    const dir = await tinyChatModel();
    const codec = loadChatCodec(dir);
    const engine = new Engine(loadModel(dir), codec, 1);
    const added = await agentTurn([{ role: "user", content: "Hello there" }], {
      tools,
      generate: (messages, t) => {
        const prompt = codec.encode(renderChat(codec.chatTemplate, messages, true, t), true).slice(-80);
        return codec.decodeRaw(engine.generate(prompt, { temperature: 0, maxTokens: 8 }).ids);
      },
    });
    assert.ok(added.length >= 1 && added[0]?.role === "assistant");
  });
});
