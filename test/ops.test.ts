import assert from "node:assert/strict";
// Every op: forward against a float64 reference, backward against finite differences.
import { describe, test } from "node:test";
import { native } from "../src/backend/native.ts";
import * as ops from "../src/tensor/index.ts";
import { assertClose, gradCheck, randn, relError } from "./helpers.ts";
import * as ref from "./reference/ops.ts";

describe("native matmul (oneDNN)", () => {
  for (const transA of [false, true])
    for (const transB of [false, true])
      test(`batched, transA=${transA} transB=${transB}, with bias and accumulation`, () => {
        const [batch, M, N, K] = [3, 5, 7, 9];
        const a = randn(batch * M * K, 1);
        const b = randn(batch * K * N, 2);
        const bias = randn(N, 3);
        const c0 = randn(batch * M * N, 4);
        const c = Float32Array.from(c0);
        native.matmul(
          Float32Array.from(a),
          Float32Array.from(b),
          c,
          Float32Array.from(bias),
          batch,
          M,
          N,
          K,
          transA,
          transB,
          true,
          false,
          false,
        );
        const expected = new Float64Array(batch * M * N);
        for (let i = 0; i < batch; i++) {
          const y = ref.matmul(
            a.subarray(i * M * K, (i + 1) * M * K),
            b.subarray(i * K * N, (i + 1) * K * N),
            M,
            N,
            K,
            transA,
            transB,
          );
          for (let j = 0; j < M * N; j++)
            expected[i * M * N + j] = (y[j] as number) + (bias[j % N] as number) + (c0[i * M * N + j] as number);
        }
        assertClose(c, expected, 1e-5, "matmul");
      });

  test("bf16 rounds operands and accumulates in fp32", () => {
    const [M, N, K] = [8, 8, 64];
    const a = Float32Array.from(randn(M * K, 5));
    const b = Float32Array.from(randn(K * N, 6));
    const c = new Float32Array(M * N);
    native.matmul(a, b, c, null, 1, M, N, K, false, false, false, true, false);
    const ra = new Float32Array(a.length);
    const rb = new Float32Array(b.length);
    native.roundBf16(a, ra, a.length);
    native.roundBf16(b, rb, b.length);
    assertClose(
      c,
      ref.matmul(Float64Array.from(ra), Float64Array.from(rb), M, N, K, false, false),
      1e-5,
      "bf16 matmul",
    );
  });
});

