// Synthetic conversations from the built-in corpus: its sentences are the in-context
// passages; the training split goes to the given JSONL file, the held-out split beside
// it as <name>.heldout.jsonl.
import { sotuText } from "../data/corpora.ts";
import { writeJsonLinesAtomic } from "../io/atomic.ts";
import { type SynthConversation, type SynthOptions, synthesize } from "../posttrain/synth.ts";

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
  writeJsonLinesAtomic(trainPath, sets.train);
  writeJsonLinesAtomic(heldoutPath, sets.heldout);
  return heldoutPath;
}
