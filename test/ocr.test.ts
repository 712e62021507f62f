// Images through OCR and search as context, end to end: character error rates on rendered
// text, the checks images get before decoding, and the chains a user runs — an image of a
// question sent as an image_url part with the official openai client, "what happened
// today?" answered from an index of today's feed items, and `llmfab chat --image`.

import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { checkImage, decodeDataUrl } from "../src/io/image.ts";
import { recognize, stopOcr } from "../src/ocr/ocr.ts";
import { buildIndex } from "../src/retrieval/index.ts";
import { type RunningServer, startServer } from "../src/server/serve.ts";
import { tinyChatModel } from "./chat-model.ts";
import { llmfab } from "./cli-helpers.ts";
import { charErrorRate, renderText } from "./fixtures/text-images.ts";
import { tempDir } from "./tmp.ts";

const LINES = [
  "The quick brown fox jumps over the lazy dog.",
  "Invoice 4721: 12 boxes at $3.50 each, due 2026-12-04.",
  "What is 12 + 30?",
];

/** A PNG file's signature and header chunk declaring a size, and nothing else. */
function pngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(13);
  return Buffer.concat([Buffer.from("89504e470d0a1a0a", "hex"), length, Buffer.from("IHDR"), ihdr, Buffer.alloc(4)]);
}

const dataUrl = (png: Buffer, type = "image/png") => `data:${type};base64,${png.toString("base64")}`;

after(() => stopOcr());

