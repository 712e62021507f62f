// The web pages in a real browser: playwright-core driving Debian's Chromium, headless.
// Skipped where /usr/bin/chromium is absent (.ci/run installs it).

import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Browser, chromium } from "playwright-core";
import { clockTool, readClock } from "../src/agent/clock.ts";
import { feedbackPairs } from "../src/posttrain/feedback.ts";
import { buildIndex } from "../src/retrieval/index.ts";
import { type RunningServer, startServer } from "../src/server/serve.ts";
import { registerWeb } from "../src/web/routes.ts";
import { tinyChatModel, toolCallingModel } from "./chat-model.ts";
import { renderText } from "./fixtures/text-images.ts";
import { tempDir } from "./tmp.ts";

const CHROMIUM = "/usr/bin/chromium";
const skip = existsSync(CHROMIUM) ? false : "Debian's chromium is not installed";
const shots = join(tmpdir(), "llmfab-screenshots");

let server: RunningServer;
const feedbackFile = join(tempDir("feedback"), "feedback.jsonl");
let keyed: RunningServer;
let browser: Browser;
const API_KEY = "page-key-123";

/** A one-slot server with the web pages, for a test of its own. */
const pageServer = (model: string, o: Partial<Parameters<typeof startServer>[0]>) =>
  startServer({
    model,
    host: "127.0.0.1",
    port: 0,
    slots: 1,
    maxQueue: 2,
    threads: 1,
    register: (app) => registerWeb(app, { runsDir: tmpdir() }),
    ...o,
  });

