// bf16 storage under native bf16: kernels that take and write bf16 at any argument, tensors
// stored in bf16 (norm, GELU and up-projection outputs), and gradients written in bf16 for
// the matmuls that read them. Each bf16 result must equal its fp32 counterpart rounded once.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { gemm, native } from "../src/backend/native.ts";
import * as ops from "../src/tensor/index.ts";
import { assertClose, randn } from "./helpers.ts";

const skip = ops.cpuHasBf16() ? false : "no native bf16 on this CPU";

function bf16Of(x: Float32Array): Uint16Array {
  const h = new Uint16Array(x.length);
  native.toBf16(x, h, x.length);
  return h;
}

function widened(h: Uint16Array): Float32Array {
  const f = new Float32Array(h.length);
  native.fromBf16(h, f, h.length);
  return f;
}

/** Runs fn with precision bf16, back to fp32 after. */
function inBf16<T>(fn: () => T): T {
  ops.setPrecision("bf16");
  try {
    return fn();
  } finally {
    ops.setPrecision("fp32");
  }
}

describe("kernels with bf16 inputs and outputs", { skip }, () => {
  const n = 5000; // not a multiple of the 1024-value chunks nor of 32
  const x = Float32Array.from(randn(n, 1, 2));
  const dout = Float32Array.from(randn(n, 2));
  const xHalf = bf16Of(x);
  const doutHalf = bf16Of(dout);

  test("GELU forward: a bf16 x is read widened, a bf16 output is the fp32 one rounded", () => {
    for (const xIn of [x, xHalf]) {
      const expected = new Float32Array(n);
      native.geluForward(expected, xIn instanceof Uint16Array ? widened(xIn) : xIn, n);
      const f32 = new Float32Array(n);
      native.geluForward(f32, xIn, n);
      assert.deepEqual(f32, expected);
      const h = new Uint16Array(n);
      native.geluForward(h, xIn, n);
      assert.deepEqual(h, bf16Of(expected));
    }
  });

  test("GELU backward at every combination of fp32 and bf16", () => {
    for (const g of [dout, doutHalf])
      for (const xIn of [x, xHalf]) {
        const expected = new Float32Array(n);
        const wide = (a: Float32Array | Uint16Array) => (a instanceof Uint16Array ? widened(a) : a);
        native.geluBackward(expected, wide(g), wide(xIn), n, false);
        const h = new Uint16Array(n);
        native.geluBackward(h, g, xIn, n, false);
        assert.deepEqual(h, bf16Of(expected));
        const acc = Float32Array.from(dout);
        native.geluBackward(acc, g, xIn, n, true);
        assertClose(
          acc,
          dout.map((d, i) => d + (expected[i] as number)),
          1e-6,
          "accumulated GELU gradient",
        );
      }
    assert.throws(() => native.geluBackward(new Uint16Array(n), dout, x, n, true), /bf16 gradient cannot be added/);
  });

  test("LayerNorm and RMSNorm with a bf16 output", () => {
    const [N, C] = [7, 96];
    const rows = Float32Array.from(randn(N * C, 3));
    const w = Float32Array.from(randn(C, 4));
    const b = Float32Array.from(randn(C, 5));
    const stats = () => [new Float32Array(N), new Float32Array(N)] as const;
    const f32 = new Float32Array(N * C);
    native.layerNormForward(f32, ...stats(), rows, w, b, N, C, 1e-5);
    const h = new Uint16Array(N * C);
    native.layerNormForward(h, ...stats(), rows, w, b, N, C, 1e-5);
    assert.deepEqual(h, bf16Of(f32));
    native.rmsNormForward(f32, new Float32Array(N), rows, w, N, C, 1e-6);
    native.rmsNormForward(h, new Float32Array(N), rows, w, N, C, 1e-6);
    assert.deepEqual(h, bf16Of(f32));
  });

  test("a residual add fused with its norm equals the add then the norm, with y and the output in bf16", () => {
    const [N, C] = [7, 96];
    const x = Float32Array.from(randn(N * C, 6));
    const yHalf = bf16Of(Float32Array.from(randn(N * C, 7)));
    const w = Float32Array.from(randn(C, 8));
    const b = Float32Array.from(randn(C, 9));
    const expectedSum = new Float32Array(N * C);
    native.add(expectedSum, x, yHalf, N * C);
    for (const out of [new Float32Array(N * C), new Uint16Array(N * C)]) {
      const expected = out.slice();
      const [m1, r1, m2, r2] = [0, 1, 2, 3].map(() => new Float32Array(N));
      native.layerNormForward(expected, m1!, r1!, expectedSum, w, b, N, C, 1e-5);
      const sum = new Float32Array(N * C);
      native.layerNormForward(out, m2!, r2!, x, w, b, N, C, 1e-5, sum, yHalf);
      assert.deepEqual(sum, expectedSum);
      assert.deepEqual(out, expected);
      assert.deepEqual([m2, r2], [m1, r1]);
      native.rmsNormForward(expected, r1!, expectedSum, w, N, C, 1e-6);
      sum.fill(0);
      native.rmsNormForward(out, r2!, x, w, N, C, 1e-6, sum, yHalf);
      assert.deepEqual(sum, expectedSum);
      assert.deepEqual(out, expected);
      assert.deepEqual(r2, r1);
    }
  });

  test("cross-entropy: the logits' gradient in bf16 (ignored rows zero), and bf16 logits", () => {
    const [N, V] = [5, 2100]; // rows longer than one 1024-column chunk, the last partial
    const logits = Float32Array.from(randn(N * V, 15, 3));
    const targets = Int32Array.from([0, 2099, -1, 1024, 1500]);
    const lse = new Float32Array(N);
    native.crossEntropyForward(new Float32Array(N), lse, logits, targets, N, V, -1);
    const f32 = new Float32Array(N * V);
    native.crossEntropyBackward(f32, logits, lse, targets, N, V, -1, 0.25, false);
    const h = new Uint16Array(N * V).fill(0x3f80);
    native.crossEntropyBackward(h, logits, lse, targets, N, V, -1, 0.25, false);
    assert.deepEqual(h, bf16Of(f32));
    assert.ok(
      h.subarray(2 * V, 3 * V).every((x) => x === 0),
      "the ignored row is zero",
    );
    // bf16 logits (a head stored in bf16) are read widened, forward and backward.
    const half = bf16Of(logits);
    const [losses, lseHalf] = [new Float32Array(N), new Float32Array(N)];
    native.crossEntropyForward(losses, lseHalf, half, targets, N, V, -1);
    const [wideLosses, wideLse] = [new Float32Array(N), new Float32Array(N)];
    native.crossEntropyForward(wideLosses, wideLse, widened(half), targets, N, V, -1);
    assert.deepEqual([losses, lseHalf], [wideLosses, wideLse]);
    for (const out of [new Float32Array(N * V), new Uint16Array(N * V)]) {
      const expected = out instanceof Float32Array ? new Float32Array(N * V) : new Uint16Array(N * V);
      native.crossEntropyBackward(expected, widened(half), wideLse, targets, N, V, -1, 0.25, false);
      native.crossEntropyBackward(out, half, lseHalf, targets, N, V, -1, 0.25, false);
      assert.deepEqual(out, expected);
    }
    assert.throws(
      () => native.crossEntropyBackward(h, logits, lse, targets, N, V, -1, 0.25, true),
      /bf16 gradient cannot be added/,
    );
  });

  test("a matmul with a bf16 output rounds its fp32 result once", () => {
    const [M, N, K] = [33, 48, 64];
    const a = bf16Of(Float32Array.from(randn(M * K, 6)));
    const b = bf16Of(Float32Array.from(randn(K * N, 7)));
    const bias = Float32Array.from(randn(N, 8));
    const f32 = new Float32Array(M * N);
    gemm({ out: f32, a, b, bias, M, N, K, bf16: true });
    const h = new Uint16Array(M * N);
    gemm({ out: h, a, b, bias, M, N, K, bf16: true });
    const got = widened(h);
    // oneDNN may sum in another order for another output type: one bf16 step apart at most.
    for (let i = 0; i < f32.length; i++) {
      const want = f32[i] as number;
      assert.ok(Math.abs((got[i] as number) - want) <= Math.abs(want) / 128 + 1e-6, `element ${i}`);
    }
    assert.throws(() => gemm({ out: h, a, b, M, N, K, bf16: true, accumulate: true }), /cannot be added to/);
  });
});

