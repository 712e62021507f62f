// What a request brings beyond its text: images (OpenAI image_url parts: data URLs, or
// http(s) URLs fetched with limits) go to a vision model as pixels, or for a text model are
// read by OCR and become text parts noting where the text came from; with web_search_options, the top passages of the server's index go into
// the system turn and the answer ends with the sources it used.
import { type ChatMessage, IMAGE_PLACEHOLDER } from "../infer/chat.ts";
import { fetchLimited } from "../io/fetch.ts";
import { decodeDataUrl, IMAGE_LIMITS, ImageError } from "../io/image.ts";
import type { VisionConfig } from "../model/vision.ts";
import { type OcrLanguage, ocrNote, recognize } from "../ocr/ocr.ts";
import { type GroundedContext, searchContext } from "../retrieval/context.ts";
import type { IndexDatabase } from "../retrieval/index.ts";
import { imagePixels } from "../vision/pixels.ts";
import type { ChatRequest } from "./schemas.ts";

export class GroundingError extends Error {
  constructor(
    message: string,
    readonly param: string,
  ) {
    super(message);
  }
}

const IMAGE_FETCH = { maxBytes: IMAGE_LIMITS.maxBytes, timeoutMs: 15_000 };

async function imageBytes(url: string, param: string): Promise<Uint8Array> {
  if (url.startsWith("data:")) return decodeDataUrl(url, param);
  if (/^https?:\/\//i.test(url)) {
    try {
      return (await fetchLimited(url, IMAGE_FETCH)).bytes;
    } catch (e) {
      throw new GroundingError(`${param}: ${(e as Error).message}`, param);
    }
  }
  throw new GroundingError(`${param}: an image URL is a data: URL or an http(s) URL`, param);
}

/** The request with every image part replaced by the text OCR reads in it. */
export async function readImageParts(body: ChatRequest, langs: OcrLanguage[]): Promise<ChatRequest> {
  let count = 0;
  const messages = await Promise.all(
    body.messages.map(async (m, i) => {
      if (typeof m.content === "string" || m.content == null) return m;
      const content = [];
      for (const [j, part] of m.content.entries()) {
        if (part.type === "text") {
          content.push(part);
          continue;
        }
        const param = `messages.${i}.content.${j}.image_url.url`;
        count++;
        try {
          const result = await recognize(await imageBytes(part.image_url.url, param), param, langs);
          const source = part.image_url.url.startsWith("data:") ? `image ${count}` : part.image_url.url;
          // Its own paragraph, whatever text parts stand around it.
          const before = j > 0 ? "\n\n" : "";
          const after = j < m.content.length - 1 ? "\n\n" : "";
          content.push({ type: "text" as const, text: `${before}${ocrNote(result, source, langs)}${after}` });
        } catch (e) {
          if (e instanceof ImageError) throw new GroundingError(e.message, param);
          throw e;
        }
      }
      return { ...m, content };
    }),
  );
  return { ...body, messages };
}

/**
 * For a vision model: every image part read and preprocessed for it (in order), and the
 * request with each image part replaced by the placeholder its patch vectors take.
 */
export async function readVisionParts(
  body: ChatRequest,
  vision: VisionConfig,
): Promise<{ body: ChatRequest; images: Float32Array[] }> {
  const images: Float32Array[] = [];
  const messages = [];
  for (const [i, m] of body.messages.entries()) {
    if (typeof m.content === "string" || m.content == null) {
      messages.push(m);
      continue;
    }
    const content = [];
    for (const [j, part] of m.content.entries()) {
      if (part.type === "text") {
        content.push(part);
        continue;
      }
      const param = `messages.${i}.content.${j}.image_url.url`;
      try {
        images.push(await imagePixels(await imageBytes(part.image_url.url, param), vision, param));
      } catch (e) {
        if (e instanceof ImageError) throw new GroundingError(e.message, param);
        throw e;
      }
      content.push({ type: "text" as const, text: IMAGE_PLACEHOLDER });
    }
    messages.push({ ...m, content });
  }
  return { body: { ...body, messages }, images };
}

const CONTEXT_SIZE = { low: 2, medium: 3, high: 6 } as const;

/** Search results for the last user turn, put into the system turn. */
export function groundMessages(
  messages: ChatMessage[],
  db: IndexDatabase,
  size: keyof typeof CONTEXT_SIZE,
  now: Date,
): { messages: ChatMessage[]; context: GroundedContext } {
  const question = messages.findLast((m) => m.role === "user")?.content ?? "";
  const context = searchContext(db, question, { k: CONTEXT_SIZE[size], now });
  if (!context.system) return { messages, context };
  const first = messages[0];
  const grounded: ChatMessage[] =
    first?.role === "system"
      ? [{ ...first, content: `${first.content}\n\n${context.system}` }, ...messages.slice(1)]
      : [{ role: "system", content: context.system }, ...messages];
  return { messages: grounded, context };
}
