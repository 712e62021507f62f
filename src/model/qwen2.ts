// Qwen2 / Qwen2.5: the Llama shape with biases on the q, k and v projections.
import { z } from "zod";
import { parseHfConfig } from "./hf-config.ts";
import { familyConfig, familyMember, familySchema, familyToHf } from "./llama.ts";

export const slidingSchema = familySchema.extend({
  use_sliding_window: z.boolean().default(false),
  sliding_window: z.number().int().positive().nullish(),
});

export const qwen2 = familyMember(
  "qwen2",
  (json, where) => {
    const h = parseHfConfig(slidingSchema, json, where, "Qwen2");
    return familyConfig(h, where, "qwen2", {
      qkvBias: true,
      slidingWindow: h.use_sliding_window ? h.sliding_window : null,
    });
  },
  (c) => ({ ...familyToHf(c, "Qwen2ForCausalLM"), use_sliding_window: false }),
  { arch: "qwen2", permuteQK: false },
);
