// The OpenAI-compatible server, driven by the official `openai` client, plus bad input
// and load.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Ajv } from "ajv";
import OpenAI from "openai";
import { clockTool } from "../src/agent/clock.ts";
import { runTool } from "../src/agent/tool.ts";
import { type RunningServer, startServer } from "../src/server/serve.ts";
import { tinyChatModel, toolCallingModel } from "./chat-model.ts";
import { HOSTILE_EXPRESSIONS } from "./fixtures/hostile-expressions.ts";

const API_KEY = "test-key";

let server: RunningServer;
let client: OpenAI;

before(async () => {
  server = await startServer({
    model: await tinyChatModel(),
    host: "127.0.0.1",
    port: 0,
    apiKey: API_KEY,
    slots: 2,
    maxQueue: 8,
    threads: 1,
  });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: API_KEY, maxRetries: 0 });
});

after(async () => {
  await server.close();
});

describe("with the official openai client", () => {
  test("lists the model", async () => {
    const models = await client.models.list();
    assert.equal(models.data.length, 1);
    assert.equal(models.data[0]?.object, "model");
  });

  test("a chat completion, with usage and logprobs", async () => {
    const r = await client.chat.completions.create({
      model: "model",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hello there" },
      ],
      max_tokens: 8,
      temperature: 0,
      logprobs: true,
    });
    assert.equal(r.object, "chat.completion");
    assert.equal(r.choices[0]?.message.role, "assistant");
    assert.equal(typeof r.choices[0]?.message.content, "string");
    assert.ok(["stop", "length"].includes(r.choices[0]?.finish_reason as string));
    assert.ok((r.usage?.prompt_tokens ?? 0) > 0);
    assert.equal(r.choices[0]?.logprobs?.content?.length, r.usage?.completion_tokens);
  });

  test("a streamed chat completion equals the same request unstreamed", async () => {
    const request = {
      model: "model",
      messages: [{ role: "user" as const, content: "how are you" }],
      max_tokens: 12,
      temperature: 0.9,
      seed: 7,
    };
    const whole = await client.chat.completions.create(request);
    const stream = await client.chat.completions.create({ ...request, stream: true });
    let text = "";
    let chunks = 0;
    let finish: string | null = null;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta?.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.ok(chunks >= 2);
    assert.equal(text, whole.choices[0]?.message.content);
    assert.equal(finish, whole.choices[0]?.finish_reason);
  });

  test("a completion, with n and stop", async () => {
    const r = await client.completions.create({
      model: "model",
      prompt: "Hello",
      max_tokens: 6,
      n: 2,
      temperature: 1,
      seed: 3,
      stop: ["zzz"],
    });
    assert.equal(r.object, "text_completion");
    assert.equal(r.choices.length, 2);
    assert.ok(r.choices.every((c) => typeof c.text === "string"));
  });
});

