// Conversations with images, tokenized for a vision model: the chat template renders an
// IMAGE_PLACEHOLDER where each image stands, which becomes one placeholder token per
// patch; the images are read and preprocessed as the model's vision config says.
import {
  type ChatMessage,
  encodeImageText,
  IMAGE_PLACEHOLDER,
  type ImageTokens,
  type ToolSpec,
} from "../infer/chat.ts";
import type { PromptImages } from "../infer/engine.ts";
import { imageSourceBytes } from "../io/image.ts";
import { patchesPerImage, stackImages, type VisionConfig } from "../model/vision.ts";
import type { Conversation } from "../posttrain/data.ts";
import { type EncodedConversation, encodeConversation } from "../posttrain/encode.ts";
import { imagePixels } from "../vision/pixels.ts";
import type { ChatCodec } from "./codec.ts";

const placeholderIds = new WeakMap<ChatCodec, number>();

/** The id placeholder tokens carry: the tokenizer's own image token where it has one (its embedding is replaced anyway). */
export function imagePlaceholderId(codec: ChatCodec): number {
  let id = placeholderIds.get(codec);
  if (id === undefined) {
    const ids = codec.encode(IMAGE_PLACEHOLDER, true);
    id = ids.length === 1 ? (ids[0] as number) : 0;
    placeholderIds.set(codec, id);
  }
  return id;
}

/** The images of messages, in the order their placeholders appear. */
export function imagesOf(messages: ChatMessage[]): string[] {
  return messages.flatMap((m) => m.images ?? []);
}

/** Rendered chat text as tokens, each image's placeholder expanded to its patches (none without a vision model). */
export function chatTokens(codec: ChatCodec, text: string, vision?: VisionConfig): ImageTokens {
  const encode = (t: string) => codec.encode(t, true);
  if (!vision) return { tokens: encode(text), imageStarts: [] };
  return encodeImageText(text, encode, patchesPerImage(vision), imagePlaceholderId(codec));
}

/** Reads and preprocesses one image for the model; `where` names it in errors. */
export async function loadImage(source: string, vision: VisionConfig, where: string): Promise<Float32Array> {
  return imagePixels(await imageSourceBytes(source, where), vision, where);
}

/** Reads and preprocesses a conversation's images; `where` and the image's number name each in errors. */
export async function loadImages(sources: string[], vision: VisionConfig, where: string): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const [i, source] of sources.entries()) out.push(await loadImage(source, vision, `${where}: image ${i + 1}`));
  return out;
}

/** A training conversation: its tokens and targets, and for a vision model its images' pixels and positions. */
export async function encodeChat(
  c: Conversation,
  codec: ChatCodec,
  blockSize: number,
  vision: VisionConfig | undefined,
): Promise<EncodedConversation> {
  const tools: ToolSpec[] = c.tools ?? [];
  const sources = imagesOf(c.messages);
  if (sources.length > 0 && !vision)
    throw new Error(
      `${c.source}: the conversation has images but the model has no vision encoder (add one: llmfab sft --vision-encoder new)`,
    );
  // encodeConversation renders the whole conversation once: its image positions are kept from that call.
  let imageStarts: number[] = [];
  const encoded = encodeConversation(
    c,
    (messages, addGenerationPrompt) => {
      const r = chatTokens(codec, codec.renderChat(messages, addGenerationPrompt, tools), vision);
      if (messages === c.messages && !addGenerationPrompt) imageStarts = r.imageStarts;
      return r.tokens;
    },
    blockSize,
  );
  if (!vision || sources.length === 0) return encoded;
  if (imageStarts.length !== sources.length)
    throw new Error(
      `${c.source}: ${imageStarts.length} image placeholders for ${sources.length} images (is ${IMAGE_PLACEHOLDER} written in a text part?)`,
    );
  return { ...encoded, images: { pixels: await loadImages(sources, vision, c.source), starts: imageStarts } };
}

/** Messages with their images left out (for a model that cannot see them, or a text-only comparison). */
export function withoutImages(messages: ChatMessage[]): ChatMessage[] {
  return messages.map(({ images, ...m }) =>
    images?.length ? { ...m, content: m.content.split(IMAGE_PLACEHOLDER).join("").trim() } : m,
  );
}

/** A generation prompt for a vision model: tokens with each image's placeholders, and the images read. */
export async function visionPrompt(
  codec: ChatCodec,
  vision: VisionConfig,
  text: string,
  sources: string[],
  where: string,
): Promise<{ prompt: number[]; images?: PromptImages }> {
  const { tokens, imageStarts } = chatTokens(codec, text, vision);
  if (imageStarts.length !== sources.length)
    throw new Error(`${where}: ${imageStarts.length} image placeholders for ${sources.length} images`);
  if (sources.length === 0) return { prompt: tokens };
  const pixels = await loadImages(sources, vision, where);
  return {
    prompt: tokens,
    images: { pixels: stackImages(pixels), count: pixels.length, starts: imageStarts },
  };
}
