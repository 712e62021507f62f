// Constrained decoding: a model with random weights, sampling at temperature 1, asked for
// JSON of many schemas — every answer parses and validates (ajv, an independent validator),
// also when batched beside unconstrained requests; unsupported schemas are clear errors.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Ajv } from "ajv";
import { BUILTIN_TOOLS, builtinTools } from "../src/agent/builtin.ts";
import { toolSpecs } from "../src/agent/tool.ts";
import { heldToolCalls, toolCallSchema } from "../src/infer/chat.ts";
import { Engine, type GenerationResult } from "../src/infer/engine.ts";
import { compileSchema } from "../src/infer/json-schema.ts";
import { loadModel } from "../src/model/directory.ts";
import { loadChatCodec } from "../src/pipeline/codec.ts";
import { tinyChatModel } from "./chat-model.ts";

const SCHEMAS: Record<string, unknown>[] = [
  { type: "object", properties: { name: { type: "string" }, age: { type: "integer" } }, required: ["name", "age"] },
  { type: "object", properties: { ok: { type: "boolean" }, note: { type: "string" } }, required: ["ok"] },
  {
    type: "object",
    properties: {
      city: { type: "string", enum: ["Paris", "東京", "New York"] },
      temperature: { type: "number" },
      unit: { enum: ["C", "F", null] },
    },
    required: ["city", "temperature", "unit"],
    additionalProperties: false,
  },
  {
    type: "object",
    properties: {
      items: {
        type: "array",
        items: {
          type: "object",
          properties: { id: { type: "integer" }, tags: { type: "array", items: { type: "string" } } },
          required: ["id"],
        },
      },
    },
    required: ["items"],
  },
  {
    type: "object",
    properties: {
      a: {
        type: "object",
        properties: { b: { type: "object", properties: { c: { const: 42 } }, required: ["c"] } },
        required: ["b"],
      },
    },
    required: ["a"],
  },
  { type: "array", items: { type: "number" } },
  { type: "object" }, // response_format json_object: any object
  { type: "object", properties: { x: { type: "null" }, y: { type: "boolean" }, z: {} }, required: ["x", "y", "z"] },
  // string lengths in characters (an escape or a multi-byte character is one)
  {
    type: "object",
    properties: { code: { type: "string", minLength: 2, maxLength: 4 }, initial: { type: "string", maxLength: 1 } },
    required: ["code", "initial"],
  },
  // a tool call: which function decides the shape of its arguments
  {
    anyOf: [
      {
        type: "object",
        properties: { name: { const: "clock" }, arguments: { type: "object", properties: { tz: { type: "string" } } } },
        required: ["name", "arguments"],
      },
      {
        type: "object",
        properties: {
          name: { const: "calculator" },
          arguments: { type: "object", properties: { expression: { type: "string" } }, required: ["expression"] },
        },
        required: ["name", "arguments"],
      },
    ],
  },
];

describe("constrained decoding", () => {
  test("200 answers at temperature 1 all validate, batched beside unconstrained requests", async (t) => {
    const dir = await tinyChatModel(7, 512);
    const model = loadModel(dir);
    const codec = loadChatCodec(dir);
    const engine = new Engine(model, codec, 4);
    const ajv = new Ajv({ strict: false });
    const validators = SCHEMAS.map((s) => ajv.compile(s));
    const results: { schema: number; r: GenerationResult }[] = [];
    let free = 0;
    for (let i = 0; i < 200; i++) {
      const schema = i % SCHEMAS.length;
      engine.submit({
        prompt: codec.encode(`Give me JSON number ${i}:`, false),
        options: { temperature: 1, maxTokens: 400, seed: i, jsonSchema: SCHEMAS[schema] },
        onDone: (r) => results.push({ schema, r }),
        onError: (e) => assert.fail(e),
      });
      // Unconstrained requests share the batch.
      if (i % 3 === 0) {
        engine.submit({
          prompt: codec.encode("Hello there", false),
          options: { temperature: 1, maxTokens: 20, seed: i },
          onDone: () => free++,
          onError: (e) => assert.fail(e),
        });
      }
      if (i % 8 === 7) engine.runToCompletion();
    }
    engine.runToCompletion();
    assert.equal(results.length, 200);
    assert.equal(free, 67);
    let complete = 0;
    for (const { schema, r } of results) {
      // Cut off by maxTokens inside a long string: a valid prefix (every token passed the automaton).
      if (r.finishReason === "length") continue;
      complete++;
      const value = JSON.parse(r.text);
      assert.ok(
        validators[schema]?.(value),
        `schema ${schema}: ${r.text} — ${ajv.errorsText(validators[schema]?.errors)}`,
      );
    }
    t.diagnostic(`${complete} of 200 answers complete within 400 tokens, all valid`);
    assert.ok(complete >= 160, `only ${complete} of 200 answers completed within 400 tokens`);
  });

  test("unsupported schemas are errors naming the keyword and where it is", () => {
    assert.throws(
      () => compileSchema({ type: "string", pattern: "^a" }),
      /at \/pattern: keyword "pattern" is not supported for type string/,
    );
    assert.throws(
      () => compileSchema({ type: "object", properties: { a: { allOf: [{ type: "string" }] } } }),
      /at \/properties\/a\/type: type is required/,
    );
    assert.throws(() => compileSchema({ type: "object", required: ["b"], properties: {} }), /"b" is not a property/);
    assert.throws(() => compileSchema({ type: ["string", "null"] }), /a list of types is not supported/);
    assert.throws(() => compileSchema({ type: "string", maxLength: -1 }), /maxLength must be an integer >= 0/);
    assert.throws(() => compileSchema({ type: "string", minLength: 3, maxLength: 2 }), /minLength is above maxLength/);
  });

  test("the built-in tools' calls are held to their schemas (their bounded strings compile)", () => {
    const specs = toolSpecs(builtinTools([...BUILTIN_TOOLS]));
    assert.doesNotThrow(() => compileSchema(toolCallSchema(specs)));
    assert.ok(heldToolCalls(specs, { start: 1, end: 2 }), "tool calls are constrained");
  });
});
