// The inference engine: the KV cache gives the same greedy tokens as full
// recomputation, batching and prefix reuse change nothing, sampling options behave.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Engine, type EngineTokenizer } from "../src/infer/engine.ts";
import { DEFAULT_SAMPLING, sampleNext } from "../src/infer/sampling.ts";
import { makeConfig } from "../src/model/config.ts";
import { generate } from "../src/model/generate.ts";
import { initModel, type Model } from "../src/model/model.ts";
import { Rng } from "../src/nn/random.ts";
import {
  cpuHasBf16,
  type FrozenWeights,
  linear,
  noGrad,
  recyclingBuffers,
  setPrecision,
  Tensor,
  withFrozenWeights,
} from "../src/tensor/index.ts";

const configs = {
  gpt2: makeConfig({ arch: "gpt2", vocabSize: 50, blockSize: 48, nLayer: 2, nHead: 2, nEmbd: 32 }),
  llama: makeConfig({
    arch: "llama",
    vocabSize: 50,
    blockSize: 48,
    nLayer: 2,
    nHead: 4,
    nKvHead: 2,
    nEmbd: 32,
    intermediateSize: 64,
  }),
};

/** Token ids as letters, so that text and stop strings can be checked. */
const letters: EngineTokenizer = {
  vocabSize: 1 << 20, // every id decodes
  stopIds: new Set(),
  streamDecoder: () => ({
    push: (ids) => ids.map((i) => String.fromCharCode(65 + (i % 26))).join(""),
    flush: () => "",
  }),
};

function sharpModel(config: (typeof configs)["gpt2"], seed: number): Model {
  // Larger weights make the logits decisive, so greedy choices are not near-ties.
  const model = initModel(config, seed);
  for (const t of model.params.values())
    if (t.shape.length === 2) for (let i = 0; i < t.size; i++) t.data[i] = (t.data[i] as number) * 8;
  return model;
}