describe("tool calls held to the tools' schemas", () => {
  const tools: OpenAI.Chat.Completions.ChatCompletionFunctionTool[] = [
    {
      type: "function",
      function: {
        name: "weather",
        parameters: {
          type: "object",
          properties: { city: { enum: ["Paris", "Tokyo"] }, days: { type: "integer" } },
          required: ["city", "days"],
        },
      },
    },
    {
      type: "function",
      function: {
        name: "clock",
        parameters: { type: "object", properties: { utc: { type: "boolean" } }, required: ["utc"] },
      },
    },
  ];
  const validators = new Map(
    tools.map((t) => [t.function.name, new Ajv({ strict: false }).compile(t.function.parameters ?? {})]),
  );
  let s: RunningServer;
  let c: OpenAI;
  before(async () => {
    // An untrained model with a context long enough for the tools in the system turn.
    const model = await tinyChatModel(0, 1024);
    s = await startServer({ model, host: "127.0.0.1", port: 0, slots: 2, maxQueue: 4, threads: 1 });
    c = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "none", maxRetries: 0 });
  });
  after(async () => {
    await s?.close();
  });

  test("an untrained model's forced calls name a real tool with arguments that validate", async () => {
    const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [{ role: "user", content: "Weather?" }];
    for (let seed = 0; seed < 12; seed++) {
      const tool_choice = seed % 3 === 0 ? ({ type: "function", function: { name: "clock" } } as const) : "required";
      const r = await c.chat.completions.create({
        model: "m",
        messages,
        tools,
        tool_choice,
        temperature: 1,
        seed,
        max_tokens: 300,
      });
      const calls = r.choices[0]?.message.tool_calls ?? [];
      assert.ok(calls.length >= 1, `seed ${seed}: no call in ${JSON.stringify(r.choices[0]?.message)}`);
      for (const call of calls) {
        assert.ok(call.type === "function");
        const validate = validators.get(call.function.name);
        assert.ok(validate, `seed ${seed}: called ${call.function.name}`);
        if (seed % 3 === 0) assert.equal(call.function.name, "clock");
        assert.ok(validate(JSON.parse(call.function.arguments)), `seed ${seed}: ${call.function.arguments}`);
      }
    }
  });

  test("a strict tool whose schema llmfab cannot enforce is a 400 naming it", async () => {
    const r = await fetch(`${s.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        messages: [{ role: "user", content: "hi" }],
        tools: [
          { type: "function", function: { name: "f", strict: true, parameters: { type: "string", format: "email" } } },
        ],
      }),
    });
    assert.equal(r.status, 400);
    assert.match(
      ((await r.json()) as { error: { message: string } }).error.message,
      /tools\.0\.function\.parameters: .*keyword "format"/,
    );
  });
});

describe("bad requests get a 4xx with a message", () => {
  const post = (path: string, body: string, key = API_KEY) =>
    fetch(`${server.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body,
    });

  for (const [what, path, body, status, pattern] of [
    ["malformed JSON", "/v1/chat/completions", "{not json", 400, /malformed JSON/],
    ["wrong types", "/v1/chat/completions", JSON.stringify({ messages: "hi" }), 400, /messages/],
    [
      "an unknown role",
      "/v1/chat/completions",
      JSON.stringify({ messages: [{ role: "robot", content: "x" }] }),
      400,
      /messages\.0\.role/,
    ],
    ["negative max_tokens", "/v1/completions", JSON.stringify({ prompt: "hi", max_tokens: -5 }), 400, /max_tokens/],
    [
      "a prompt longer than the context",
      "/v1/completions",
      JSON.stringify({ prompt: "Hello there, how are you today? ".repeat(60) }),
      400,
      /context is 96/,
    ],
  ] as const)
    test(what, async () => {
      const res = await post(path, body);
      assert.equal(res.status, status);
      const json = (await res.json()) as { error: { message: string } };
      assert.match(json.error.message, pattern);
    });

  test("a wrong API key", async () => {
    const res = await post("/v1/completions", JSON.stringify({ prompt: "hi" }), "nope");
    assert.equal(res.status, 401);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /API key/);
    const bad = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "nope", maxRetries: 0 });
    await assert.rejects(bad.models.list(), (e: Error & { status?: number }) => e.status === 401);
  });
});

