// Starts the server for a model directory and shuts it down gracefully on SIGINT/SIGTERM:
// stop accepting connections, let in-flight requests finish, stop the engine.
import { basename, dirname, resolve } from "node:path";
import type { FastifyInstance } from "fastify";
import { BUILTIN_TOOLS, builtinTools } from "../agent/builtin.ts";
import type { PromptFile } from "../infer/prompt-file.ts";
import { readModelConfig } from "../model/directory.ts";
import { adapterBase, isAdapterDir } from "../model/peft.ts";
import { type OcrLanguage, stopOcr } from "../ocr/ocr.ts";
import { loadChatCodec } from "../pipeline/codec.ts";
import { trainedTools } from "../pipeline/sft.ts";
import { type IndexDatabase, openIndex } from "../retrieval/index.ts";
import { searchTool } from "../retrieval/tool.ts";
import { buildServer } from "./app.ts";
import type { InjectedFault } from "./engine-worker.ts";
import { Generator } from "./generator.ts";

export interface ServeOptions {
  model: string;
  host: string;
  port: number;
  apiKey?: string;
  /** sequences generated at once */
  slots: number;
  /** requests waiting beyond the slots before 429 */
  maxQueue: number;
  threads: number;
  /** the id in /v1/models (default: from the model's folder) */
  modelName?: string;
  /** seconds an engine may hold requests without finishing a step before /health says "stalled" */
  stallSeconds?: number;
  register?: (app: FastifyInstance) => void;
  /** one line per request */
  log?: (line: string) => void;
  /** where feedback on answers is appended (POST /v1/feedback); none without it */
  feedbackFile?: string;
  /** an index (llmfab index) that requests may search, and the chat page's search tool reads */
  search?: string;
  ocrLanguages?: OcrLanguage[];
  /** a system prompt and demonstrations put before every conversation */
  prompt?: PromptFile;
  /** called with each chat request's rendered prompt */
  onPrompt?: (prompt: string) => void;
  /** request bodies' size limit in bytes (images come as data URLs) */
  bodyLimit?: number;
  /** tests only: the moment the clock tool reads */
  now?: () => Date;
  /** tests only: make the engine fail on purpose */
  fault?: InjectedFault;
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  modelName: string;
  close(): Promise<void>;
}

/** Folder names that say nothing on their own; the parent's name goes first. */
const GENERIC_NAMES = new Set(["model", "chat", "final", "merged", "sft", "checkpoint", "adapter", "out"]);

/** A model's id from its folder: "runs/quickstart/chat" -> "quickstart/chat", "my-gpt" -> "my-gpt". */
export function modelIdOf(dir: string): string {
  const path = resolve(dir);
  const name = basename(path);
  const parent = basename(dirname(path));
  return GENERIC_NAMES.has(name) && parent && parent !== "/" ? `${parent}/${name}` : name;
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  // An adapter directory serves its base model with the adapters attached.
  const config = readModelConfig(isAdapterDir(o.model) ? adapterBase(o.model) : o.model);
  const codec = loadChatCodec(o.model);
  const generator = new Generator({
    modelDir: resolve(o.model),
    slots: o.slots,
    threads: o.threads,
    maxInFlight: o.slots + o.maxQueue,
    stallSeconds: o.stallSeconds ?? 120,
    fault: o.fault,
  });
  await generator.ready;
  const db: IndexDatabase | undefined = o.search ? openIndex(o.search, "read") : undefined;
  const clock = o.now && { now: o.now };
  const tools = builtinTools([...BUILTIN_TOOLS], clock);
  if (db) tools.push(searchTool(db, clock));
  const modelName = o.modelName ?? modelIdOf(o.model);
  const app = buildServer({
    modelName,
    log: o.log,
    codec,
    generator,
    contextLength: config.blockSize,
    apiKey: o.apiKey,
    register: o.register,
    tools: { tools, trained: trainedTools(o.model) },
    search: db,
    ocrLanguages: o.ocrLanguages,
    ...(config.vision ? { vision: config.vision } : {}),
    prompt: o.prompt,
    now: o.now,
    onPrompt: o.onPrompt,
    bodyLimit: o.bodyLimit ?? 32 * 2 ** 20,
    ...(o.feedbackFile ? { feedbackFile: o.feedbackFile } : {}),
  });
  const address = await app.listen({ host: o.host, port: o.port });
  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      await app.close(); // waits for in-flight requests
      await generator.close();
      db?.close();
      await stopOcr();
    })();
    return closing;
  };
  return { app, url: address, modelName, close };
}