describe("OCR", () => {
  it("reads clean English renders in three fonts and three sizes with a character error rate of at most 2%", async () => {
    let errors = 0;
    let chars = 0;
    const want = LINES.join("\n");
    for (const font of ["DejaVu Sans", "DejaVu Serif", "Liberation Mono"])
      for (const size of [16, 24, 40]) {
        const r = await recognize(renderText({ lines: LINES, font, size }), `${font} ${size}px`);
        errors += charErrorRate(r.text, want) * want.length;
        chars += want.length;
      }
    assert.ok(errors / chars <= 0.02, `character error rate ${(errors / chars).toFixed(4)}`);
  });

  it("reads a photo-like render (tinted paper, shadow, noise, tilt, JPEG)", async () => {
    const r = await recognize(renderText({ lines: LINES, font: "DejaVu Sans", size: 24, photo: true }), "photo");
    const cer = charErrorRate(r.text, LINES.join("\n"));
    assert.ok(cer <= 0.05, `character error rate ${cer.toFixed(4)}: ${JSON.stringify(r.text)}`);
  });

  it("reads Chinese with Debian's chi_sim data, or says clearly that it is missing", async () => {
    const lines = ["今天是星期一，天气很好。", "我们下午三点在北京见面。"];
    const image = renderText({ lines, font: "WenQuanYi Micro Hei", size: 32 });
    if (!existsSync("/usr/share/tesseract-ocr/5/tessdata/chi_sim.traineddata")) {
      await assert.rejects(recognize(image, "zh", ["chi_sim"]), /install Debian's tesseract-ocr-chi-sim/);
      return;
    }
    const r = await recognize(image, "zh", ["chi_sim"]);
    const cer = charErrorRate(r.text.replace(/\s+/g, ""), lines.join(""));
    assert.ok(cer <= 0.1, `character error rate ${cer.toFixed(4)}: ${JSON.stringify(r.text)}`);
  });

  it("refuses a corrupt image, a 50,000 x 50,000 header, a file that is no image and an empty one, naming each", async () => {
    const png = renderText({ lines: ["hello"], font: "DejaVu Sans", size: 24 });
    const corrupt = Buffer.concat([png.subarray(0, 64), Buffer.alloc(400, 7)]);
    await assert.rejects(recognize(corrupt, "corrupt.png"), /corrupt\.png: the png image could not be decoded/);
    assert.throws(
      () => checkImage(pngHeader(50_000, 50_000), "huge.png"),
      /huge\.png: 50000x50000 is 2500 megapixels; images are limited to 40 megapixels/,
    );
    assert.throws(
      () => checkImage(Buffer.from("%PDF-1.4 not a picture"), "fake.png"),
      /fake\.png: not an image llmfab can read/,
    );
    assert.throws(() => checkImage(Buffer.alloc(0), "empty.png"), /empty\.png: empty file/);
    assert.throws(() => decodeDataUrl("data:image/png;base64,@@@@", "part"), /characters base64 does not use/);
    // The worker keeps working after a refusal.
    assert.equal((await recognize(png, "after")).text, "hello");
  });
});

describe("grounded chat through the server", () => {
  let server: RunningServer;
  let client: OpenAI;
  const prompts: string[] = [];
  const now = new Date("2026-11-30T15:00:00Z");

  before(async () => {
    const dir = tempDir("grounded");
    const item = (title: string, date: string, text: string, link: string) =>
      `<item><title>${title}</title><link>${link}</link><pubDate>${new Date(date).toUTCString()}</pubDate><description>${text}</description></item>`;
    writeFileSync(
      join(dir, "news.rss"),
      `<?xml version="1.0"?><rss version="2.0"><channel><title>Town news</title>${[
        item(
          "Harbour bridge opens",
          "2026-11-30T08:00:00Z",
          "The new harbour bridge opened to traffic.",
          "https://news.example/bridge",
        ),
        item(
          "Library extends hours",
          "2026-11-30T10:30:00Z",
          "The library now opens until ten.",
          "https://news.example/library",
        ),
        item("Storm closes market", "2026-11-02T09:00:00Z", "A storm closed the market.", "https://news.example/storm"),
      ].join("")}</channel></rss>`,
    );
    await buildIndex([join(dir, "news.rss")], join(dir, "news.sqlite"));
    server = await startServer({
      model: await tinyChatModel(0, 1024),
      host: "127.0.0.1",
      port: 0,
      slots: 1,
      maxQueue: 4,
      threads: 1,
      search: join(dir, "news.sqlite"),
      now: () => now,
      onPrompt: (p) => prompts.push(p),
    });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "none", maxRetries: 0 });
  });
  after(() => server.close());

  it("reads an image_url part by OCR into the prompt, with a note of where the text came from, and answers", async () => {
    const image = renderText({ lines: ["What is 12 + 30?"], font: "DejaVu Sans", size: 24 });
    const reply = await client.chat.completions.create({
      model: "any",
      max_tokens: 8,
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "Answer the question in the picture." },
            { type: "image_url", image_url: { url: dataUrl(image) } },
          ],
        },
      ],
    });
    const prompt = prompts.at(-1) ?? "";
    assert.match(
      prompt,
      /Answer the question in the picture\.\n\n\[Text read from image 1 by OCR \(eng, \d+x\d+, confidence \d+%\)\]\nWhat is 12 \+ 30\?/,
    );
    assert.equal(typeof reply.choices[0]?.message.content, "string");
  });

  it("fetches an http(s) image URL with limits, and names the URL when it cannot", async () => {
    const png = renderText({ lines: ["What is 12 + 30?"], font: "DejaVu Sans", size: 24 });
    const images = createServer((req, res) => {
      if (req.url === "/question.png") res.writeHead(200, { "content-type": "image/png" }).end(png);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => images.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${(images.address() as AddressInfo).port}`;
    const ask = (url: string) =>
      client.chat.completions.create({
        model: "any",
        max_tokens: 4,
        messages: [{ role: "user", content: [{ type: "image_url", image_url: { url } }] }],
      });
    try {
      await ask(`${base}/question.png`);
      assert.match(
        prompts.at(-1) ?? "",
        new RegExp(`\\[Text read from ${base}/question\\.png by OCR[^\\]]*\\]\\nWhat is 12 \\+ 30\\?`),
      );
      await assert.rejects(
        ask(`${base}/missing.png`),
        (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && /HTTP 404/.test(e.message),
      );
    } finally {
      images.close();
    }
  });

  it("answers a bad image with a 400 naming the part, and stays healthy", async () => {
    const bad = [dataUrl(pngHeader(50_000, 50_000)), dataUrl(Buffer.from("not an image")), "ftp://example.com/a.png"];
    for (const url of bad) {
      await assert.rejects(
        client.chat.completions.create({
          model: "any",
          messages: [{ role: "user", content: [{ type: "image_url", image_url: { url } }] }],
        }),
        (e: InstanceType<typeof OpenAI.APIError>) =>
          e.status === 400 && /messages\.0\.content\.0\.image_url\.url/.test(e.message),
      );
    }
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
  });

  it("puts today's feed items in the prompt for what happened today, and the answer cites them", async () => {
    const reply = await client.chat.completions.create({
      model: "any",
      max_tokens: 8,
      web_search_options: { search_context_size: "medium" },
      messages: [{ role: "user", content: "What happened today?" }],
    });
    const prompt = prompts.at(-1) ?? "";
    assert.match(prompt, /Search results from 2026-11-30 to 2026-11-30/);
    assert.match(
      prompt,
      /Harbour bridge opens, 2026-11-30, https:\/\/news\.example\/bridge\nThe new harbour bridge opened to traffic\.(<|\n)/,
    );
    assert.match(prompt, /Library extends hours/);
    assert.doesNotMatch(prompt, /Storm closes market/, "an old item is not today's news");
    const content = reply.choices[0]?.message.content ?? "";
    assert.match(
      content,
      /\n\nSources:\n- \[\d\] (Harbour bridge opens|Library extends hours), 2026-11-30, https:\/\/news\.example\//,
    );
  });

  it("offers search as a tool the chat page can run", async () => {
    const tools = (await (await fetch(`${server.url}/v1/tools`)).json()) as { data: { function: { name: string } }[] };
    assert.ok(tools.data.some((t) => t.function.name === "search"));
    const run = await fetch(`${server.url}/v1/tools/search`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ arguments: { query: "library hours" } }),
    });
    const result = (await run.json()) as { ok: boolean; content: string };
    assert.equal(result.ok, true);
    assert.match(result.content, /^\[1\] Library extends hours/);
  });
});

describe("llmfab chat --image", () => {
  it("reads the image's text into the first message and says where it came from", async () => {
    const dir = tempDir("chat-image");
    const image = join(dir, "question.png");
    writeFileSync(image, renderText({ lines: ["What is 12 + 30?"], font: "DejaVu Sans", size: 24 }));
    const model = await tinyChatModel(0, 1024);
    const r = llmfab(
      ["chat", "--model", model, "--max-tokens", "4", "--image", image],
      `/image ${join(dir, "missing.png")}\nhi\n/exit\n`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /\[Text read from .*question\.png by OCR \(eng, [^)]*\)\]\nWhat is 12 \+ 30\?\n\(this text goes with your next message\)/,
    );
    assert.match(r.stdout, /missing\.png: cannot read/);
    const bad = llmfab(["chat", "--model", model, "--image", join(dir, "nothing.png")], "/exit\n");
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /nothing\.png: cannot read/);
  });
});
