// The copy probe: its scoring against predictors whose answers are known.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { copyProbe, modelPredict, type Predict } from "../src/eval/copy.ts";
import { makeConfig } from "../src/model/config.ts";
import { initModel } from "../src/model/model.ts";
import { rng } from "./helpers.ts";

const V = 50;
const r = rng(5);
const text = Array.from({ length: 2000 }, () => 1 + Math.floor(r() * (V - 1)));

/** One-hot logits: at each position, the token chosen by `pick`. */
function oracle(pick: (idx: Int32Array, t: number) => number): Predict {
  return (idx) => {
    const logits = new Float32Array(idx.length * V);
    for (let t = 0; t < idx.length; t++) logits[t * V + pick(idx, t)] = 1;
    return logits;
  };
}

describe("copy probe", () => {
  test("a perfect copier scores 100% on the second copy; a predictor of the next token, 100% on both", () => {
    const L = 20;
    const copier = copyProbe(
      oracle((idx, t) => (t >= L ? (idx[t - L + 1] as number) : 0)),
      text,
      V,
      { length: L },
    );
    assert.equal(copier.secondCopy, 1);
    assert.equal(copier.firstCopy, 0);
    const seer = copyProbe(
      oracle((idx, t) => (idx[t + 1] ?? 0) as number),
      text,
      V,
      { length: L },
    );
    assert.deepEqual([seer.firstCopy, seer.secondCopy], [1, 1]);
  });

  test("runs a real model and stays within [0, 1]", () => {
    const model = initModel(
      makeConfig({ arch: "gpt2", vocabSize: V, blockSize: 64, nLayer: 1, nHead: 2, nEmbd: 16 }),
      1,
    );
    const c = copyProbe(modelPredict(model), text, V, { windows: 3, length: 30 });
    assert.ok(c.firstCopy >= 0 && c.firstCopy <= 1 && c.secondCopy >= 0 && c.secondCopy <= 1);
    assert.deepEqual(c, copyProbe(modelPredict(model), text, V, { windows: 3, length: 30 }), "deterministic");
    assert.throws(() => copyProbe(modelPredict(model), text.slice(0, 10), V), /needs more than 40 tokens/);
  });
});