describe("the built-in tools the chat page runs", () => {
  const headers = { "content-type": "application/json", authorization: `Bearer ${API_KEY}` };
  const run = async (name: string, body: unknown) => {
    const r = await fetch(`${server.url}/v1/tools/${name}`, { method: "POST", headers, body: JSON.stringify(body) });
    return { status: r.status, json: (await r.json()) as Record<string, unknown> & { error?: { message: string } } };
  };

  test("are listed with their schemas; an untrained model was trained on none", async () => {
    const r = await fetch(`${server.url}/v1/tools`, { headers });
    const { data } = (await r.json()) as {
      data: { function: { name: string; parameters: unknown }; trained: boolean }[];
    };
    assert.deepEqual(
      data.map((t) => [t.function.name, t.trained]),
      [
        ["clock", false],
        ["calculator", false],
      ],
    );
    assert.deepEqual(data[0]?.function.parameters, clockTool().parameters);
    assert.equal((await fetch(`${server.url}/v1/tools`)).status, 401, "behind the API key");
  });

  test("run with a result; refusals and bad arguments are results too; an unknown tool is a 404", async () => {
    assert.deepEqual(await run("calculator", { arguments: { expression: "778 * 845" } }), {
      status: 200,
      json: { ok: true, content: "657410" },
    });
    const clock = await run("clock", { arguments: { timezone: "Asia/Tokyo" } });
    assert.match(String(clock.json.content), /"timezone":"Asia\/Tokyo"/);
    const refused = await run("calculator", { arguments: { expression: "import({}, {override: true})" } });
    assert.deepEqual([refused.status, refused.json.ok], [200, false]);
    assert.match(String(refused.json.content), /^error: /);
    const bad = await run("clock", { arguments: { timezone: 42 } });
    assert.match(String(bad.json.content), /^error: timezone: /);
    const unknown = await run("shell", { arguments: {} });
    assert.equal(unknown.status, 404);
    assert.match(unknown.json.error?.message ?? "", /no tool "shell" \(tools: clock, calculator\)/);
    assert.equal((await run("clock", { args: {} })).status, 400, "unknown fields");
  });

  test("thirty hostile calculator expressions at once: each a refusal, /health answers throughout", async () => {
    let polling = true;
    const health: number[] = [];
    const poll = (async () => {
      while (polling) {
        health.push((await fetch(`${server.url}/health`)).status);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const answers = await Promise.all(
      HOSTILE_EXPRESSIONS.map(([expression]) => run("calculator", { arguments: { expression } })),
    );
    polling = false;
    await poll;
    answers.forEach((a, i) => {
      const [expression, reason] = HOSTILE_EXPRESSIONS[i] as [string, RegExp];
      assert.deepEqual([a.status, a.json.ok], [200, false], expression.slice(0, 60));
      assert.match(String(a.json.content), reason, expression.slice(0, 60));
    });
    assert.ok(health.length > 0 && health.every((h) => h === 200), `health: ${health.join(",")}`);
  });
});

describe("under load", () => {
  test("50 concurrent chats all complete or get 429, and /health answers throughout", async () => {
    let healthChecks = 0;
    let healthy = true;
    let done = false;
    const started = Date.now();
    const probe = (async () => {
      while (Date.now() - started < 60_000) {
        const res = await fetch(`${server.url}/health`);
        healthy &&= res.ok;
        healthChecks++;
        if (done) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        client.chat.completions.create({
          model: "model",
          messages: [{ role: "user", content: `hello ${i}` }],
          max_tokens: 6,
          temperature: 0.5,
          seed: i,
        }),
      ),
    );
    done = true;
    await probe;
    const ok = results.filter((r) => r.status === "fulfilled").length;
    const limited = results.filter(
      (r) => r.status === "rejected" && (r.reason as { status?: number }).status === 429,
    ).length;
    assert.equal(ok + limited, 50, "every request completed or was told to retry");
    assert.ok(ok >= 10, `${ok} completed`);
    assert.ok(healthy && healthChecks > 0);
    const after = await client.chat.completions.create({
      model: "model",
      messages: [{ role: "user", content: "still there?" }],
      max_tokens: 3,
    });
    assert.equal(after.object, "chat.completion");
  });
});

describe("when the engine fails", () => {
  const start = async (o: Partial<Parameters<typeof startServer>[0]> = {}, paddedRows = 0) =>
    startServer({
      model: await tinyChatModel(paddedRows),
      host: "127.0.0.1",
      port: 0,
      slots: 2,
      maxQueue: 4,
      threads: 1,
      ...o,
    });
  const chat = (s: RunningServer, content = "hello") =>
    fetch(`${s.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content }], max_tokens: 4, seed: 1 }),
    });
  const health = async (s: RunningServer) => {
    const r = await fetch(`${s.url}/health`);
    return { status: r.status, body: (await r.json()) as { status: string; in_flight: number } };
  };

  test("padded embedding rows are never sampled (a model vocabulary larger than its tokenizer's)", async () => {
    const s = await start({}, 64);
    try {
      const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "none", maxRetries: 0 });
      for (let seed = 0; seed < 6; seed++) {
        const r = await client.completions.create({
          model: "m",
          prompt: "Hello",
          max_tokens: 20,
          temperature: 2,
          seed,
          logprobs: 1,
        });
        assert.equal(typeof r.choices[0]?.text, "string"); // before the fix: HTTP 500, "token id ... is not in the vocabulary"
      }
    } finally {
      await s.close();
    }
  });

  test("an error inside the engine ends that request with a clear error; the next ones are served", async () => {
    const s = await start({ fault: { kind: "throw", at: 2 } });
    try {
      const failed = await chat(s);
      assert.equal(failed.status, 500);
      assert.match(
        ((await failed.json()) as { error: { message: string } }).error.message,
        /generation failed: injected fault/,
      );
      for (let i = 0; i < 3; i++) assert.equal((await chat(s, `again ${i}`)).status, 200);
      assert.deepEqual(await health(s), { status: 200, body: { status: "ok", in_flight: 0, since_progress_s: 0 } });
    } finally {
      await s.close();
    }
  });

  test("/health says 503 stalled while the engine holds requests without progress, ok once it moves", async () => {
    const s = await start({ fault: { kind: "hang", at: 2, ms: 2500 }, stallSeconds: 0.5 });
    try {
      const pending = chat(s);
      await new Promise((r) => setTimeout(r, 1500));
      const stuck = await health(s);
      assert.equal(stuck.status, 503);
      assert.equal(stuck.body.status, "stalled");
      assert.equal(stuck.body.in_flight, 1);
      assert.equal((await pending).status, 200);
      assert.equal((await health(s)).body.status, "ok");
    } finally {
      await s.close();
    }
  });

  test("an engine that dies fails its request and refuses new ones with 503; /health says stopped", async () => {
    const s = await start({ fault: { kind: "exit", at: 2 } });
    try {
      const failed = await chat(s);
      assert.equal(failed.status, 503);
      assert.match(((await failed.json()) as { error: { message: string } }).error.message, /engine stopped/);
      assert.equal((await chat(s)).status, 503, "a new request is refused at once, not left hanging");
      const h = await health(s);
      assert.equal(h.status, 503);
      assert.equal(h.body.status, "stopped");
    } finally {
      await s.close();
    }
  });
});

describe("tool calling with the official openai client", () => {
  const clockSpec = clockTool().parameters;
  const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [
    {
      type: "function",
      function: { name: "clock", description: clockTool().description, parameters: clockSpec },
    },
  ];
  let s: RunningServer;
  let c: OpenAI;

  before(async () => {
    const spec = { name: "clock", description: clockTool().description, parameters: clockSpec };
    s = await startServer({
      model: await toolCallingModel(spec),
      host: "127.0.0.1",
      port: 0,
      slots: 2,
      maxQueue: 4,
      threads: 1,
    });
    c = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "none", maxRetries: 0 });
  });
  after(async () => {
    await s?.close();
  });

  const ask: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [{ role: "user", content: "What day is it?" }];

  test("a round trip: tools -> tool_calls -> tool message -> answer", async () => {
    const first = await c.chat.completions.create({ model: "m", messages: ask, tools, temperature: 0 });
    const choice = first.choices[0];
    assert.equal(choice?.finish_reason, "tool_calls");
    const call = choice?.message.tool_calls?.[0];
    assert.ok(call && call.type === "function");
    assert.equal(call.function.name, "clock");
    assert.deepEqual(JSON.parse(call.function.arguments), {});
    const result = await runTool(
      clockTool(() => new Date("2024-03-09T12:00:00Z")),
      JSON.parse(call.function.arguments),
    );
    const second = await c.chat.completions.create({
      model: "m",
      tools,
      temperature: 0,
      messages: [
        ...ask,
        { role: "assistant", content: null, tool_calls: [call] },
        { role: "tool", tool_call_id: call.id, content: '{"weekday":"Saturday"}' },
      ],
    });
    assert.equal(second.choices[0]?.finish_reason, "stop");
    assert.equal(second.choices[0]?.message.content, "It is Saturday.");
    assert.ok(result.ok);
  });

  test("streamed: the deltas join to the same call; tool_choice none and a named function", async () => {
    const stream = await c.chat.completions.create({ model: "m", messages: ask, tools, temperature: 0, stream: true });
    let content = "";
    const calls: { name?: string; arguments?: string }[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      const d = chunk.choices[0]?.delta;
      content += d?.content ?? "";
      for (const t of d?.tool_calls ?? [])
        calls[t.index] = { name: t.function?.name, arguments: t.function?.arguments };
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, "tool_calls");
    assert.deepEqual(calls, [{ name: "clock", arguments: "{}" }]);
    assert.equal(content, "", "the call's text is not streamed as content");

    const none = await c.chat.completions.create({
      model: "m",
      messages: ask,
      tools,
      tool_choice: "none",
      temperature: 0,
    });
    assert.equal(none.choices[0]?.message.tool_calls, undefined);
    const named = await c.chat.completions.create({
      model: "m",
      messages: ask,
      tools,
      tool_choice: { type: "function", function: { name: "clock" } },
      temperature: 0,
    });
    const namedCall = named.choices[0]?.message.tool_calls?.[0];
    assert.ok(namedCall?.type === "function");
    assert.equal(namedCall.function.name, "clock");
  });

  test("response_format: json_schema answers validate, streamed deltas join to them; json_object; bad schemas", async () => {
    const schema = {
      type: "object",
      properties: { weekday: { enum: ["Monday", "Saturday", "星期六"] }, confident: { type: "boolean" } },
      required: ["weekday", "confident"],
      additionalProperties: false,
    };
    const validate = new Ajv({ strict: false }).compile(schema);
    const response_format = { type: "json_schema" as const, json_schema: { name: "day", schema, strict: true } };
    for (const seed of [1, 2, 3]) {
      const request = { model: "m", messages: ask, response_format, temperature: 1, seed, max_tokens: 60 };
      const r = await c.chat.completions.create(request);
      const text = r.choices[0]?.message.content ?? "";
      assert.ok(validate(JSON.parse(text)), text);
      assert.equal(r.choices[0]?.finish_reason, "stop");
      let streamed = "";
      for await (const chunk of await c.chat.completions.create({ ...request, stream: true }))
        streamed += chunk.choices[0]?.delta.content ?? "";
      assert.equal(streamed, text);
    }
    const any = await c.chat.completions.create({
      model: "m",
      messages: ask,
      response_format: { type: "json_object" },
      temperature: 0,
      max_tokens: 100,
    });
    // Any object: greedy decoding of a small model may stay inside one string until max_tokens.
    const content = any.choices[0]?.message.content ?? "";
    if (any.choices[0]?.finish_reason === "stop") {
      const value = JSON.parse(content) as unknown;
      assert.ok(typeof value === "object" && value !== null && !Array.isArray(value));
    } else assert.match(content, /^\{/);
    await assert.rejects(
      c.chat.completions.create({
        model: "m",
        messages: ask,
        response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "string", pattern: "a+" } } },
      }),
      (e: Error & { status?: number }) =>
        e.status === 400 && /keyword "pattern" is not supported for type string/.test(e.message),
    );
  });

  test("bad tool requests are 400s naming the field", async () => {
    const bad = async (body: object, param: RegExp) => {
      const r = await fetch(`${s.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ messages: ask, ...body }),
      });
      assert.equal(r.status, 400);
      assert.match(((await r.json()) as { error: { message: string } }).error.message, param);
    };
    await bad(
      { tools, tool_choice: { type: "function", function: { name: "abacus" } } },
      /names "abacus", which is not in tools/,
    );
    await bad({ tool_choice: "required" }, /tool_choice needs tools/);
    await bad({ tools: [{ type: "function", function: { name: "bad name!" } }] }, /tools\.0\.function\.name/);
    await bad(
      {
        messages: [
          {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "x", type: "function", function: { name: "clock", arguments: "{oops" } }],
          },
        ],
      },
      /messages\.0\.tool_calls\.0\.function\.arguments: not valid JSON/,
    );
  });
});
