// The OpenAI-compatible HTTP API on Fastify: models, completions, chat completions
// (with streaming as server-sent events), health. Requests are validated, errors come
// back as OpenAI error JSON, and generation runs on the engine worker.
import { randomUUID } from "node:crypto";
import Fastify, { type FastifyInstance, type FastifyReply } from "fastify";
import { z } from "zod";
import { withoutToolCalls } from "../agent/loop.ts";
import { runTool, type Tool } from "../agent/tool.ts";
import { type ChatMessage, heldToolCalls, IMAGE_PLACEHOLDER } from "../infer/chat.ts";
import type { GenerationOptions, GenerationResult, PromptImages } from "../infer/engine.ts";
import { compileSchema, SchemaError } from "../infer/json-schema.ts";
import { applyPrompt, type PromptFile } from "../infer/prompt-file.ts";
import { stackImages, type VisionConfig } from "../model/vision.ts";
import type { OcrLanguage } from "../ocr/ocr.ts";
import type { ChatCodec } from "../pipeline/codec.ts";
import { chatTokens } from "../pipeline/vision.ts";
import { appendFeedback, feedbackSchema } from "../posttrain/feedback.ts";
import { sourcesFooter } from "../retrieval/context.ts";
import type { IndexDatabase } from "../retrieval/index.ts";
import { EngineDownError, type Generator, QueueFullError } from "./generator.ts";
import { GroundingError, groundMessages, readImageParts, readVisionParts } from "./grounding.ts";
import { type ChatRequest, type CompletionRequest, chatRequest, completionRequest, describeIssue } from "./schemas.ts";
import { answerToolCalls, chatMessages, ToolRequestError, type ToolSetup, toolSetup } from "./tools.ts";

export interface ServerOptions {
  modelName: string;
  codec: ChatCodec;
  generator: Generator;
  contextLength: number;
  apiKey?: string;
  /** bytes */
  bodyLimit?: number;
  /** extra routes (the web UI) */
  register?: (app: FastifyInstance) => void;
  /** called with one line per request: method, path, status, milliseconds */
  log?: (line: string) => void;
  /** where POST /v1/feedback appends (no feedback route without it) */
  feedbackFile?: string;
  /** tools the server runs for the chat page (GET /v1/tools, POST /v1/tools/NAME), and those the model was trained to call */
  tools?: { tools: Tool[]; trained: string[] };
  /** the served model's vision encoder: image parts go to it (without one, OCR reads them) */
  vision?: VisionConfig;
  /** OCR languages for image parts (default: eng) */
  ocrLanguages?: OcrLanguage[];
  /** the index requests search with web_search_options */
  search?: IndexDatabase;
  /** a system prompt and demonstrations put before every conversation */
  prompt?: PromptFile;
  /** the clock date words in searches are read on (tests) */
  now?: () => Date;
  /** called with each chat request's rendered prompt (llmfab serve --log-prompts; tests) */
  onPrompt?: (prompt: string) => void;
}

const toolRun = z.object({ arguments: z.record(z.string(), z.unknown()).default({}) }).strict();

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = "invalid_request_error",
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

