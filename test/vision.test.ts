// Vision models: the ViT encoder and projector inside GPT-2 and Llama, against a float64
// reference (the loss, and every parameter's gradient against central finite differences).

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { IMAGE_PLACEHOLDER } from "../src/infer/chat.ts";
import { Engine } from "../src/infer/engine.ts";
import { writeDirAtomic } from "../src/io/atomic.ts";
import { type ModelConfig, makeConfig } from "../src/model/config.ts";
import { loadModel, modelFiles } from "../src/model/directory.ts";
import { addVision, initModel } from "../src/model/model.ts";
import { defaultVision, patchesPerImage, pixelsPerImage, type VisionConfig } from "../src/model/vision.ts";
import { answerChatTasks, scoreAnswers } from "../src/pipeline/chat-eval.ts";
import { loadChatCodec, tokenizerFilesOf } from "../src/pipeline/codec.ts";
import { runSftCommand } from "../src/pipeline/sft.ts";
import { readConversations } from "../src/posttrain/data.ts";
import { synthesizeVision, visionRecord } from "../src/posttrain/synth-vision.ts";
import { type RunningServer, startServer } from "../src/server/serve.ts";
import { backward, crossEntropy, noGrad } from "../src/tensor/index.ts";
import { mnistDigits } from "../src/vision/mnist.ts";
import { imagePixels } from "../src/vision/pixels.ts";
import { COLOUR_NAMES, COLOURS, drawShapes, pngDataUrl, type SHAPES } from "../src/vision/scenes.ts";
import { sftDefaults, tinyChatModel } from "./chat-model.ts";
import { llmfab } from "./cli-helpers.ts";
import { assertParameterGradients, rng } from "./helpers.ts";
import { type RefParams, loss as refLoss, visionVectors } from "./reference/models.ts";
import { tempDir } from "./tmp.ts";

const TINY_VISION: VisionConfig = defaultVision({
  imageSize: 8,
  patchSize: 4,
  hidden: 8,
  layers: 2,
  heads: 2,
  intermediate: 12,
});

function checkVisionModel(config: ModelConfig, B = 2, T = 12): void {
  const vision = config.vision as VisionConfig;
  const model = initModel(config, 5);
  const r = rng(11);
  for (const t of model.params.values())
    for (let i = 0; i < t.size; i++) t.data[i] = (t.data[i] as number) * 10 + (r() - 0.5) * 0.2;
  const N = patchesPerImage(vision);
  // Two images: one in each sequence, at different offsets.
  const rows = Int32Array.from([
    ...Array.from({ length: N }, (_, i) => 2 + i),
    ...Array.from({ length: N }, (_, i) => T + 5 + i),
  ]);
  const count = 2;
  const pixels = Float32Array.from({ length: count * pixelsPerImage(vision) }, () => r() * 2 - 1);
  const idx = Int32Array.from({ length: B * T }, () => Math.floor(r() * config.vocabSize));
  const targets = Int32Array.from({ length: B * T }, (_, i) => (i === 3 ? -1 : Math.floor(r() * config.vocabSize)));

  const loss = crossEntropy(model.forward(idx, B, T, { images: { pixels, count, rows } }), targets);
  const lossValue = loss.item();
  backward(loss);

  const p: RefParams = new Map([...model.params].map(([n, t]) => [n, Float64Array.from(t.data)]));
  const px = Float64Array.from(pixels);
  const reference = () =>
    refLoss(config, p, idx, targets, B, T, { rows, vectors: visionVectors(vision, p, px, count, config.nEmbd) });
  const expected = reference();
  assert.ok(Math.abs(lossValue - expected) / expected < 1e-5, `loss ${lossValue} vs reference ${expected}`);

  assertParameterGradients(model.params, p, reference);
}

describe("vision models against a float64 reference", () => {
  test("ViT (bidirectional attention) + MLP projector in GPT-2: loss and every parameter gradient", () => {
    checkVisionModel(
      makeConfig({ arch: "gpt2", vocabSize: 11, blockSize: 16, nLayer: 1, nHead: 2, nEmbd: 8, vision: TINY_VISION }),
    );
  });
  test("ViT + linear projector in Llama: loss and every parameter gradient", () => {
    checkVisionModel(
      makeConfig({
        arch: "llama",
        vocabSize: 11,
        blockSize: 16,
        nLayer: 1,
        nHead: 2,
        nEmbd: 8,
        intermediateSize: 12,
        vision: { ...TINY_VISION, projector: "linear" },
      }),
    );
  });
});

