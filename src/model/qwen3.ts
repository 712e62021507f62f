// Qwen3: the Llama shape with an RMSNorm on each head of q and k (before RoPE), and a
// head width of its own (head_dim: 128 in the released models, whatever hidden_size is).
import { z } from "zod";
import { parseHfConfig, unsupported } from "./hf-config.ts";
import { familyConfig, familyMember, familyToHf } from "./llama.ts";
import { slidingSchema } from "./qwen2.ts";

const schema = slidingSchema.extend({ attention_bias: z.boolean().default(false) });

export const qwen3 = familyMember(
  "qwen3",
  (json, where) => {
    const h = parseHfConfig(schema, json, where, "Qwen3");
    if (h.attention_bias) unsupported(where, "attention_bias", true, "Qwen3 without attention biases");
    return familyConfig(h, where, "qwen3", {
      qkNorm: true,
      slidingWindow: h.use_sliding_window ? h.sliding_window : null,
    });
  },
  (c) => ({ ...familyToHf(c, "Qwen3ForCausalLM"), attention_bias: false, use_sliding_window: false }),
  { arch: "qwen3", permuteQK: false },
);