describe("tensors stored in bf16", { skip }, () => {
  test("data widens the bf16 values; views share them", () => {
    const values = Float32Array.from(randn(64, 9));
    const t = new ops.Tensor(bf16Of(values), [8, 8]);
    const v = t.view([64]);
    assert.equal(v.half, t.half);
    assert.deepEqual(t.stored, bf16Of(values));
    assert.deepEqual(v.data, widened(bf16Of(values)));
    assert.equal(t.data, v.data);
  });

  // An MLP as GPT-2's (up projection stored in bf16, GELU, down projection, residual), with
  // the up projection's output also read a second time (scaled): its gradient is first
  // written in bf16 by one reader and must then be widened and added to by the other.
  test("an MLP in bf16 follows fp32, forward and gradients, with a linear output read twice", () => {
    const [M, K, N] = [24, 32, 96];
    const inputs = [randn(M * K, 10), randn(N * K, 11, 0.2), randn(K * N, 12, 0.2), randn(K * N, 13, 0.2)];
    const shapes = [
      [M, K],
      [N, K],
      [K, N],
      [K, N],
    ];
    const seed = Float32Array.from(randn(M * K, 14));
    const run = () => {
      const [x, w1, w2, w3] = inputs.map((v, i) => new ops.Tensor(Float32Array.from(v), shapes[i] as number[], true));
      const h = ops.linear(x!, w1!, null, "out-in", { half: true });
      // Recorded before GELU, so its backward runs after GELU's has written h's gradient.
      const side = ops.linear(ops.scale(h, 0.5), w3!, null, "out-in");
      const mlp = ops.linear(ops.gelu(h), w2!, null, "out-in", { half: true }); // the residual add reads bf16
      const out = ops.add(ops.add(x!, mlp), side);
      const y = Float32Array.from(out.data);
      const stored = h.half !== null && mlp.half !== null;
      ops.backward(out, seed);
      return { y, stored, grads: [x, w1, w2, w3].map((t) => Float32Array.from(t!.grad ?? [])) };
    };
    const fp32 = run();
    const bf16 = inBf16(run);
    assert.equal(fp32.stored, false);
    assert.equal(bf16.stored, true, "the up and down projections' outputs were stored in bf16");
    assertClose(bf16.y, fp32.y, 1e-2, "bf16 MLP forward");
    fp32.grads.forEach((g, i) => {
      assertClose(bf16.grads[i] as Float32Array, g, 3e-2, `bf16 gradient of input ${i}`);
    });
  });

  // GPT-2's attention block in training: the fused qkv projection stored in bf16, attention
  // reading it as stored and writing its output in bf16, qkv's gradient written in bf16 by
  // the attention backward (T = 100: two 64-row tiles, the second partial).
  test("the head's blocked cross-entropy equals the head then cross-entropy in bf16: exactly in one block", () => {
    const [N, C, V] = [70, 48, 300];
    const targets = Int32Array.from({ length: N }, (_, i) => (i % 9 === 4 ? -1 : (i * 37) % V));
    const run = (fused: boolean, blockRows: number) =>
      inBf16(() => {
        const x = new ops.Tensor(Float32Array.from(randn(N * C, 50)), [N, C], true);
        const w = new ops.Tensor(Float32Array.from(randn(V * C, 51, 0.2)), [V, C], true);
        const loss = fused
          ? ops.linearCrossEntropy(x, w, targets, { blockRows })
          : ops.crossEntropy(ops.linear(x, w, null), targets);
        const value = Float32Array.from(loss.data);
        ops.backward(loss);
        return [value, x.grad, w.grad].map((a) => Float32Array.from(a ?? []));
      });
    const unfused = run(false, 0);
    assert.deepEqual(run(true, N), unfused);
    const blocked = run(true, 32); // three blocks: the weight's gradient is summed in another order
    for (const [i, a] of blocked.entries()) assertClose(a, unfused[i] as Float32Array, 1e-5, `output ${i}`);
  });

  test("attention over a bf16 qkv follows fp32, forward and gradients", () => {
    const [B, T, H, D] = [2, 100, 2, 64];
    const C = H * D;
    const inputs = [randn(B * T * C, 20), randn(3 * C * C, 21, 0.1), randn(C * C, 22, 0.1)];
    const shapes = [
      [B, T, C],
      [3 * C, C],
      [C, C],
    ];
    const seed = Float32Array.from(randn(B * T * C, 23));
    const run = () => {
      const [x, wqkv, wo] = inputs.map((v, i) => new ops.Tensor(Float32Array.from(v), shapes[i] as number[], true));
      const qkv = ops.linear(x!, wqkv!, null, "out-in", { half: true });
      const att = ops.attentionQkv(qkv, B, T, H);
      const out = ops.linear(att, wo!, null, "out-in");
      const y = Float32Array.from(out.data);
      const stored = qkv.half !== null && att.half !== null;
      ops.backward(out, seed);
      return { y, stored, grads: [x, wqkv, wo].map((t) => Float32Array.from(t!.grad ?? [])) };
    };
    const fp32 = run();
    const bf16 = inBf16(run);
    assert.equal(bf16.stored, true, "qkv and the attention output were stored in bf16");
    assertClose(bf16.y, fp32.y, 2e-2, "bf16 attention block forward");
    fp32.grads.forEach((g, i) => {
      assertClose(bf16.grads[i] as Float32Array, g, 3e-2, `bf16 gradient of input ${i}`);
    });
  });
});