describe("KV-cache engine", () => {
  for (const [arch, config] of Object.entries(configs))
    test(`${arch}: greedy tokens equal full recomputation`, () => {
      const model = sharpModel(config, 11);
      const prompt = [3, 17, 5, 9, 22];
      const reference = [
        ...generate(model, Int32Array.from(prompt), { maxTokens: 30, temperature: 0, topK: 0, seed: 0 }),
      ];
      const engine = new Engine(model, letters, 2);
      const r = engine.generate(prompt, { temperature: 0, maxTokens: 30 });
      assert.deepEqual(r.ids, reference);
      assert.equal(r.finishReason, "length");
    });

  test("in bf16, weights converted once for an engine give the same products as rounding per call", () => {
    const r = new Rng(3);
    const x = new Tensor(
      Float32Array.from({ length: 5 * 64 }, () => r.normal()),
      [5, 64],
      false,
    );
    const w = new Tensor(
      Float32Array.from({ length: 96 * 64 }, () => r.normal()),
      [96, 64],
      false,
    );
    setPrecision("bf16");
    try {
      const perCall = noGrad(() => Float32Array.from(linear(x, w, null).data));
      const cache: FrozenWeights = new WeakMap();
      const once = noGrad(() => withFrozenWeights(cache, () => Float32Array.from(linear(x, w, null).data)));
      assert.deepEqual(once, perCall);
      assert.equal(cache.has(w.data), cpuHasBf16(), "the bf16 copy is kept where bf16 is native");
    } finally {
      setPrecision("fp32");
    }
  });

  test("sequences decoded together equal the same sequences alone (prompts of one length prefilled together)", () => {
    const model = sharpModel(configs.llama, 5);
    const prompts = [[1, 2, 3], [40, 41, 42, 43, 44, 45], [7], [9, 8, 7], [30, 31, 32, 33, 34, 35], [9, 8, 7]];
    const alone = prompts.map((p) => new Engine(model, letters, 1).generate(p, { temperature: 0, maxTokens: 12 }).ids);
    const engine = new Engine(model, letters, prompts.length);
    const together: number[][] = [];
    prompts.forEach((prompt, i) => {
      engine.submit({
        prompt,
        options: { temperature: 0, maxTokens: 12 },
        onDone: (r) => (together[i] = r.ids),
        onError: assert.fail,
      });
    });
    engine.runToCompletion();
    assert.deepEqual(together, alone);
  });

  test("a follow-up turn reuses the cached prefix and gives the same tokens", () => {
    const model = sharpModel(configs.gpt2, 8);
    const engine = new Engine(model, letters, 1);
    const first = engine.generate([4, 5, 6], { temperature: 0, maxTokens: 5 });
    const followUp = [4, 5, 6, ...first.ids, 9, 10];
    const second = engine.generate(followUp, { temperature: 0, maxTokens: 8 });
    assert.equal(second.cachedTokens, 3 + first.ids.length - 1);
    assert.deepEqual(
      second.ids,
      new Engine(model, letters, 1).generate(followUp, { temperature: 0, maxTokens: 8 }).ids,
    );
  });

  test("a stop token ends the generation and is reported, not included", () => {
    const model = sharpModel(configs.gpt2, 11);
    const prompt = [3, 17, 5, 9, 22];
    const free = new Engine(model, letters, 1).generate(prompt, { temperature: 0, maxTokens: 30 });
    const stop = free.ids[3] as number;
    const stopping = { ...letters, stopIds: new Set([stop]) };
    const r = new Engine(model, stopping, 1).generate(prompt, { temperature: 0, maxTokens: 30 });
    assert.equal(r.finishReason, "stop");
    assert.equal(r.stopId, stop);
    assert.deepEqual(r.ids, free.ids.slice(0, free.ids.indexOf(stop)));
  });

  test("stop strings end the text before them; the context bounds the length", () => {
    const model = sharpModel(configs.gpt2, 3);
    const engine = new Engine(model, letters, 1);
    const full = engine.generate([1, 2], { temperature: 0, maxTokens: 20 });
    const stop = full.text.slice(5, 7);
    const cut = engine.generate([1, 2], { temperature: 0, maxTokens: 20, stop: [stop] });
    assert.equal(cut.finishReason, "stop");
    assert.equal(cut.text, full.text.slice(0, full.text.indexOf(stop)));
    const long = engine.generate([1, 2], { temperature: 0, maxTokens: 1000 });
    assert.equal(long.ids.length, 48 - 2); // prompt + output fill the context exactly
    assert.equal(long.finishReason, "length");
  });

  test("the same seed gives the same sample; prompts beyond the context are refused", () => {
    const model = sharpModel(configs.llama, 2);
    const a = new Engine(model, letters, 1).generate([1], { temperature: 1.5, seed: 42, maxTokens: 10 });
    const b = new Engine(model, letters, 1).generate([1], { temperature: 1.5, seed: 42, maxTokens: 10 });
    assert.deepEqual(a.ids, b.ids);
    assert.throws(
      () =>
        new Engine(model, letters, 1).submit({
          prompt: new Array(48).fill(1),
          options: {},
          onDone: () => {},
          onError: assert.fail,
        }),
      /the prompt has 48 tokens; the context holds 48/,
    );
    // A tokenizer larger than the model's vocabulary: a clear error, not a read past the embeddings.
    let error: Error | null = null;
    const engine = new Engine(model, letters, 1);
    engine.submit({ prompt: [3, 60], options: {}, onDone: () => {}, onError: (e) => (error = e) });
    engine.runToCompletion();
    assert.match(String(error), /token id 60 is outside the model's vocabulary of 50 embeddings/);
  });
});

describe("buffers of an inference step", () => {
  test("go back to the pool when the step ends, except what it returns", () => {
    const n = 1 << 15;
    let scratch: ArrayBufferLike | null = null;
    const kept = recyclingBuffers(
      () => {
        const a = Tensor.empty([n]);
        scratch = a.data.buffer;
        const b = Tensor.empty([n]);
        b.data.fill(2);
        return b;
      },
      (t) => [t.data.buffer],
    );
    const next = Tensor.empty([n]);
    assert.equal(next.data.buffer, scratch, "the scratch buffer is reused");
    next.data.fill(7);
    assert.ok(
      kept.data.every((x) => x === 2),
      "the returned tensor is untouched",
    );
  });
});

describe("sampling", () => {
  const logits = Float32Array.from([1, 3, 2.5, -1, 0.5]);
  const greedy = { ...DEFAULT_SAMPLING, temperature: 0 };
  test("top-k 1, a tiny top-p and min-p 1 all reduce to greedy", () => {
    for (const p of [{ topK: 1 }, { topP: 0.01 }, { minP: 1 }]) {
      for (let seed = 0; seed < 20; seed++)
        assert.equal(sampleNext(logits, { ...DEFAULT_SAMPLING, temperature: 1, ...p }, new Map(), new Rng(seed)).id, 1);
    }
  });

  test("penalties push repeated tokens down; logprobs are log-softmax of the raw logits", () => {
    const penalized = sampleNext(logits, { ...greedy, presencePenalty: 1 }, new Map([[1, 1]]), new Rng(0));
    assert.equal(penalized.id, 2);
    assert.equal(sampleNext(logits, { ...greedy, repetitionPenalty: 2 }, new Map([[1, 3]]), new Rng(0)).id, 2);
    const lse = Math.log([...logits].reduce((a, z) => a + Math.exp(z), 0));
    assert.ok(Math.abs(penalized.logprob - (2.5 - lse)) < 1e-9);
  });
});
