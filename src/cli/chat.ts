// `llmfab chat`: a terminal conversation with streamed answers. The engine keeps the
// conversation in its cache, so each turn only prefills the new messages. With tools, each
// turn runs the agent loop: the model's tool calls are run and shown, and it answers again.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { readClock } from "../agent/clock.ts";
import { agentTurn } from "../agent/loop.ts";
import type { Tool } from "../agent/tool.ts";
import { type ChatMessage, IMAGE_PLACEHOLDER, type ToolSpec } from "../infer/chat.ts";
import { Engine, type GenerationOptions } from "../infer/engine.ts";
import { applyPrompt, type PromptFile } from "../infer/prompt-file.ts";
import { loadAnyModel } from "../model/peft.ts";
import { type OcrLanguage, ocrNote, recognize } from "../ocr/ocr.ts";
import { engineGenerate } from "../pipeline/agent.ts";
import { loadChatCodec } from "../pipeline/codec.ts";
import { loadImage } from "../pipeline/vision.ts";
import { systemDateLine } from "../posttrain/synth.ts";
import { searchContext, sourcesFooter } from "../retrieval/context.ts";
import type { IndexDatabase } from "../retrieval/index.ts";

/** Whether a text is written in Chinese (any CJK ideograph). */
export const isChinese = (text: string) => /\p{Script=Han}/u.test(text);

/**
 * Today's date as deployed assistants put it in their system turn, in the user's language
 * and the forms llmfab synth trains on, so a model without tools can say what day it is.
 */
export function todayLine(now: Date, chinese: boolean, timezone?: string): string {
  const [y, m, d] = readClock(now, timezone).date.split("-").map(Number) as [number, number, number];
  return systemDateLine(new Date(Date.UTC(y, m - 1, d)), chinese);
}

const HELP =
  "commands: /reset (forget the conversation), /system TEXT (set the system prompt), /image PATH (an image for your next message: shown to a vision model, read by OCR for others), /exit";

export interface ChatOptions {
  generation: Partial<GenerationOptions>;
  /** put today's date in the system turn (in the language of the user's last message) */
  date: boolean;
  /** tools the model may call (none: a plain conversation) */
  tools: Tool[];
  now?: () => Date;
  /** retrieve passages from this index for each user turn, and list the sources after the answer */
  search?: { db: IndexDatabase; k: number };
  /** images whose text (OCR) goes into the first message */
  images?: string[];
  ocrLanguages?: OcrLanguage[];
  /** a system prompt and demonstrations before the conversation (llmfab prompt optimize) */
  prompt?: PromptFile;
}

/** An image's text as the note that goes into a message. */
async function readImage(path: string, langs: OcrLanguage[]): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})`);
  }
  return ocrNote(await recognize(bytes, path, langs), path, langs);
}

export async function runChat(modelDir: string, o: ChatOptions): Promise<void> {
  const options = o.generation;
  const now = o.now ?? (() => new Date());
  const codec = loadChatCodec(modelDir);
  const model = loadAnyModel(modelDir);
  const engine = new Engine(model, codec, 1);
  const vision = model.config.vision;
  let system = "";
  let history: ChatMessage[] = [];
  const langs = o.ocrLanguages ?? ["eng"];
  /** text read from images, waiting for the next message */
  const pending: string[] = [];
  /** images a vision model will see with the next message, and every image's pixels */
  const pendingImages: string[] = [];
  const pixels = new Map<string, Float32Array>();
  const hold = (note: string) => {
    pending.push(note);
    console.log(`${note}\n(this text goes with your next message)`);
  };
  const attachImage = async (path: string) => {
    if (!vision) return hold(await readImage(path, langs));
    const source = resolve(path);
    pixels.set(source, await loadImage(source, vision, path));
    pendingImages.push(source);
    console.log(`(${path} goes with your next message)`);
  };
  for (const path of o.images ?? []) await attachImage(path);
  // After every await: lines typed (or piped) before the interface exists wait in stdin.
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  console.log(`chatting with ${modelDir} (${HELP})`);

  /** A slash command's reply (null: not a command; "exit": leave). */
  const handle = (line: string): string | null => {
    if (line === "/exit" || line === "/quit") return "exit";
    if (line === "/reset") {
      history = [];
      return "(conversation cleared)";
    }
    if (line.startsWith("/system")) {
      system = line.slice("/system".length).trim();
      history = [];
      return system ? "(system prompt set; conversation cleared)" : "(system prompt removed)";
    }
    return line.startsWith("/") ? HELP : null;
  };

  /** /image PATH: a vision model sees it with the next message; for others its text is shown and kept. */
  const attach = async (path: string) => {
    try {
      await attachImage(path);
    } catch (e) {
      console.log(`(${(e as Error).message})`);
    }
  };

  /** The model's raw answer (special tokens written out) to the conversation, streamed to the terminal. */
  const streamed = engineGenerate(engine, codec, options, {
    onText: (text) => process.stdout.write(text),
    onCut: () => console.log("(the conversation is longer than the context; older turns are cut)"),
    ...(vision ? { images: { vision, pixels: (source: string) => pixels.get(source) as Float32Array } } : {}),
  });
  const generate = (messages: ChatMessage[], tools: ToolSpec[]): string => {
    const raw = streamed(messages, tools);
    process.stdout.write("\n");
    return raw;
  };

  const answer = async (line: string) => {
    const images = pendingImages.splice(0);
    const text = [...pending.splice(0), line].join("\n\n");
    history.push(
      images.length
        ? { role: "user", content: `${text}${IMAGE_PLACEHOLDER.repeat(images.length)}`, images }
        : { role: "user", content: text },
    );
    const today = o.date ? todayLine(now(), isChinese(line)) : "";
    const found = o.search ? searchContext(o.search.db, line, { k: o.search.k, now: now() }) : null;
    const systemTurn = [today, system, found?.system ?? ""].filter((s) => s !== "").join("\n\n");
    const conversation = applyPrompt(
      o.prompt,
      systemTurn ? [{ role: "system", content: systemTurn }, ...history] : history,
    );
    const added = await agentTurn(conversation, {
      generate,
      tools: o.tools,
      onToolCall: (s) => console.log(`  [${s.call.name} ${JSON.stringify(s.call.arguments)}] -> ${s.result}`),
    });
    history.push(...added);
    const footer = found ? sourcesFooter(added.at(-1)?.content ?? "", found.hits) : "";
    if (footer) console.log(footer.trimStart());
  };
  try {
    rl.setPrompt("> ");
    rl.prompt();
    // Lines are buffered while an answer is generated, so piped input works too.
    for await (const raw of rl) {
      const line = raw.trim();
      const reply = handle(line);
      if (reply === "exit") break;
      if (line.startsWith("/image ")) await attach(line.slice("/image ".length).trim());
      else if (reply !== null) console.log(reply);
      else if (line) await answer(line);
      rl.prompt();
    }
  } finally {
    rl.close();
  }
}