function errorBody(e: ApiError) {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

interface StreamChunks {
  first(index: number): object;
  delta(index: number, text: string): object;
  /** which generated text is not content: none, what is between tool call markers, or everything from the start */
  hiddenFrom: "none" | "markers" | "start";
  last(index: number, r: GenerationResult): object[];
}

export function buildServer(o: ServerOptions): FastifyInstance {
  const app = Fastify({ bodyLimit: o.bodyLimit ?? 1 << 20, logger: false });
  const created = Math.floor(Date.now() / 1000);

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    if (err instanceof ApiError) return reply.status(err.status).send(errorBody(err));
    if (err instanceof QueueFullError)
      return reply.status(429).send(errorBody(new ApiError(429, err.message, "rate_limit_error")));
    if (err instanceof EngineDownError)
      return reply.status(503).send(errorBody(new ApiError(503, err.message, "server_error", null, "engine_down")));
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    const message =
      err.code === "FST_ERR_CTP_INVALID_JSON_BODY" || err instanceof SyntaxError
        ? `malformed JSON body: ${err.message}`
        : err.message;
    return reply
      .status(status)
      .send(errorBody(new ApiError(status, message, status === 500 ? "server_error" : "invalid_request_error")));
  });
  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send(errorBody(new ApiError(404, `no route ${req.method} ${req.url}`))),
  );

  app.addHook("onRequest", async (req) => {
    if (!o.apiKey || !req.url.startsWith("/v1/")) return;
    if (req.headers.authorization !== `Bearer ${o.apiKey}`) {
      throw new ApiError(
        401,
        "invalid or missing API key (Authorization: Bearer <key>)",
        "invalid_request_error",
        null,
        "invalid_api_key",
      );
    }
  });

  if (o.log) {
    const log = o.log;
    app.addHook("onResponse", async (req, reply) => {
      log(`${req.method} ${req.url} ${reply.statusCode} ${reply.elapsedTime.toFixed(0)} ms`);
    });
  }

  // 200 while the engine makes progress; 503 when it has stopped or is stuck on its requests.
  app.get("/health", async (_req, reply) => {
    const health = o.generator.health();
    return reply.status(health.status === "ok" ? 200 : 503).send(health);
  });

  const feedbackFile = o.feedbackFile;
  if (feedbackFile) {
    app.post("/v1/feedback", async (req) => {
      const body = parse(feedbackSchema, req.body);
      appendFeedback(feedbackFile, { ...body, time: new Date().toISOString(), model: o.modelName });
      return { ok: true };
    });
  }

  // llmfab's own routes for the chat page, which runs the agent loop in the browser: the
  // built-in tools it may offer, and running one (time-limited; a failure is a result).
  const served = o.tools;
  if (served) {
    app.get("/v1/tools", async () => ({
      object: "list",
      data: served.tools.map((t) => ({
        type: "function",
        function: { name: t.name, description: t.description, parameters: t.parameters },
        trained: served.trained.includes(t.name),
      })),
    }));
    app.post<{ Params: { name: string } }>("/v1/tools/:name", async (req) => {
      const tool = served.tools.find((t) => t.name === req.params.name);
      if (!tool)
        throw new ApiError(404, `no tool "${req.params.name}" (tools: ${served.tools.map((t) => t.name).join(", ")})`);
      const body = parse(toolRun, req.body ?? {});
      return runTool(tool, body.arguments);
    });
  }

  app.get("/v1/models", async () => ({
    object: "list",
    data: [{ id: o.modelName, object: "model", created, owned_by: "llmfab" }],
  }));

  app.post("/v1/chat/completions", async (req, reply) => {
    // A vision model sees the images; for a text model, OCR reads their text into the message.
    const parsed = parse(chatRequest, req.body);
    const seen = o.vision ? await grounded(() => readVisionParts(parsed, o.vision as VisionConfig)) : null;
    const body = seen?.body ?? (await grounded(() => readImageParts(parsed, o.ocrLanguages ?? ["eng"])));
    const request = toolRequest(body);
    const { tools } = request;
    const { messages, footer } = searched(body, applyPrompt(o.prompt, request.messages));
    const text = o.codec.renderChat(messages, true, tools?.specs ?? []) + (tools?.prefix ?? "");
    o.onPrompt?.(text);
    const { tokens: prompt, imageStarts } = chatTokens(o.codec, text, o.vision);
    const images = seen?.images.length
      ? { pixels: stackImages(seen.images), count: seen.images.length, starts: imageStarts }
      : undefined;
    if (imageStarts.length !== (images?.count ?? 0))
      throw new ApiError(400, `messages: write no ${IMAGE_PLACEHOLDER} in text parts; send images as image_url parts`);
    const options = {
      ...generationOptions(body, body.max_completion_tokens ?? body.max_tokens, prompt.length),
      ...(tools ? toolCallOptions(tools) : responseSchema(body)),
    };
    const id = `chatcmpl-${randomUUID()}`;
    const n = body.n ?? 1;
    const chunk = (index: number, delta: object, finish: string | null) => ({
      id,
      object: "chat.completion.chunk",
      created: now(),
      model: o.modelName,
      choices: [{ index, delta, logprobs: null, finish_reason: finish }],
    });
    /** The answer's text and calls (a forced call's start is part of the prompt); without calls, the text as generated (stop strings applied). */
    const answer = (r: GenerationResult) => {
      const parsed = tools ? answerToolCalls(tools.prefix + o.codec.decodeRaw(r.ids)) : null;
      return parsed?.calls.length ? parsed : { content: r.text + footer(r.text), calls: [] };
    };
    if (body.stream) {
      return stream(
        reply,
        n,
        prompt,
        options,
        {
          first: (index) => chunk(index, { role: "assistant", content: "" }, null),
          delta: (index, content) => chunk(index, { content }, null),
          hiddenFrom: tools ? (tools.prefix ? "start" : "markers") : "none",
          last: (index, r) => {
            const { calls } = answer(r);
            if (calls.length === 0) {
              const sources = footer(r.text);
              return [
                ...(sources ? [chunk(index, { content: sources }, null)] : []),
                chunk(index, {}, finishReason(r)),
              ];
            }
            const deltas = calls.map((c, k) => ({ index: k, ...c }));
            return [chunk(index, { tool_calls: deltas }, null), chunk(index, {}, "tool_calls")];
          },
        },
        images,
      );
    }
    const results = await runAll(n, prompt, options, reply, images);
    return {
      id,
      object: "chat.completion",
      created: now(),
      model: o.modelName,
      choices: results.map((r, index) => {
        const { content, calls } = answer(r);
        return {
          index,
          message: calls.length
            ? { role: "assistant", content: content || null, tool_calls: calls }
            : { role: "assistant", content },
          logprobs: body.logprobs ? { content: tokenLogprobs(r) } : null,
          finish_reason: calls.length ? "tool_calls" : finishReason(r),
        };
      }),
      usage: usage(prompt.length, results),
    };
  });

  app.post("/v1/completions", async (req, reply) => {
    const body = parse(completionRequest, req.body);
    const text = typeof body.prompt === "string" ? body.prompt : (body.prompt[0] as string);
    const prompt = o.codec.encode(text, false);
    if (prompt.length === 0) throw new ApiError(400, "prompt: must not be empty", "invalid_request_error", "prompt");
    const options = generationOptions(body, body.max_tokens ?? 16, prompt.length);
    const id = `cmpl-${randomUUID()}`;
    const n = body.n ?? 1;
    if (body.stream) {
      const chunk = (index: number, delta: string, finish: string | null) => ({
        id,
        object: "text_completion",
        created: now(),
        model: o.modelName,
        choices: [{ index, text: delta, logprobs: null, finish_reason: finish }],
      });
      return stream(reply, n, prompt, options, {
        first: (index) => chunk(index, "", null),
        delta: (index, text) => chunk(index, text, null),
        hiddenFrom: "none",
        last: (index, r) => [chunk(index, "", finishReason(r))],
      });
    }
    const results = await runAll(n, prompt, options, reply);
    return {
      id,
      object: "text_completion",
      created: now(),
      model: o.modelName,
      choices: results.map((r, index) => ({
        index,
        text: (body.echo ? text : "") + r.text,
        logprobs: body.logprobs ? completionLogprobs(r) : null,
        finish_reason: finishReason(r),
      })),
      usage: usage(prompt.length, results),
    };
  });

  o.register?.(app);

  function tokenLogprobs(r: GenerationResult) {
    return r.ids.map((id, i) => {
      const token = o.codec.decode([id]);
      return { token, logprob: r.logprobs[i] as number, bytes: [...Buffer.from(token, "utf8")], top_logprobs: [] };
    });
  }

  function completionLogprobs(r: GenerationResult) {
    const tokens = r.ids.map((id) => o.codec.decode([id]));
    let offset = 0;
    const textOffset = tokens.map((t) => {
      const at = offset;
      offset += t.length;
      return at;
    });
    return { tokens, token_logprobs: r.logprobs, top_logprobs: null, text_offset: textOffset };
  }

  /** Tool calls held to the tools' schemas, where the model marks its calls and the schemas allow. */
  function toolCallOptions(tools: ToolSetup): Partial<GenerationOptions> {
    const toolCalls = tools.constrained
      ? heldToolCalls(tools.callable, o.codec.toolCallIds, tools.prefix !== "")
      : undefined;
    return toolCalls ? { toolCalls } : {};
  }

  /**
   * response_format as a schema the engine enforces (json_object: any object). With tools
   * in the request the tool-call format governs the answer instead.
   */
  function responseSchema(body: ChatRequest): Partial<GenerationOptions> {
    const format = body.response_format;
    if (!format || format.type === "text") return {};
    const schema =
      format.type === "json_object" ? { type: "object" } : (format.json_schema.schema ?? { type: "object" });
    try {
      compileSchema(schema);
    } catch (e) {
      if (!(e instanceof SchemaError)) throw e;
      throw new ApiError(400, e.message, "invalid_request_error", "response_format.json_schema.schema");
    }
    return { jsonSchema: schema };
  }

  function generationOptions(
    body: ChatRequest | CompletionRequest,
    maxTokens: number | null | undefined,
    promptTokens: number,
  ): Partial<GenerationOptions> {
    if (promptTokens >= o.contextLength) {
      throw new ApiError(
        400,
        `the prompt has ${promptTokens} tokens but the model's context is ${o.contextLength}`,
        "invalid_request_error",
        "messages",
        "context_length_exceeded",
      );
    }
    const stops = body.stop == null ? [] : typeof body.stop === "string" ? [body.stop] : body.stop;
    return {
      maxTokens: Math.min(maxTokens ?? o.contextLength, o.contextLength - promptTokens),
      temperature: body.temperature ?? 1,
      topP: body.top_p ?? 1,
      seed: body.seed ?? Math.floor(Math.random() * 2 ** 31),
      stop: stops,
      frequencyPenalty: body.frequency_penalty ?? 0,
      presencePenalty: body.presence_penalty ?? 0,
    };
  }

  function runAll(
    n: number,
    prompt: number[],
    options: Partial<GenerationOptions>,
    reply: FastifyReply,
    images?: PromptImages,
  ): Promise<GenerationResult[]> {
    const abort = abortOnClose(reply);
    return Promise.all(
      Array.from({ length: n }, (_, i) =>
        o.generator.generate(prompt, { ...options, seed: (options.seed ?? 0) + i }, undefined, abort.signal, images),
      ),
    );
  }

  /** Image parts read (a bad image is a 400 naming the part). */
  async function grounded<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (e) {
      if (e instanceof GroundingError) throw new ApiError(400, e.message, "invalid_request_error", e.param);
      throw e;
    }
  }

  /** With web_search_options: the index's passages in the system turn, and the footer listing the sources used. */
  function searched(body: ChatRequest, messages: ChatMessage[]) {
    const none = { messages, footer: (_answer: string) => "" };
    if (!body.web_search_options) return none;
    if (!o.search)
      throw new ApiError(
        400,
        "this server has no search index (start it with llmfab serve --search INDEX)",
        "invalid_request_error",
        "web_search_options",
      );
    const size = body.web_search_options.search_context_size ?? "medium";
    const found = groundMessages(messages, o.search, size, o.now?.() ?? new Date());
    return { messages: found.messages, footer: (answer: string) => sourcesFooter(answer, found.context.hits) };
  }

  /** The request's messages and tools; a malformed tool call or tool_choice is a 400. */
  function toolRequest(body: ChatRequest) {
    try {
      return { messages: chatMessages(body), tools: toolSetup(body, o.codec.toolCallIds !== null) };
    } catch (e) {
      if (e instanceof ToolRequestError) throw new ApiError(400, e.message, "invalid_request_error", e.param);
      throw e;
    }
  }

  /** Server-sent events: a first chunk per choice, one per text delta, the last ones, then [DONE]. */
  async function stream(
    reply: FastifyReply,
    n: number,
    prompt: number[],
    options: Partial<GenerationOptions>,
    chunks: StreamChunks,
    images?: PromptImages,
  ): Promise<void> {
    if (o.generator.inFlight + n > o.generator.maxInFlight)
      throw new QueueFullError("the server is busy; try again shortly");
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    const send = (data: object | string) =>
      res.write(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
    const abort = abortOnClose(reply);
    try {
      for (let i = 0; i < n; i++) send(chunks.first(i));
      await Promise.all(
        Array.from({ length: n }, async (_, index) => {
          // Text inside a tool call is not content: it comes back as tool_calls at the end.
          const visible =
            chunks.hiddenFrom === "none"
              ? (_token: number, text: string) => text
              : withoutToolCalls(o.codec.toolCallIds, chunks.hiddenFrom === "start");
          const r = await o.generator.generate(
            prompt,
            { ...options, seed: (options.seed ?? 0) + index },
            (text, token) => {
              const shown = visible(token, text);
              if (shown) send(chunks.delta(index, shown));
            },
            abort.signal,
            images,
          );
          for (const c of chunks.last(index, r)) send(c);
        }),
      );
      send("[DONE]");
    } catch (e) {
      send({ error: { message: (e as Error).message, type: "server_error", param: null, code: null } });
    } finally {
      res.end();
    }
  }

  return app;
}

function parse<T>(
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: import("zod").ZodError } },
  body: unknown,
): T {
  if (body === undefined || body === null || typeof body !== "object")
    throw new ApiError(400, "the request body must be a JSON object");
  const r = schema.safeParse(body);
  if (!r.success) {
    const { message, param } = describeIssue(r.error);
    throw new ApiError(400, message, "invalid_request_error", param);
  }
  return r.data;
}

/** Aborts when the response closes: a client that goes away cancels its generation. */
function abortOnClose(reply: FastifyReply): AbortController {
  const abort = new AbortController();
  reply.raw.on("close", () => {
    if (!reply.raw.writableFinished) abort.abort();
  });
  return abort;
}

function finishReason(r: GenerationResult): string {
  return r.finishReason === "length" ? "length" : "stop";
}

function usage(promptTokens: number, results: GenerationResult[]) {
  const completion = results.reduce((a, r) => a + r.ids.length, 0);
  return { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion };
}

function now(): number {
  return Math.floor(Date.now() / 1000);
}