describe("gradient checks against float64 finite differences", () => {
  test("linear, nn.Linear layout, with bias", () => {
    const [M, N, K] = [6, 5, 4];
    gradCheck("linear", {
      inputs: [randn(M * K, 1), randn(N * K, 2), randn(N, 3)],
      shapes: [[M, K], [N, K], [N]],
      op: ([x, w, b]) => ops.linear(x!, w!, b!, "out-in"),
      ref: ([x, w, b]) => ref.linear(x!, w!, b!, M, N, K, false),
    });
  });

  test("linear, GPT-2 Conv1D layout", () => {
    const [M, N, K] = [6, 5, 4];
    gradCheck("linear in-out", {
      inputs: [randn(M * K, 4), randn(K * N, 5)],
      shapes: [
        [M, K],
        [K, N],
      ],
      op: ([x, w]) => ops.linear(x!, w!, null, "in-out"),
      ref: ([x, w]) => ref.linear(x!, w!, null, M, N, K, true),
    });
  });

  test("linear plus a low-rank term (fused LoRA layer), both layouts", () => {
    const [M, N, K, r] = [5, 6, 4, 2];
    for (const inOut of [false, true]) {
      gradCheck(`linearPlusLowRank ${inOut ? "in-out" : "out-in"}`, {
        inputs: [randn(M * K, 40), randn(N * K, 41), randn(N, 42), randn(M * r, 43), randn(N * r, 44)],
        shapes: [[M, K], inOut ? [K, N] : [N, K], [N], [M, r], [N, r]],
        op: ([x, w, b, h, u]) => ops.linearPlusLowRank(x!, w!, b!, inOut ? "in-out" : "out-in", h!, u!),
        ref: ([x, w, b, h, u]) =>
          ref.add(ref.linear(x!, w!, b!, M, N, K, inOut), ref.linear(h!, u!, null, M, N, r, false)),
      });
    }
  });

  for (const [transA, transB] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ] as const)
    test(`batched matmul transA=${transA} transB=${transB}`, () => {
      const [batch, M, N, K] = [2, 3, 4, 5];
      const aShape = transA ? [batch, K, M] : [batch, M, K];
      const bShape = transB ? [batch, N, K] : [batch, K, N];
      gradCheck("matmul", {
        inputs: [randn(batch * M * K, 6), randn(batch * K * N, 7)],
        shapes: [aShape, bShape],
        op: ([a, b]) => ops.matmul(a!, b!, transA, transB),
        ref: ([a, b]) => {
          const out = new Float64Array(batch * M * N);
          for (let i = 0; i < batch; i++)
            out.set(
              ref.matmul(
                a!.subarray(i * M * K, (i + 1) * M * K),
                b!.subarray(i * K * N, (i + 1) * K * N),
                M,
                N,
                K,
                transA,
                transB,
              ),
              i * M * N,
            );
          return out;
        },
      });
    });

  test("token + position embedding (repeated ids)", () => {
    const [B, T, C, V] = [2, 5, 4, 6];
    const idx = Int32Array.from([0, 3, 3, 5, 1, 2, 3, 0, 0, 4]);
    gradCheck("embedding", {
      inputs: [randn(V * C, 8), randn(T * C, 9)],
      shapes: [
        [V, C],
        [T, C],
      ],
      op: ([wte, wpe]) => ops.embedding(idx, B, T, wte!, wpe!),
      ref: ([wte, wpe]) => ref.embedding(idx, wte!, wpe!, T, C),
    });
  });

  test("layerNorm with bias", () => {
    const [N, C] = [5, 8];
    gradCheck("layerNorm", {
      inputs: [randn(N * C, 10), randn(C, 11), randn(C, 12)],
      shapes: [[N, C], [C], [C]],
      op: ([x, w, b]) => ops.layerNorm(x!, w!, b!, 1e-5),
      ref: ([x, w, b]) => ref.layerNorm(x!, w!, b!, C, 1e-5),
      gradTol: 2e-3,
    });
  });

  test("rmsNorm", () => {
    const [N, C] = [5, 8];
    gradCheck("rmsNorm", {
      inputs: [randn(N * C, 13), randn(C, 14)],
      shapes: [[N, C], [C]],
      op: ([x, w]) => ops.rmsNorm(x!, w!, 1e-6),
      ref: ([x, w]) => ref.rmsNorm(x!, w!, C, 1e-6),
      gradTol: 2e-3,
    });
  });

  test("addLayerNorm and addRmsNorm: the residual sum and its norm, both differentiated", () => {
    const [N, C] = [5, 8];
    // Both outputs feed the result, so both backward paths (the add's and the norm's) count.
    const both = (r: { sum: ops.Tensor; normed: ops.Tensor }) => ops.add(r.normed, ops.scale(r.sum, 0.5));
    const refBoth = (x: Float64Array, y: Float64Array, norm: (s: Float64Array) => Float64Array) => {
      const s = x.map((v, i) => v + (y[i] as number));
      return norm(s).map((v, i) => v + 0.5 * (s[i] as number));
    };
    gradCheck("addLayerNorm", {
      inputs: [randn(N * C, 40), randn(N * C, 41), randn(C, 42), randn(C, 43)],
      shapes: [[N, C], [N, C], [C], [C]],
      op: ([x, y, w, b]) => both(ops.addLayerNorm(x!, y!, w!, b!, 1e-5)),
      ref: ([x, y, w, b]) => refBoth(x!, y!, (s) => ref.layerNorm(s, w!, b!, C, 1e-5)),
      gradTol: 2e-3,
    });
    gradCheck("addRmsNorm", {
      inputs: [randn(N * C, 44), randn(N * C, 45), randn(C, 46)],
      shapes: [[N, C], [N, C], [C]],
      op: ([x, y, w]) => both(ops.addRmsNorm(x!, y!, w!, 1e-6)),
      ref: ([x, y, w]) => refBoth(x!, y!, (s) => ref.rmsNorm(s, w!, C, 1e-6)),
      gradTol: 2e-3,
    });
  });

  test("gelu (tanh form)", () => {
    gradCheck("gelu", {
      inputs: [randn(40, 15, 2)],
      shapes: [[40]],
      op: ([x]) => ops.gelu(x!),
      ref: ([x]) => ref.gelu(x!),
    });
    // Two uses of x: the first backward writes x's fresh gradient, the second adds to it.
    gradCheck("gelu used twice", {
      inputs: [randn(40, 16, 2)],
      shapes: [[40]],
      op: ([x]) => ops.add(ops.gelu(x!), ops.gelu(x!)),
      ref: ([x]) => ref.gelu(x!).map((v) => 2 * v),
    });
  });

  test("swiglu", () => {
    gradCheck("swiglu", {
      inputs: [randn(30, 16, 2), randn(30, 17)],
      shapes: [[30], [30]],
      op: ([g, u]) => ops.swiglu(g!, u!),
      ref: ([g, u]) => ref.swiglu(g!, u!),
    });
  });

  test("add", () => {
    gradCheck("add", {
      inputs: [randn(12, 18), randn(12, 19)],
      shapes: [[12], [12]],
      op: ([a, b]) => ops.add(a!, b!),
      ref: ([a, b]) => ref.add(a!, b!),
    });
  });

  test("rope", () => {
    const [B, T, H, D] = [2, 5, 3, 8];
    gradCheck("rope", {
      inputs: [randn(B * T * H * D, 20)],
      shapes: [[B, T, H, D]],
      op: ([x]) =>
        ops.rope(
          x!,
          Float32Array.from({ length: D / 2 }, (_, i) => 10000 ** ((-2 * i) / D)),
        ),
      ref: ([x]) => ref.rope(x!, B, T, H, D, 10000),
    });
  });

  test("dropout (mask fixed by the seed)", () => {
    const n = 64;
    const mask = new Float32Array(n);
    native.dropout(mask, new Float32Array(n).fill(1), n, 0.25, 42, false);
    gradCheck("dropout", {
      inputs: [randn(n, 21)],
      shapes: [[n]],
      op: ([x]) => ops.dropout(x!, 0.25, 42),
      ref: ([x]) => x!.map((v, i) => v * (mask[i] as number)),
    });
  });

  // T = 45 is within one 64-row tile; T = 100 spans two (the second partial), so the
  // online-softmax rescale between tiles is checked, forward and backward.
  for (const [T, H] of [
    [7, 2],
    [45, 2],
    [100, 1],
  ] as const)
    test(`causal attention from fused qkv, T=${T}`, () => {
      const [B, D] = [2, 4];
      const C = H * D;
      gradCheck("attentionQkv", {
        inputs: [randn(B * T * 3 * C, 22 + T)],
        shapes: [[B, T, 3 * C]],
        op: ([qkv]) => ops.attentionQkv(qkv!, B, T, H),
        ref: ([qkv]) => {
          const [q, k, v] = ref.splitQkv(qkv!, B * T, C);
          return ref.attention(q, k, v, B, T, H, H, D);
        },
        gradTol: 2e-3,
      });
    });

  // Bidirectional (a vision encoder's patches): every query sees every key, across tiles too.
  for (const [T, H] of [
    [17, 2],
    [100, 1], // one head across tiles, as the causal check: two took 52 s of finite differences
  ] as const)
    test(`bidirectional attention from fused qkv, T=${T}`, () => {
      const [B, D] = [2, 4];
      const C = H * D;
      gradCheck("attentionQkv bidirectional", {
        inputs: [randn(B * T * 3 * C, 60 + T)],
        shapes: [[B, T, 3 * C]],
        op: ([qkv]) => ops.attentionQkv(qkv!, B, T, H, false),
        ref: ([qkv]) => {
          const [q, k, v] = ref.splitQkv(qkv!, B * T, C);
          return ref.attention(q, k, v, B, T, H, H, D, false);
        },
        gradTol: 2e-3,
      });
    });

  // D = 4 runs only the tile products' scalar tail; the vector strips take 24 (16 + 8 columns:
  // two-vector and one-vector strips on AVX2) and 64 (a real head's). Tiles on the causal
  // diagonal skip the work past it, rows 6 at a time, so T = 100 ends on a partial block.
  // At those sizes finite differences run on sampled elements: all of them would take minutes.
  for (const [T, Hq, Hkv, D, sample] of [
    [37, 4, 2, 4, undefined],
    [100, 2, 1, 4, undefined],
    [100, 2, 2, 24, 80],
    [100, 2, 1, 64, 80],
  ] as const)
    test(`grouped-query attention (${Hq} query heads over ${Hkv} kv heads), T=${T}, D=${D}`, () => {
      const B = 1;
      gradCheck("attention GQA", {
        inputs: [randn(B * T * Hq * D, 30), randn(B * T * Hkv * D, 31), randn(B * T * Hkv * D, 32)],
        shapes: [
          [B, T, Hq, D],
          [B, T, Hkv, D],
          [B, T, Hkv, D],
        ],
        op: ([q, k, v]) => ops.attention(q!, k!, v!, { B, T, Hq, Hkv, D }),
        ref: ([q, k, v]) => ref.attention(q!, k!, v!, B, T, Hq, Hkv, D),
        gradTol: 2e-3,
        sample,
      });
    });

  // One tensor as queries, keys and values: its three gradients add up in one buffer (the
  // kernel writes over a fresh buffer only when each operand has its own).
  test("self-attention with one tensor as q, k and v, T=70", () => {
    const [B, T, H, D] = [1, 70, 2, 4];
    gradCheck("attention x x x", {
      inputs: [randn(B * T * H * D, 33)],
      shapes: [[B, T, H, D]],
      op: ([x]) => ops.attention(x!, x!, x!, { B, T, Hq: H, Hkv: H, D }),
      ref: ([x]) => ref.attention(x!, x!, x!, B, T, H, H, D),
      gradTol: 2e-3,
    });
  });

  // bf16 tile products (avx512_bf16): forward and gradients against float64 within bf16 rounding.
  // D=16 runs the vdpbf16ps products; D=64 (as real heads) runs AMX where the CPU has it, on
  // 32 x 32 blocks for whole tiles and 16 x 16 ones for the last, partial tile.
  for (const [T, Hq, Hkv, causal, D] of [
    [100, 2, 2, true, 16],
    [37, 4, 2, true, 16],
    [100, 2, 1, false, 16],
    [100, 2, 2, true, 64],
    [100, 2, 1, false, 64],
  ] as const)
    test(`attention with bf16 tiles, ${Hq} query heads over ${Hkv} kv heads, T=${T}, D=${D}${causal ? "" : ", bidirectional"}`, {
      skip: ops.cpuHasBf16() ? false : "no avx512_bf16",
    }, () => {
      const B = 2;
      const inputs = [randn(B * T * Hq * D, 50), randn(B * T * Hkv * D, 51), randn(B * T * Hkv * D, 52)];
      const shapes = [
        [B, T, Hq, D],
        [B, T, Hkv, D],
        [B, T, Hkv, D],
      ];
      const run = (p: "fp32" | "bf16") => {
        ops.setPrecision(p);
        try {
          const [q, k, v] = inputs.map((x, i) => new ops.Tensor(Float32Array.from(x), shapes[i] as number[], true));
          const out = ops.attention(q!, k!, v!, { B, T, Hq, Hkv, D, causal });
          const y = Float32Array.from(out.data);
          ops.backward(out, Float32Array.from(randn(out.size, 53)));
          return { y, grads: [q!, k!, v!].map((t) => Float32Array.from(t.grad ?? [])) };
        } finally {
          ops.setPrecision("fp32");
        }
      };
      const expected = ref.attention(
        ...(inputs.map((x) => Float64Array.from(Float32Array.from(x))) as [Float64Array, Float64Array, Float64Array]),
        B,
        T,
        Hq,
        Hkv,
        D,
        causal,
      );
      const fp32 = run("fp32");
      const bf16 = run("bf16");
      assertClose(bf16.y, expected, 2e-2, "bf16 attention forward");
      assert.ok(relError(bf16.y, expected) > 1e-6, "the bf16 path ran (it rounds)");
      fp32.grads.forEach((g, i) => {
        assertClose(bf16.grads[i] as Float32Array, g, 3e-2, `bf16 gradient of input ${i}`);
      });
    });

  // A gradient is written over a fresh buffer (scaled) or added to one that already has a
  // contribution: x * 0.7 alone, and x * 0.7 + x.
  test("scale, alone and beside another use of its input", () => {
    gradCheck("scale", {
      inputs: [randn(40, 35)],
      shapes: [[40]],
      op: ([x]) => ops.scale(x!, 0.7),
      ref: ([x]) => x!.map((v) => v * 0.7),
    });
    gradCheck("scale + x", {
      inputs: [randn(40, 36)],
      shapes: [[40]],
      op: ([x]) => ops.add(ops.scale(x!, 0.7), x!),
      ref: ([x]) => x!.map((v) => v * 1.7),
    });
  });

  test("cross-entropy with ignored targets", () => {
    const [N, V] = [6, 7];
    const targets = Int32Array.from([3, -1, 0, 6, -1, 2]);
    gradCheck("crossEntropy", {
      inputs: [randn(N * V, 33, 2)],
      shapes: [[N, V]],
      op: ([z]) => ops.crossEntropy(z!, targets),
      ref: ([z]) => Float64Array.of(ref.crossEntropy(z!, targets, V, -1)),
    });
  });

  // The log-sum-exp subtracts each row's maximum: with logits near 300 anywhere in a wide row
  // (a 16-wide block, the next one, the tail), a wrong maximum overflows exp.
  test("cross-entropy with large logits anywhere in a row", () => {
    const [N, V] = [4, 37];
    const logits = randn(N * V, 34, 2);
    [0, 20, 35, 15].forEach((j, r) => {
      logits[r * V + j] = 300;
    });
    const targets = Int32Array.from([0, 3, 35, 36]);
    gradCheck("crossEntropy", {
      inputs: [logits],
      shapes: [[N, V]],
      op: ([z]) => ops.crossEntropy(z!, targets),
      ref: ([z]) => Float64Array.of(ref.crossEntropy(z!, targets, V, -1)),
    });
  });

  test("the head's cross-entropy in blocks of rows: the loss of x W^T and its gradients, with ignored targets", () => {
    const [N, C, V] = [7, 5, 6];
    const targets = Int32Array.from([3, -1, 0, 5, -1, 2, 1]);
    for (const blockRows of [3, 64]) // three blocks (the last one short), then one
      gradCheck(`linearCrossEntropy, ${blockRows} rows a block`, {
        inputs: [randn(N * C, 35), randn(V * C, 36)],
        shapes: [
          [N, C],
          [V, C],
        ],
        op: ([x, w]) => ops.linearCrossEntropy(x!, w!, targets, { blockRows }),
        ref: ([x, w]) => Float64Array.of(ref.crossEntropy(ref.linear(x!, w!, null, N, V, C, false), targets, V, -1)),
      });
  });

  test("sequence log-probabilities (what DPO and RL compare), with ignored positions", () => {
    const [B, T, V] = [2, 4, 5];
    const targets = Int32Array.from([1, -1, 4, 0, -1, -1, 2, 3]);
    gradCheck("sequenceLogProbs", {
      inputs: [randn(B * T * V, 41, 2)],
      shapes: [[B * T, V]],
      op: ([z]) => ops.sequenceLogProbs(z!, targets, B),
      ref: ([z]) => ref.sequenceLogProbs(z!, targets, B, V),
    });
  });

  test("token log-probabilities (what PPO's ratio and the KL penalty use), with ignored positions", () => {
    const [N, V] = [6, 5];
    const targets = Int32Array.from([1, -1, 4, 0, -1, 2]);
    gradCheck("tokenLogProbs", {
      inputs: [randn(N * V, 43, 2)],
      shapes: [[N, V]],
      op: ([z]) => ops.tokenLogProbs(z!, targets),
      ref: ([z]) => ref.tokenLogProbs(z!, targets, V),
    });
  });

  test("DPO loss: gradients of the policy's log-probabilities, and TRL's formula by hand", () => {
    const refChosen = [-3.1, -0.7, -2.2];
    const refRejected = [-2.9, -1.5, -0.4];
    gradCheck("dpoLoss", {
      inputs: [Float64Array.from([-2.5, -1.0, -2.0]), Float64Array.from([-3.5, -1.2, -0.1])],
      shapes: [[3], [3]],
      op: ([c, r]) => ops.dpoLoss(c!, r!, refChosen, refRejected, 0.5),
      ref: ([c, r]) => Float64Array.of(ref.dpoLoss(c!, r!, refChosen, refRejected, 0.5)),
    });
    // TRL: logits = beta * ((pi_c - pi_r) - (ref_c - ref_r)); loss = -logsigmoid(logits).
    // pi_c = -1, pi_r = -2, ref_c = ref_r = -1.5, beta = 0.1: logits = 0.1, loss = log(1 + e^-0.1).
    const loss = ops.dpoLoss(ops.Tensor.from([-1], [1]), ops.Tensor.from([-2], [1]), [-1.5], [-1.5], 0.1);
    assert.ok(Math.abs(loss.item() - 0.6443966600735709) < 1e-6, `${loss.item()}`);
  });
});

// zeroGrad() only marks a gradient void: the next writer writes over it, a reader sees zeros.
describe("gradient buffers across steps", () => {
  test("after zeroGrad, a weight's gradient is the new step's alone; one that got none reads zero", () => {
    const x = new ops.Tensor(Float32Array.from(randn(12, 60)), [3, 4]);
    const w = new ops.Tensor(Float32Array.from(randn(20, 61)), [5, 4], true);
    const unused = new ops.Tensor(Float32Array.from(randn(6, 62)), [6], true);
    const step = () => {
      ops.backward(ops.linear(x, w, null, "out-in"), Float32Array.from(randn(15, 63)));
      return Float32Array.from(w.grad ?? []);
    };
    unused.ensureGrad().fill(3);
    const first = step();
    w.zeroGrad();
    unused.zeroGrad();
    assert.deepEqual(step(), first, "written over, not added to the previous step's");
    assert.ok(
      unused.grad?.every((v) => v === 0),
      "a gradient nothing wrote since zeroGrad reads zero",
    );
    const twice = step(); // no zeroGrad: the second backward adds
    assert.deepEqual(
      twice,
      first.map((v) => 2 * v),
    );
  });
});
