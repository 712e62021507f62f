// Images as a vision model takes them: checked before decoding (type, bytes, pixel count), decoded and resized with libvips
// (sharp: a corrupt file is an error, never a crash), flattened onto white where
// transparent, scaled to [0, 1] and normalised by the model's mean and std per channel:
// [C, S, S] floats.
import sharp from "sharp";
import { checkImage, IMAGE_LIMITS, ImageError } from "../io/image.ts";
import { pixelsPerImage, type VisionConfig } from "../model/vision.ts";

/** One image, preprocessed for the model: resized to its size (any aspect), [C, S, S] normalised floats. */
export async function imagePixels(bytes: Uint8Array, v: VisionConfig, where: string): Promise<Float32Array> {
  if (v.channels !== 3) throw new Error(`${where}: vision models take RGB images (num_channels 3), not ${v.channels}`);
  checkImage(bytes, where);
  const S = v.imageSize;
  let rgb: Buffer;
  try {
    rgb = await sharp(bytes, { limitInputPixels: IMAGE_LIMITS.maxPixels })
      .flatten({ background: "#ffffff" })
      .resize(S, S, { fit: "fill" })
      .removeAlpha()
      .raw()
      .toBuffer();
  } catch (e) {
    throw new ImageError(
      `${where}: the image cannot be decoded (${(e as Error).message.trim()}); is the file corrupt?`,
    );
  }
  const out = new Float32Array(pixelsPerImage(v));
  for (let c = 0; c < 3; c++) {
    const mean = v.imageMean[c] as number;
    const std = v.imageStd[c] as number;
    for (let i = 0; i < S * S; i++) out[c * S * S + i] = ((rgb[i * 3 + c] as number) / 255 - mean) / std;
  }
  return out;
}
