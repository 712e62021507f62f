// Images (for OCR and vision models) are checked before anything decodes them: the type from the bytes (not the name),
// the file size, and the pixel count from the header, so a corrupt file, a file that is no
// image, or a small file declaring 50,000 x 50,000 pixels is refused with a clear reason.
import { readFileSync } from "node:fs";
import { imageSize } from "image-size";
import { fetchLimited } from "./fetch.ts";

export interface ImageLimits {
  maxBytes: number;
  maxPixels: number;
}

export const IMAGE_LIMITS: ImageLimits = { maxBytes: 20 * 2 ** 20, maxPixels: 40_000_000 };

/** The types the OCR engine (Leptonica) decodes. */
const DECODABLE = new Set(["png", "jpg", "webp", "bmp", "gif", "tiff", "pnm"]);

export interface ImageInfo {
  type: string;
  width: number;
  height: number;
}

export class ImageError extends Error {}

export function checkImage(bytes: Uint8Array, where: string, limits: ImageLimits = IMAGE_LIMITS): ImageInfo {
  if (bytes.length === 0) throw new ImageError(`${where}: empty file, not an image`);
  if (bytes.length > limits.maxBytes)
    throw new ImageError(`${where}: ${bytes.length} bytes; images are limited to ${limits.maxBytes} bytes`);
  let info: ReturnType<typeof imageSize>;
  try {
    info = imageSize(bytes);
  } catch (e) {
    throw new ImageError(
      `${where}: not an image llmfab can read (PNG, JPEG, WebP, BMP, GIF, TIFF): ${(e as Error).message}`,
    );
  }
  const type = info.type ?? "unknown";
  if (!DECODABLE.has(type))
    throw new ImageError(`${where}: ${type} images cannot be read (PNG, JPEG, WebP, BMP, GIF, TIFF can)`);
  const { width, height } = info;
  if (!(width > 0 && height > 0)) throw new ImageError(`${where}: the header gives no size (${width}x${height})`);
  if (width * height > limits.maxPixels)
    throw new ImageError(
      `${where}: ${width}x${height} is ${((width * height) / 1e6).toFixed(0)} megapixels; images are limited to ${limits.maxPixels / 1e6} megapixels`,
    );
  return { type, width, height };
}

/** The bytes of a data: URL (base64 or percent-encoded), with its declared media type. */
export function decodeDataUrl(url: string, where: string): Uint8Array {
  const m = /^data:([^,;]*)((?:;[^,;]*)*?)(;base64)?,/i.exec(url.slice(0, 256));
  if (!m) throw new ImageError(`${where}: not a data URL (data:image/png;base64,...)`);
  const payload = url.slice(m[0].length);
  if (m[3]) {
    if (!/^[A-Za-z0-9+/=\s_-]*$/.test(payload))
      throw new ImageError(`${where}: the base64 data has characters base64 does not use`);
    return Buffer.from(payload, "base64");
  }
  return Buffer.from(decodeURIComponent(payload), "latin1");
}

const IMAGE_FETCH = { maxBytes: IMAGE_LIMITS.maxBytes, timeoutMs: 15_000 };

/**
 * The bytes an image reference names: a data: URL, an http(s) URL (fetched with a size and
 * time limit), or, where `files` allows it (not for requests to a server), a file path.
 */
export async function imageSourceBytes(source: string, where: string, files = true): Promise<Uint8Array> {
  if (source.startsWith("data:")) return decodeDataUrl(source, where);
  if (/^https?:\/\//i.test(source)) {
    try {
      return (await fetchLimited(source, IMAGE_FETCH)).bytes;
    } catch (e) {
      throw new ImageError(`${where}: ${(e as Error).message}`);
    }
  }
  if (!files) throw new ImageError(`${where}: an image URL is a data: URL or an http(s) URL`);
  try {
    return readFileSync(source);
  } catch {
    throw new ImageError(`${where}: cannot read the image file ${source}`);
  }
}
