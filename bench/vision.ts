// `npm run bench -- vision`: images per second of the ViT encoder and projector
// (src/model/vision.ts), forward only and a training step (forward, per-patch
// cross-entropy, backward, AdamW), on 224 x 224 and 64 x 64 images, beside PyTorch's same
// ViT (bench/torch_vit_bench.py) at its best setting in the same run.
import { native } from "../src/backend/native.ts";
import { defaultVision, encodeImages, patchesPerImage, pixelsPerImage, visionParameters } from "../src/model/vision.ts";
import { normalInit, trainable } from "../src/nn/parameters.ts";
import { Rng } from "../src/nn/random.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { backward, crossEntropy, noGrad, type Precision, recyclingBuffers, setPrecision } from "../src/tensor/index.ts";
import { torchAvailable, torchBest, VIT_SCRIPT } from "./torch-ref.ts";

type Emit = (row: Record<string, unknown>, text: string) => void;

/** ViT-Tiny's width and heads at half its depth; 16-pixel patches at 224 (196 patches), 8 at 64 (64). */
const SHAPES = [
  { imageSize: 224, patchSize: 16, batch: 8 },
  { imageSize: 64, patchSize: 8, batch: 32 },
];
const WIDTH = { hidden: 192, layers: 6, heads: 3, out: 192 };

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
}

/** Our images per second: forward only, and a training step. */
function ours(shape: (typeof SHAPES)[number], mode: "forward" | "train", steps: number): number {
  const v = defaultVision({
    imageSize: shape.imageSize,
    patchSize: shape.patchSize,
    hidden: WIDTH.hidden,
    layers: WIDTH.layers,
    heads: WIDTH.heads,
    intermediate: 4 * WIDTH.hidden,
  });
  const rng = new Rng(1);
  const params = visionParameters(v, WIDTH.out, (s, std = 0.02) => normalInit(s, std, rng));
  const opt = new AdamW(trainable(params), { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
  const B = shape.batch;
  const times: number[] = [];
  for (let i = 0; i < steps + 2; i++) {
    const pixels = Float32Array.from({ length: B * pixelsPerImage(v) }, () => rng.normal());
    const started = performance.now();
    // Forward as inference runs it: its activation buffers go back to the pool after.
    if (mode === "forward") recyclingBuffers(() => noGrad(() => encodeImages(v, params, pixels, B)));
    else {
      const labels = Int32Array.from({ length: B * patchesPerImage(v) }, () => rng.int(WIDTH.out));
      const loss = crossEntropy(encodeImages(v, params, pixels, B), labels);
      backward(loss);
      opt.step(1e-3, 1);
      for (const [, p] of params) p.zeroGrad();
    }
    if (i >= 2) times.push(performance.now() - started);
  }
  return B / (median(times) / 1000);
}

export function visionBench(emit: Emit, threads: number[], precision: Precision, autocast: boolean): void {
  const torch = torchAvailable(VIT_SCRIPT);
  for (const t of threads) {
    native.setThreads(t);
    setPrecision(precision);
    for (const shape of SHAPES)
      for (const mode of ["forward", "train"] as const) {
        const mine = ours(shape, mode, mode === "forward" ? 10 : 6);
        const args = [
          ...["--image-size", String(shape.imageSize), "--patch-size", String(shape.patchSize)],
          ...["--batch", String(shape.batch), "--mode", mode, "--steps", mode === "forward" ? "10" : "6"],
          ...["--hidden", String(WIDTH.hidden), "--layers", String(WIDTH.layers), "--heads", String(WIDTH.heads)],
        ];
        const ref = torch ? torchBest(args, t, autocast, VIT_SCRIPT) : null;
        const ratio = ref ? mine / ref.tok_per_s : null;
        const label = `vision ${shape.imageSize}x${shape.imageSize} ${mode.padEnd(7)} ${t} thread${t > 1 ? "s" : ""}`;
        emit(
          {
            bench: "vision",
            image_size: shape.imageSize,
            mode,
            threads: t,
            precision,
            images_per_s: mine,
            torch_images_per_s: ref?.tok_per_s ?? null,
            torch_setting: ref?.setting ?? null,
            ratio,
          },
          `${label}: llmfab ${precision} ${mine.toFixed(1)} img/s` +
            (ref
              ? ` | PyTorch ${ref.tok_per_s.toFixed(1)} img/s (${ref.setting}) | ratio ${ratio?.toFixed(2)}x`
              : " | PyTorch not installed (python3-torch)"),
        );
      }
  }
}
