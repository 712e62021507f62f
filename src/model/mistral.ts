// Mistral: the Llama shape with a sliding attention window (Mistral 7B v0.1: 4096 tokens;
// later versions: none). Within the window, attention is the full causal attention, so
// the context is capped at the window (familyConfig).
import { z } from "zod";
import { parseHfConfig } from "./hf-config.ts";
import { familyConfig, familyMember, familySchema, familyToHf } from "./llama.ts";

const schema = familySchema.extend({ sliding_window: z.number().int().positive().nullish() });

export const mistral = familyMember(
  "mistral",
  (json, where) => {
    const h = parseHfConfig(schema, json, where, "Mistral");
    return familyConfig(h, where, "mistral", { slidingWindow: h.sliding_window });
  },
  (c) => ({ ...familyToHf(c, "MistralForCausalLM"), sliding_window: c.hf?.sliding_window ?? null }),
);