describe("images in", () => {
  const vision = defaultVision({ imageSize: 8, patchSize: 4 });
  test("decoded, resized to the model's size, normalised per channel; corrupt and oversized images refused", async () => {
    // A 64 x 48 picture: left half red, right half blue, resized to 8 x 8.
    const png = drawShapes(
      [
        { shape: "square", colour: "red", x: 16, y: 16, r: 40 },
        { shape: "square", colour: "blue", x: 72, y: 16, r: 40 },
      ],
      64,
    );
    const px = await imagePixels(png, vision, "test.png");
    assert.equal(px.length, pixelsPerImage(vision));
    const at = (c: number, y: number, x: number) => px[c * 64 + y * 8 + x] as number;
    const red = Number.parseInt(COLOURS.red.slice(1, 3), 16) / 255;
    assert.ok(Math.abs(at(0, 3, 0) - (red - 0.5) / 0.5) < 0.02, `red channel ${at(0, 3, 0)}`);
    assert.ok(at(2, 3, 7) > at(0, 3, 7), "the right side is blue");
    await assert.rejects(imagePixels(Buffer.from("not an image at all"), vision, "bad.png"), /bad\.png: not an image/);
    const truncated = png.subarray(0, 60);
    await assert.rejects(imagePixels(truncated, vision, "cut.png"), /cut\.png/);
  });
});

/** A GPT-2 or Llama with a tiny vision encoder, and a prompt with an image in its middle. */
function tinyVisionModel(arch: "gpt2" | "llama") {
  const v = defaultVision({ imageSize: 8, patchSize: 4, hidden: 16, layers: 1, heads: 2, intermediate: 32 });
  const config = makeConfig({ arch, vocabSize: 13, blockSize: 32, nLayer: 2, nHead: 2, nEmbd: 16, vision: v });
  const model = initModel(config, 3);
  const pixels = (seed: number) => {
    const g = rng(seed);
    return Float32Array.from({ length: pixelsPerImage(v) }, () => g() * 2 - 1);
  };
  const prompt = [1, 2, 3, ...new Array<number>(patchesPerImage(v)).fill(0), 4, 5];
  return { model, v, prompt, pixels, start: 3 };
}

describe("images through the inference engine", () => {
  for (const arch of ["gpt2", "llama"] as const)
    test(`${arch}: a prefill with an image gives the full forward pass's next-token distribution`, () => {
      const { model, v, prompt, pixels, start } = tinyVisionModel(arch);
      const image = pixels(1);
      const rows = Int32Array.from({ length: patchesPerImage(v) }, (_, k) => start + k);
      const logits = noGrad(() =>
        model.forward(Int32Array.from(prompt), 1, prompt.length, { images: { pixels: image, count: 1, rows } }),
      );
      const V = model.config.vocabSize;
      const last = logits.data.subarray((prompt.length - 1) * V, prompt.length * V);
      const max = Math.max(...last);
      const lse = max + Math.log(last.reduce((s, x) => s + Math.exp(x - max), 0));
      const best = last.indexOf(max);
      const engine = new Engine(
        model,
        { vocabSize: V, stopIds: new Set(), streamDecoder: () => ({ push: () => "", flush: () => "" }) },
        2,
      );
      const r = engine.generate(prompt, { temperature: 0, maxTokens: 1 }, undefined, {
        pixels: image,
        count: 1,
        starts: [start],
      });
      assert.equal(r.ids[0], best);
      assert.ok(Math.abs((r.logprobs[0] as number) - (max - lse)) < 1e-4, `${r.logprobs[0]} vs ${max - lse}`);
    });

  test("the prompt cache never serves one image's patches for another", () => {
    const { model, prompt, pixels, start } = tinyVisionModel("gpt2");
    const tokenizer = {
      vocabSize: 13,
      stopIds: new Set<number>(),
      streamDecoder: () => ({ push: () => "", flush: () => "" }),
    };
    const ask = (engine: Engine, seed: number) =>
      engine.generate(prompt, { temperature: 0, maxTokens: 3 }, undefined, {
        pixels: pixels(seed),
        count: 1,
        starts: [start],
      }).logprobs;
    const shared = new Engine(model, tokenizer, 1);
    ask(shared, 1);
    const served = ask(shared, 2);
    const fresh = ask(new Engine(model, tokenizer, 1), 2);
    const otherImage = ask(new Engine(model, tokenizer, 1), 1);
    const gap = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - (b[i] as number))));
    // The cached text before the image runs apart from the rest, in shorter matmuls, so the
    // two can round differently (they do on AVX2 CPUs); another image's answer is far off.
    assert.ok(gap(served, fresh) < 1e-6, `served ${served} vs fresh ${fresh}`);
    assert.ok(gap(otherImage, fresh) > 1e-4, `the other image's ${otherImage} vs ${fresh}`);
  });

  test("a model without a vision encoder, or images past the prompt, are refused clearly", () => {
    const { model, prompt, pixels } = tinyVisionModel("gpt2");
    const tokenizer = {
      vocabSize: 13,
      stopIds: new Set<number>(),
      streamDecoder: () => ({ push: () => "", flush: () => "" }),
    };
    const text = initModel(makeConfig({ arch: "gpt2", vocabSize: 13, blockSize: 32, nLayer: 1, nHead: 2, nEmbd: 16 }));
    const image = { pixels: pixels(1), count: 1, starts: [3] };
    assert.throws(() => new Engine(text, tokenizer, 1).generate(prompt, {}, undefined, image), /cannot see images/);
    assert.throws(
      () => new Engine(model, tokenizer, 1).generate(prompt, {}, undefined, { ...image, starts: [prompt.length - 2] }),
      /runs past the prompt/,
    );
  });
});

