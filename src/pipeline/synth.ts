// Synthetic conversations from the built-in corpus: its sentences are the in-context
// passages; the training split goes to the given JSONL file, the held-out split beside
// it as <name>.heldout.jsonl.
import { sotuText } from "../data/corpora.ts";
import { renderChat } from "../infer/chat.ts";
import { writeJsonLinesAtomic } from "../io/atomic.ts";
import type { Conversation } from "../posttrain/data.ts";
import { type SynthConversation, type SynthOptions, synthesize, synthRecord } from "../posttrain/synth.ts";
import { synthesizeVision, visionRecord } from "../posttrain/synth-vision.ts";
import { CHAT_TEMPLATE } from "../tokenizer/huggingface.ts";

/** Training and held-out conversations, with State of the Union sentences as passages. */
export function synthesizeFromSotu(
  n: number,
  seed: number,
  o: SynthOptions = {},
): { train: SynthConversation[]; heldout: SynthConversation[] } {
  return synthesize(n, seed, sotuText().split(/(?<=[.!?])\s+/), o);
}

export function heldoutPathOf(path: string): string {
  return path.endsWith(".jsonl") ? `${path.slice(0, -".jsonl".length)}.heldout.jsonl` : `${path}.heldout.jsonl`;
}

/** Writes both splits (each atomically); returns the held-out file's path. */
export function writeSynthetic(
  trainPath: string,
  sets: { train: SynthConversation[]; heldout: SynthConversation[] },
): string {
  const heldoutPath = heldoutPathOf(trainPath);
  writeJsonLinesAtomic(trainPath, sets.train.map(synthRecord));
  writeJsonLinesAtomic(heldoutPath, sets.heldout.map(synthRecord));
  return heldoutPath;
}

/** Conversations as plain text for training a tokenizer: llmfab's template with its special tokens left out. */
export function chatText(conversations: Conversation[]): string {
  return conversations
    .map((c) => renderChat(CHAT_TEMPLATE, c.messages, false, c.tools ?? []).replace(/<\|[a-z_]+\|>/g, "\n"))
    .join("\n");
}

/**
 * Image conversations (`llmfab synth --vision`): `scenes` synthetic picture questions and
 * `mnist` MNIST digits for training; held out, `heldout` questions per synthetic task
 * (default 50) and as many MNIST digits as the package keeps for testing (1,500).
 */
export function synthesizeVisionFile(
  trainPath: string,
  scenes: number,
  mnist: number,
  heldout: number | undefined,
  seed: number,
): { train: number; heldout: number; heldoutPath: string } {
  const sets = synthesizeVision({ scenes, mnist, heldoutPerTask: heldout ?? 50, heldoutMnist: 1500 }, seed);
  const heldoutPath = heldoutPathOf(trainPath);
  writeJsonLinesAtomic(trainPath, sets.train.map(visionRecord));
  writeJsonLinesAtomic(heldoutPath, sets.heldout.map(visionRecord));
  return { train: sets.train.length, heldout: sets.heldout.length, heldoutPath };
}