describe("web pages", { skip }, () => {
  before(async () => {
    const runs = tempDir("runs");
    mkdirSync(join(runs, "demo"));
    const lines = Array.from({ length: 40 }, (_, step) =>
      JSON.stringify({ step, loss: 4 - step * 0.05, lr: 1e-3, tok_per_s: 9000 + step }),
    );
    lines.push(JSON.stringify({ step: 39, train_loss: 2.1, val_loss: 2.3 }));
    writeFileSync(join(runs, "demo", "metrics.jsonl"), `${lines.join("\n")}\n`);
    // An RL run, as llmfab rl writes its metrics.
    mkdirSync(join(runs, "rl"));
    const rl = Array.from({ length: 12 }, (_, step) =>
      JSON.stringify({ step, loss: 0.01, lr: 1e-5, mean_reward: step / 12, pass_at_group: Math.min(1, step / 6) }),
    );
    writeFileSync(join(runs, "rl", "metrics.jsonl"), `${rl.join("\n")}\n`);
    server = await startServer({
      model: await tinyChatModel(),
      host: "127.0.0.1",
      port: 0,
      slots: 2,
      maxQueue: 4,
      threads: 1,
      register: (app) => registerWeb(app, { runsDir: runs }),
      feedbackFile,
    });
    keyed = await startServer({
      model: await tinyChatModel(),
      host: "127.0.0.1",
      port: 0,
      slots: 1,
      maxQueue: 2,
      threads: 1,
      apiKey: API_KEY,
      register: (app) => registerWeb(app, { runsDir: runs }),
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    mkdirSync(shots, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await keyed?.close();
  });

  test("the chat page streams an answer, with today's date in the system turn", async () => {
    const page = await browser.newPage();
    const bodies: string[] = [];
    page.on("request", (r) => {
      if (r.url().endsWith("/v1/chat/completions")) bodies.push(r.postData() ?? "");
    });
    await page.goto(`${server.url}/`);
    await page.fill("#seed", "1");
    await page.fill("#input", "Hello there");
    await page.click("#send");
    await page.waitForSelector('.msg.assistant[data-streaming="false"]', { timeout: 30_000 });
    assert.equal((await page.locator(".msg.user").textContent())?.trim(), "Hello there");
    assert.ok(((await page.locator(".msg.assistant").textContent()) ?? "").trim().length > 0, "the answer has text");
    const sent = JSON.parse(bodies[0] ?? "{}") as { messages: { role: string; content: string }[] };
    assert.equal(sent.messages[0]?.role, "system");
    assert.match(
      sent.messages[0]?.content ?? "",
      /^Today is (Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, \d+ [A-Z][a-z]+ \d{4}\.$/,
    );
    await page.screenshot({ path: join(shots, "chat.png") });
  });

  test("👍 / 👎 and regenerate on an answer reach the feedback file, and export as a preference pair", async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/`);
    await page.fill("#seed", "3");
    await page.fill("#input", "How are you?");
    await page.click("#send");
    await page.waitForSelector(".feedback .up", { timeout: 30_000 });
    await page.click(".feedback .regenerate");
    await page.waitForSelector(".feedback .up", { timeout: 30_000 });
    await page.click(".feedback .up");
    await page.waitForFunction(() => document.querySelector(".feedback")?.getAttribute("data-rated") === "up");
    const records = async () =>
      existsSync(feedbackFile)
        ? readFileSync(feedbackFile, "utf8")
            .trim()
            .split("\n")
            .map((l) => JSON.parse(l) as { answer: string; rating: string; replaced: string[] })
        : [];
    for (let i = 0; i < 100 && (await records()).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    // (An untrained model's answers are arbitrary bytes: compared as the file holds them, not as the page shows them.)
    const [record] = await records();
    assert.equal(record?.rating, "up");
    assert.equal(record?.replaced.length, 1, "the regenerated-away answer is kept");
    const differ = record?.answer !== record?.replaced[0];
    assert.equal(feedbackPairs(feedbackFile).length, differ ? 1 : 0);
    await page.screenshot({ path: join(shots, "feedback.png") });
  });

  test("with a tool-trained model the clock is on by default: the call runs on the server, shown folded", async () => {
    // The server's clock reads a fixed Saturday in this machine's zone (the browser's), as in training.
    const now = () => new Date("2024-03-09T12:00:00Z");
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const clock = clockTool(now);
    const spec = { name: "clock", description: clock.description, parameters: clock.parameters };
    const model = await toolCallingModel(spec, JSON.stringify(readClock(now(), zone)));
    const tooled = await pageServer(model, { now });
    try {
      const page = await browser.newPage();
      const chats: { messages: { role: string; content: string | null }[]; tools?: unknown[] }[] = [];
      const runs: string[] = [];
      page.on("request", (r) => {
        if (r.url().endsWith("/v1/chat/completions")) chats.push(JSON.parse(r.postData() ?? "{}"));
        if (r.url().endsWith("/v1/tools/clock")) runs.push(r.postData() ?? "");
      });
      await page.goto(`${tooled.url}/`);
      await page.waitForSelector("input.tool[value=clock]");
      assert.equal(await page.isChecked("input.tool[value=clock]"), true, "trained: on");
      assert.equal(await page.isChecked("input.tool[value=calculator]"), false, "not trained: off");
      assert.equal(await page.isChecked("#date"), false, "the clock gives the date");
      await page.fill("#seed", "1");
      await page.fill("#input", "What day is it?");
      await page.click("#send");
      await page.waitForSelector('.msg.assistant[data-streaming="false"]', { timeout: 30_000 });
      assert.equal(chats.length, 2, "one answer calls the clock, the next reads its result");
      assert.deepEqual(
        chats[0]?.tools?.map((t) => (t as { function: { name: string } }).function.name),
        ["clock"],
      );
      assert.deepEqual(JSON.parse(runs[0] ?? "{}"), { arguments: { timezone: zone } }, "the browser's zone");
      const second = chats[1]?.messages ?? [];
      assert.deepEqual(
        second.map((m) => m.role),
        ["user", "assistant", "tool"],
      );
      assert.match(second[2]?.content ?? "", /"weekday":"(Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day"/);
      assert.match((await page.locator(".calls summary").textContent()) ?? "", /clock\(\{\}\)/);
      assert.equal((await page.locator(".msg.assistant > div:not(.calls)").textContent())?.trim(), "It is Saturday.");
      await page.screenshot({ path: join(shots, "tools.png") });
    } finally {
      await tooled.close();
    }
  });

  test("an attached image is sent as an image_url part and read by OCR; search documents puts the index in the prompt", async () => {
    const dir = tempDir("page-grounding");
    writeFileSync(join(dir, "notes.md"), "# Opening hours\n\nThe town library opens at nine and closes at ten.\n");
    await buildIndex([join(dir, "notes.md")], join(dir, "notes.sqlite"));
    const image = join(dir, "question.png");
    writeFileSync(image, renderText({ lines: ["When does the library open?"], font: "DejaVu Sans", size: 24 }));
    const prompts: string[] = [];
    const grounded = await pageServer(await tinyChatModel(0, 1024), {
      search: join(dir, "notes.sqlite"),
      onPrompt: (p) => prompts.push(p),
    });
    try {
      const page = await browser.newPage();
      const bodies: { messages: { content: unknown }[]; web_search_options?: unknown }[] = [];
      page.on("request", (r) => {
        if (r.url().endsWith("/v1/chat/completions")) bodies.push(JSON.parse(r.postData() ?? "{}"));
      });
      await page.goto(`${grounded.url}/`);
      await page.waitForSelector("#search_label:not([hidden])");
      await page.check("#search");
      await page.uncheck("#date");
      await page.setInputFiles("#image_file", image);
      await page.waitForSelector("#attached img");
      await page.fill("#seed", "1");
      await page.fill("#max_tokens", "8");
      await page.fill("#input", "Please answer this.");
      await page.click("#send");
      await page.waitForSelector('.msg.assistant[data-streaming="false"]', { timeout: 30_000 });
      assert.equal(await page.locator("#attached img").count(), 0, "sent images leave the tray");
      assert.equal(await page.locator(".msg.user img").count(), 1, "the image shows in the conversation");
      const sent = bodies[0];
      assert.deepEqual(sent?.web_search_options, {});
      const parts = sent?.messages[0]?.content as { type: string; image_url?: { url: string } }[];
      assert.deepEqual(
        parts.map((p) => p.type),
        ["text", "image_url"],
      );
      assert.match(parts[1]?.image_url?.url ?? "", /^data:image\/png;base64,/);
      const prompt = prompts.at(-1) ?? "";
      assert.match(
        prompt,
        /Please answer this\.\n\n\[Text read from image 1 by OCR[^\]]*\]\nWhen does the library open\?/,
      );
      assert.match(prompt, /\[1\] Opening hours/);
      assert.match(prompt, /opens at nine/);
      assert.match((await page.locator(".msg.assistant").textContent()) ?? "", /Sources:\s*\[1\] Opening hours/);
      assert.equal(await page.locator(".msg.assistant li").count(), 1, "the sources are a list");
      await page.screenshot({ path: join(shots, "grounded.png") });
    } finally {
      await grounded.close();
    }
  });

  test("under --api-key the page asks for the key, then sends it and streams an answer", async () => {
    const page = await browser.newPage();
    await page.goto(`${keyed.url}/`);
    await page.waitForFunction(() => /API key/.test(document.getElementById("model")?.textContent ?? ""));
    await page.fill("#seed", "1");
    await page.fill("#input", "Hello there");
    await page.click("#send");
    await page.waitForSelector('.msg.assistant[data-streaming="false"]', { timeout: 30_000 });
    assert.match((await page.locator(".msg.assistant").textContent()) ?? "", /enter the server's key/);

    await page.fill("#api_key", API_KEY);
    await page.dispatchEvent("#api_key", "change");
    await page.waitForFunction(() => /\/model$/.test(document.getElementById("model")?.textContent ?? ""));
    await page.click("#reset");
    await page.fill("#input", "Hello there");
    await page.click("#send");
    await page.waitForSelector('.msg.assistant[data-streaming="false"]', { timeout: 30_000 });
    const answer = ((await page.locator(".msg.assistant").last().textContent()) ?? "").trim();
    assert.ok(answer.length > 0 && !answer.includes("[error"), `answer: ${answer}`);
  });

  test("the dashboard plots a run's loss curve", async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/dashboard?run=demo`);
    await page.waitForFunction(() => document.body.dataset.points === "40", undefined, { timeout: 30_000 });
    assert.match((await page.locator("#status").textContent()) ?? "", /step 39, loss 2\.0500, val 2\.3000/);
    // The canvas has ink on it: the curve was drawn.
    const drawn = await page.evaluate(() => {
      const c = document.getElementById("loss") as HTMLCanvasElement;
      const data = c.getContext("2d")?.getImageData(0, 0, c.width, c.height).data ?? [];
      let ink = 0;
      for (let i = 3; i < data.length; i += 4) if ((data[i] as number) > 0) ink++;
      return ink;
    });
    assert.ok(drawn > 500, `${drawn} pixels drawn`);
    await page.screenshot({ path: join(shots, "dashboard.png") });
    assert.equal(await page.locator("#reward-chart").isHidden(), true, "no reward chart for a pretraining run");
  });

  test("an RL run's dashboard plots its rewards", async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/dashboard?run=rl`);
    await page.waitForFunction(() => document.body.dataset.rewardPoints === "12", undefined, { timeout: 30_000 });
    assert.equal(await page.locator("#reward-chart").isVisible(), true);
    await page.screenshot({ path: join(shots, "dashboard-rl.png") });
  });
});
