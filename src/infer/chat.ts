// Chat templates, as Hugging Face keeps them: a Jinja `chat_template` in the model's
// tokenizer_config.json, rendered with @huggingface/jinja. llmfab's BPE tokenizers write
// one that uses their chat special tokens; character-level models get plain text.
import { Template } from "@huggingface/jinja";

export type Role = "system" | "user" | "assistant" | "tool";

export interface ChatMessage {
  role: Role;
  content: string;
}

/** For vocabularies without special tokens (character-level models). */
export const PLAIN_CHAT_TEMPLATE =
  "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";

export function renderChat(template: string, messages: ChatMessage[], addGenerationPrompt = true): string {
  let compiled: Template;
  try {
    compiled = new Template(template);
  } catch (e) {
    throw new Error(`invalid chat template: ${(e as Error).message}`);
  }
  return compiled.render({ messages, add_generation_prompt: addGenerationPrompt, bos_token: "", eos_token: "" });
}
