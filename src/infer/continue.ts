// Continuing a text for longer than the context holds: the KV-cache engine generates until
// its cache is full, then starts again from the latest half of the text (what a sliding
// window sees), until maxTokens or a stop token.
import type { Engine, GenerationOptions } from "./engine.ts";

export function continueTokens(
  engine: Engine,
  prompt: ArrayLike<number>,
  options: Partial<GenerationOptions> & { maxTokens: number; seed: number },
  onText?: (text: string) => void,
): number[] {
  const out: number[] = [];
  let context = Array.from(prompt);
  const room = engine.contextLength - 1;
  for (let chunk = 0; out.length < options.maxTokens; chunk++) {
    if (context.length >= room) context = context.slice(context.length - Math.floor(room / 2));
    const r = engine.generate(
      context,
      { ...options, maxTokens: options.maxTokens - out.length, seed: options.seed + chunk },
      onText && ((e) => onText(e.text)),
    );
    out.push(...r.ids);
    context.push(...r.ids);
    if (r.finishReason !== "length" || r.ids.length === 0) break;
  }
  return out;
}
