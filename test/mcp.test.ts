// MCP: a server written with the official SDK is started over stdio, its tools are listed
// and called, and a model's tool call reaches it and its result comes back.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { agentTurn } from "../src/agent/loop.ts";
import { connectMcp, type McpConnection, splitCommand } from "../src/agent/mcp.ts";
import { runTool } from "../src/agent/tool.ts";
import { renderChat } from "../src/infer/chat.ts";
import { Engine } from "../src/infer/engine.ts";
import { loadModel } from "../src/model/directory.ts";
import { loadChatCodec } from "../src/pipeline/codec.ts";
import { toolCallingModel } from "./chat-model.ts";
import { root } from "./cli-helpers.ts";

const serverCommand = `${process.execPath} --import tsx ${join(root, "test/fixtures/mcp-server.ts")}`;

describe("MCP servers over stdio", () => {
  let mcp: McpConnection;
  before(async () => {
    mcp = await connectMcp(serverCommand);
  });
  after(async () => {
    await mcp?.close();
  });

  test("its tools are listed with their schemas and called; a failing tool is an error result", async () => {
    assert.deepEqual(
      mcp.tools.map((t) => t.name),
      ["clock", "add", "fail"],
    );
    const add = mcp.tools.find((t) => t.name === "add");
    const fail = mcp.tools.find((t) => t.name === "fail");
    assert.ok(add && fail);
    assert.deepEqual((add.parameters as { required?: string[] }).required, ["a", "b"]);
    assert.deepEqual(await runTool(add, { a: 2, b: 40 }), { ok: true, content: "42" });
    assert.deepEqual(await runTool(fail, {}), { ok: false, content: "error: the disk is on fire" });
    const bad = await runTool(add, { a: "two" });
    assert.equal(bad.ok, false, "the server's own argument check answers");
  });

  test("a trained model's tool call reaches the server and its result comes back", async () => {
    const clock = mcp.tools.find((t) => t.name === "clock");
    assert.ok(clock);
    const dir = await toolCallingModel({
      name: clock.name,
      description: clock.description,
      parameters: clock.parameters,
    });
    const codec = loadChatCodec(dir);
    const engine = new Engine(loadModel(dir), codec, 1);
    const calls: string[] = [];
    const added = await agentTurn([{ role: "user", content: "What day is it?" }], {
      tools: [clock],
      generate: (messages, tools) => {
        const prompt = codec.encode(renderChat(codec.chatTemplate, messages, true, tools), true);
        return codec.decodeRaw(engine.generate(prompt, { temperature: 0, maxTokens: 40 }).ids);
      },
      onToolCall: (s) => calls.push(`${s.call.name} -> ${s.result}`),
    });
    assert.deepEqual(calls, ['clock -> {"weekday":"Saturday"}']);
    assert.equal(added.at(-1)?.content, "It is Saturday.");
  });

  test("a command that is not an MCP server is a clear error", async () => {
    await assert.rejects(connectMcp(`${process.execPath} -e 0`), /MCP server ".* -e 0": /);
    assert.deepEqual(splitCommand(`node "my server.js" --flag 'a b'`), ["node", "my server.js", "--flag", "a b"]);
  });
});