/** "What colour is it?" about one shape; held out: triangles, which training never shows. */
function colourLine(shape: (typeof SHAPES)[number], colour: string, g: () => number): string {
  const png = drawShapes([{ shape, colour: colour as never, x: 20 + g() * 24, y: 20 + g() * 24, r: 12 + g() * 6 }], 64);
  return `${JSON.stringify({
    messages: [
      {
        role: "user",
        content: [
          { type: "text", text: "What colour is it?" },
          { type: "image_url", image_url: { url: pngDataUrl(png) } },
        ],
      },
      { role: "assistant", content: colour },
    ],
    meta: { task: "colour" },
  })}\n`;
}

describe("a vision model trained on image conversations", () => {
  let dir: string;
  let model: string;
  let server: RunningServer | undefined;
  before(async () => {
    dir = tempDir("vision");
    const base = await tinyChatModel(0, 128);
    // A tiny encoder to start from (--vision-encoder DIR takes it from a vision model directory).
    const donor = addVision(loadModel(base), defaultVision({ hidden: 32, layers: 2, heads: 2, intermediate: 64 }), 1);
    writeDirAtomic(join(dir, "donor"), { ...modelFiles(donor), ...tokenizerFilesOf(base) });
    const g = rng(9);
    const lines = (shapes: readonly (typeof SHAPES)[number][], n: number) =>
      Array.from({ length: n }, (_, i) =>
        colourLine(shapes[i % shapes.length] as never, COLOUR_NAMES[Math.floor(g() * 4)] as string, g),
      ).join("");
    writeFileSync(join(dir, "train.jsonl"), lines(["circle", "square"], 240));
    writeFileSync(join(dir, "heldout.jsonl"), lines(["triangle"], 40));
    model = join(dir, "model");
    await runSftCommand({
      ...sftDefaults,
      model: base,
      visionEncoder: join(dir, "donor"),
      data: [join(dir, "train.jsonl")],
      mode: "full",
      epochs: 15,
      lr: 1e-3,
      out: model,
    });
  });
  after(async () => {
    await server?.close();
  });

  test("answers held-out image questions far above the same model without the image", async () => {
    const m = loadModel(model);
    assert.ok(m.config.vision, "the saved model has its vision_config");
    const codec = loadChatCodec(model);
    const tasks = readConversations([join(dir, "heldout.jsonl")]);
    const answers = await answerChatTasks(m, codec, tasks);
    const seen = scoreAnswers(answers).at(-1)?.accuracy ?? 0;
    const blind = scoreAnswers(await answerChatTasks(m, codec, tasks, { withoutImages: true })).at(-1)?.accuracy ?? 0;
    assert.ok(seen >= 0.9, `held-out colour accuracy with the image ${seen}`);
    assert.ok(blind <= 0.5, `without the image ${blind}`);
  });

  test("llmfab chat --image shows the picture to the vision model", () => {
    const image = join(dir, "blue.png");
    writeFileSync(image, drawShapes([{ shape: "triangle", colour: "blue", x: 30, y: 34, r: 15 }], 64));
    const r = llmfab(
      ["chat", "--model", model, "--temperature", "0", "--max-tokens", "4", "--no-date", "--image", image],
      `/image ${join(dir, "missing.png")}\nWhat colour is it?\n/exit\n`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /blue\.png goes with your next message/);
    assert.match(r.stdout, /missing\.png: cannot read/);
    assert.match(r.stdout, /> blue\n/);
  });

  test("--stage projector trains the projector only", async () => {
    const out = join(dir, "projector");
    await runSftCommand({
      ...sftDefaults,
      model,
      data: [join(dir, "train.jsonl")],
      mode: "full",
      stage: "projector",
      epochs: 0.1,
      out,
    });
    const before = loadModel(model).params;
    for (const [name, t] of loadModel(out).params) {
      const changed = !t.data.every((x, i) => x === before.get(name)?.data[i]);
      assert.equal(changed, name.startsWith("multi_modal_projector."), `${name} changed: ${changed}`);
    }
  });

  test("an image_url request through the official openai client gets the answer; bad images are 400s", async () => {
    server = await startServer({ model, host: "127.0.0.1", port: 0, slots: 2, maxQueue: 4, threads: 1 });
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "none", maxRetries: 0 });
    const g = rng(21);
    let right = 0;
    for (const colour of COLOUR_NAMES) {
      const png = drawShapes([{ shape: "triangle", colour, x: 32, y: 30, r: 14 + g() * 2 }], 64);
      const r = await client.chat.completions.create({
        model: "m",
        temperature: 0,
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "What colour is it?" },
              { type: "image_url", image_url: { url: pngDataUrl(png) } },
            ],
          },
        ],
      });
      if (r.choices[0]?.message.content === colour) right++;
    }
    assert.ok(right >= 3, `${right} of 4 colours named`);
    const bad = client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }] }],
    });
    await assert.rejects(bad, (e: { status?: number; message?: string }) => {
      assert.equal(e.status, 400);
      assert.match(e.message ?? "", /messages\.0\.content\.0\.image_url\.url/);
      return true;
    });
    const png = pngDataUrl(drawShapes([], 64));
    const many = client.chat.completions.create({
      model: "m",
      messages: [
        {
          role: "user",
          content: Array.from({ length: 8 }, () => ({ type: "image_url" as const, image_url: { url: png } })),
        },
      ],
    });
    await assert.rejects(many, (e: { status?: number; message?: string }) => {
      assert.equal(e.status, 400);
      assert.match(e.message ?? "", /context/);
      return true;
    });
    const typed = client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: [{ type: "text", text: `look ${IMAGE_PLACEHOLDER}` }] }],
    });
    await assert.rejects(typed, /image_url parts/);
  });
});

