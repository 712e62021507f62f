// Synthetic pictures for teaching a vision model: coloured shapes on a plain background
// and printed numbers, drawn with Skia (@napi-rs/canvas) and encoded as PNG.
import { createCanvas, type SKRSContext2D } from "@napi-rs/canvas";

export const SHAPES = ["circle", "square", "triangle"] as const;
export type Shape = (typeof SHAPES)[number];

export const COLOURS = { red: "#e53935", green: "#43a047", blue: "#1e88e5", yellow: "#fdd835" } as const;
export type Colour = keyof typeof COLOURS;
export const COLOUR_NAMES = Object.keys(COLOURS) as Colour[];

/** One shape: its kind, colour, centre and radius in pixels. */
export interface Item {
  shape: Shape;
  colour: Colour;
  x: number;
  y: number;
  r: number;
}

function drawItem(ctx: SKRSContext2D, it: Item): void {
  ctx.fillStyle = COLOURS[it.colour];
  ctx.beginPath();
  if (it.shape === "circle") ctx.arc(it.x, it.y, it.r, 0, 2 * Math.PI);
  else if (it.shape === "square") ctx.rect(it.x - it.r, it.y - it.r, 2 * it.r, 2 * it.r);
  else {
    ctx.moveTo(it.x, it.y - it.r);
    ctx.lineTo(it.x + it.r, it.y + it.r);
    ctx.lineTo(it.x - it.r, it.y + it.r);
    ctx.closePath();
  }
  ctx.fill();
}

/** A size x size PNG of the shapes on a white background. */
export function drawShapes(items: Item[], size: number): Buffer {
  const canvas = createCanvas(size, size);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, size, size);
  for (const it of items) drawItem(ctx, it);
  return canvas.toBuffer("image/png");
}

/** A size x size PNG of text printed in black, centred, in a sans-serif face. */
export function drawText(text: string, size: number): Buffer {
  const canvas = createCanvas(size, size);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, size, size);
  ctx.fillStyle = "#000000";
  ctx.font = `bold ${Math.round(size * 0.55)}px sans-serif`;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillText(text, size / 2, size / 2);
  return canvas.toBuffer("image/png");
}

/** A grayscale image (values 0..1, white ink on black as MNIST stores it) as a PNG. */
export function grayPng(values: ArrayLike<number>, width: number, height: number): Buffer {
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const v = Math.round(Math.min(1, Math.max(0, values[i] as number)) * 255);
    image.data.set([v, v, v, 255], i * 4);
  }
  ctx.putImageData(image, 0, 0);
  return canvas.toBuffer("image/png");
}

/** A PNG as a data URL (what OpenAI's image_url parts carry). */
export function pngDataUrl(png: Buffer): string {
  return `data:image/png;base64,${png.toString("base64")}`;
}
