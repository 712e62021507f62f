// Writing synthetic conversations: the training split to the given JSONL file, the
// held-out split beside it as <name>.heldout.jsonl.
import { writeJsonLinesAtomic } from "../io/atomic.ts";
import type { SynthConversation } from "../posttrain/synth.ts";

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
