// What a request brings beyond its text: images (OpenAI image_url parts: data URLs, or
// http(s) URLs fetched with limits) go to a vision model as pixels, or for a text model are
// read by OCR and become text parts noting where the text came from; with web_search_options, the top passages of the server's index go into
// the system turn and the answer ends with the sources it used.
import { type ChatMessage, IMAGE_PLACEHOLDER } from "../infer/chat.ts";
import { ImageError, imageSourceBytes } from "../io/image.ts";
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

/**
 * The request with every image part replaced, in order, by the text `replace` makes of the
 * image's bytes (`param` names the part, `around` says whether parts come before or after
 * it); a bad image is a GroundingError naming the part.
 */
async function replaceImageParts(
  body: ChatRequest,
  replace: (
    bytes: Uint8Array,
    param: string,
    url: string,
    around: { first: boolean; last: boolean },
  ) => Promise<string>,
): Promise<ChatRequest> {
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
        const bytes = await imageSourceBytes(part.image_url.url, param, false);
        const around = { first: j === 0, last: j === m.content.length - 1 };
        content.push({ type: "text" as const, text: await replace(bytes, param, part.image_url.url, around) });
      } catch (e) {
        if (e instanceof ImageError) throw new GroundingError(e.message, param);
        throw e;
      }
    }
    messages.push({ ...m, content });
  }
  return { ...body, messages };
}

/** The request with every image part replaced by the text OCR reads in it. */
export function readImageParts(body: ChatRequest, langs: OcrLanguage[]): Promise<ChatRequest> {
  let count = 0;
  return replaceImageParts(body, async (bytes, param, url, around) => {
    count++;
    const result = await recognize(bytes, param, langs);
    const source = url.startsWith("data:") ? `image ${count}` : url;
    // Its own paragraph, whatever text parts stand around it.
    return `${around.first ? "" : "\n\n"}${ocrNote(result, source, langs)}${around.last ? "" : "\n\n"}`;
  });
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
  const replaced = await replaceImageParts(body, async (bytes, param) => {
    images.push(await imagePixels(bytes, vision, param));
    return IMAGE_PLACEHOLDER;
  });
  return { body: replaced, images };
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
