// `llmfab chat` (the terminal) and `llmfab serve` (the OpenAI-compatible API and web pages).
import type { Command } from "commander";
import { modelDirArg, numberArg } from "./options.ts";
import type { Runtime } from "./program.ts";

interface ChatFlags {
  model: string;
  date: boolean;
  tools?: string;
  mcp: string[];
  temperature: number;
  topP: number;
  maxTokens: number;
  seed: number;
  search?: string;
  k: number;
  image: string[];
  ocrLang: string;
  prompt?: string;
}

interface ServeFlags {
  model: string;
  modelName?: string;
  host: string;
  port: number;
  apiKey?: string;
  slots: number;
  maxQueue: number;
  runs: string;
  feedback: string;
  quiet: boolean;
  search?: string;
  ocrLang: string;
  prompt?: string;
  logPrompts: boolean;
}

const repeatable = (v: string, all: string[]) => [...all, v];

/** --tools as given ("none": no tools), or by default the built-in tools the model was fine-tuned to call. */
function toolNames(flag: string | undefined, trained: string[], builtin: readonly string[]): string[] {
  if (flag === undefined) return trained.filter((t) => builtin.includes(t));
  return flag === "none" ? [] : flag.split(",").map((t) => t.trim());
}

export function registerServeCommands(program: Command, runtime: Runtime): void {
  program
    .command("chat")
    .description("chat with a model in the terminal")
    .requiredOption("--model <dir>", "model directory (or LoRA adapter directory)", modelDirArg)
    .option("--temperature <t>", "sampling temperature (0: greedy)", numberArg("temperature"), 0.7)
    .option("--top-p <p>", "nucleus sampling", numberArg("topP"), 0.95)
    .option("--max-tokens <n>", "longest answer in tokens", numberArg("maxTokens"), 256)
    .option("--seed <n>", "random seed", numberArg("seed"), 0)
    .option("--no-date", "leave today's date out of the system turn")
    .option(
      "--tools <names>",
      "tools the model may call, comma-separated: clock, calculator, search (needs --search) (default: those it was fine-tuned to call; none: no tools)",
    )
    .option(
      "--mcp <command>",
      'start an MCP server over stdio and offer its tools, e.g. --mcp "npx -y @modelcontextprotocol/server-everything" (repeatable)',
      repeatable,
      [],
    )
    .option(
      "--search <index>",
      "put the top passages of this index (llmfab index) in each turn's context, and cite them",
    )
    .option("--k <n>", "passages per turn with --search", numberArg("searchK"), 3)
    .option(
      "--image <file>",
      "read an image's text (OCR) into the first message (repeatable; /image PATH later)",
      repeatable,
      [],
    )
    .option("--ocr-lang <langs>", "OCR languages: eng, chi_sim, or eng+chi_sim", "eng")
    .option("--prompt <file>", "a system prompt and demonstrations to put first (llmfab prompt optimize --out)")
    .action(async (o: ChatFlags) => {
      const { runChat } = await import("./chat.ts");
      const { BUILTIN_TOOLS, builtinTools } = await import("../agent/builtin.ts");
      const { connectMcp } = await import("../agent/mcp.ts");
      const { trainedTools } = await import("../pipeline/sft.ts");
      const { parseOcrLanguages, stopOcr } = await import("../ocr/ocr.ts");
      const { readPromptFile } = await import("../infer/prompt-file.ts");
      const names = toolNames(o.tools, trainedTools(o.model), [...BUILTIN_TOOLS, "search"]);
      if (o.tools === undefined && names.length) console.log(`(tools it was fine-tuned to call: ${names.join(", ")})`);
      const db = o.search ? (await import("../retrieval/index.ts")).openIndex(o.search, "read") : undefined;
      const tools = builtinTools(names.filter((n) => n !== "search"));
      if (names.includes("search")) {
        if (!db) throw new Error("--tools search needs --search INDEX (the index the tool searches)");
        tools.push((await import("../retrieval/tool.ts")).searchTool(db));
      }
      const servers = [];
      try {
        for (const command of o.mcp) servers.push(await connectMcp(command));
        for (const server of servers) tools.push(...server.tools);
        const generation = { temperature: o.temperature, topP: o.topP, maxTokens: o.maxTokens, seed: o.seed };
        await runChat(o.model, {
          generation,
          date: o.date,
          tools,
          search: db && { db, k: o.k },
          images: o.image,
          ocrLanguages: parseOcrLanguages(o.ocrLang),
          prompt: o.prompt ? readPromptFile(o.prompt) : undefined,
        });
      } finally {
        for (const server of servers) await server.close();
        db?.close();
        await stopOcr();
      }
    });

  program
    .command("serve")
    .description("serve a model: OpenAI-compatible API, chat page and training dashboard")
    .requiredOption("--model <dir>", "model directory (or LoRA adapter directory)", modelDirArg)
    .option("--model-name <id>", "the model's id in /v1/models (default: from its folder, e.g. quickstart/chat)")
    .option("--host <host>", "address to bind", "127.0.0.1")
    .option("--port <n>", "port (0: any free port)", numberArg("port"), 8080)
    .option("--api-key <key>", "require Authorization: Bearer <key> on /v1 routes (the chat page asks for it)")
    .option("--slots <n>", "sequences generated at once", numberArg("slots"), 4)
    .option("--max-queue <n>", "requests waiting beyond the slots before 429", numberArg("queue"), 16)
    .option("--runs <dir>", "run directories for the training dashboard", "runs")
    .option(
      "--feedback <file>",
      "where 👍/👎 and regenerations on the chat page are kept (JSONL)",
      "runs/feedback.jsonl",
    )
    .option("--quiet", "no log line per request", false)
    .option(
      "--search <index>",
      "an index (llmfab index) that requests may search: web_search_options in the request, or the search tool",
    )
    .option("--ocr-lang <langs>", "OCR languages for image_url parts: eng, chi_sim, or eng+chi_sim", "eng")
    .option(
      "--prompt <file>",
      "a system prompt and demonstrations put before every conversation (llmfab prompt optimize)",
    )
    .option(
      "--log-prompts",
      "print each chat request's prompt as the model reads it (retrieved passages, OCR text)",
      false,
    )
    .action(async (o: ServeFlags) => {
      const { startServer } = await import("../server/serve.ts");
      const { parseOcrLanguages } = await import("../ocr/ocr.ts");
      const { readPromptFile } = await import("../infer/prompt-file.ts");
      const { registerWeb } = await import("../web/routes.ts");
      const server = await startServer({
        ...o,
        ocrLanguages: parseOcrLanguages(o.ocrLang),
        onPrompt: o.logPrompts
          ? (prompt) => console.log(`--- prompt ---\n${prompt}\n--- end of prompt ---`)
          : undefined,
        prompt: o.prompt ? readPromptFile(o.prompt) : undefined,
        threads: runtime.threads(),
        log: o.quiet ? undefined : (line) => console.log(line),
        register: (app) => registerWeb(app, { runsDir: o.runs }),
        feedbackFile: o.feedback,
      });
      console.log(
        `llmfab serving ${o.model} as "${server.modelName}" at ${server.url} (chat page: ${server.url}/, dashboard: ${server.url}/dashboard)`,
      );
      const shutdown = () => {
        console.log("shutting down: finishing in-flight requests");
        server.close().then(() => process.exit(0));
      };
      process.once("SIGINT", shutdown);
      process.once("SIGTERM", shutdown);
    });
}
