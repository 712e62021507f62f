// Starts the server for a model directory and shuts it down gracefully on SIGINT/SIGTERM:
// stop accepting connections, let in-flight requests finish, stop the engine.
import { basename, resolve } from "node:path";
import type { FastifyInstance } from "fastify";
import { readModelConfig } from "../model/directory.ts";
import { adapterBase, isAdapterDir } from "../model/peft.ts";
import { loadChatCodec } from "../pipeline/codec.ts";
import { buildServer } from "./app.ts";
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
  register?: (app: FastifyInstance) => void;
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  // An adapter directory serves its base model with the adapters attached.
  const config = readModelConfig(isAdapterDir(o.model) ? adapterBase(o.model) : o.model);
  const codec = loadChatCodec(o.model);
  const generator = new Generator(resolve(o.model), o.slots, o.threads, o.slots + o.maxQueue);
  await generator.ready;
  const app = buildServer({
    modelName: basename(resolve(o.model)),
    codec,
    generator,
    contextLength: config.blockSize,
    apiKey: o.apiKey,
    register: o.register,
  });
  const address = await app.listen({ host: o.host, port: o.port });
  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      await app.close(); // waits for in-flight requests
      await generator.close();
    })();
    return closing;
  };
  return { app, url: address, close };
}