describe("llmfab synth --vision", () => {
  test("held-out pictures are combinations training never shows; records read back with their images", async () => {
    const { train, heldout } = synthesizeVision({ scenes: 300, mnist: 200, heldoutPerTask: 20, heldoutMnist: 100 }, 4);
    const pairs = (list: typeof train) =>
      new Set(list.flatMap((c) => (c.meta.shapes ?? []).map((it) => `${it.colour} ${it.shape}`)));
    assert.equal(pairs(train).size, 9, "training shows each shape in three colours");
    for (const p of pairs(heldout)) assert.ok(!pairs(train).has(p), `held-out ${p} is in training`);
    const numbers = (list: typeof train) =>
      new Set(list.filter((c) => c.meta.task === "number").map((c) => c.messages[1]?.content));
    for (const n of numbers(heldout)) assert.ok(!numbers(train).has(n), `held-out number ${n} is in training`);
    assert.deepEqual([...new Set(heldout.map((c) => c.meta.task))].sort(), [
      "colour",
      "count",
      "mnist",
      "number",
      "shape",
      "where",
    ]);
    const dir = tempDir("synth-vision");
    const path = join(dir, "vision.jsonl");
    writeFileSync(path, train.map((c) => `${JSON.stringify(visionRecord(c))}\n`).join(""));
    const read = readConversations([path]);
    assert.equal(read.length, train.length);
    const first = read[0]?.messages[0];
    assert.equal(first?.images?.length, 1);
    assert.ok(first?.content.includes(IMAGE_PLACEHOLDER));
    const url = first?.images?.[0] ?? "";
    const px = await imagePixels(Buffer.from(url.split(",")[1] ?? "", "base64"), defaultVision(), "x");
    assert.equal(px.length, pixelsPerImage(defaultVision()));
  });

  test("MNIST: training and held-out digits never overlap", () => {
    const key = (p: Float32Array) => Buffer.from(p.buffer).toString("base64");
    const trainKeys = new Set(mnistDigits("train").map((d) => key(d.pixels)));
    const test = mnistDigits("test");
    assert.equal(trainKeys.size + test.length, 10_000);
    assert.ok(test.every((d) => !trainKeys.has(key(d.pixels))));
  });
});
