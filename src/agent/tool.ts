// What a tool is: a name, a description and a JSON Schema of its arguments (what the model
// sees, in OpenAI's `tools` format), and a function that runs it. Arguments are validated
// with zod before the tool runs; a tool that fails, refuses or runs too long gives a result
// that says so (the model reads it as the tool's answer), never an exception.
import { z } from "zod";
import type { ToolSpec } from "../infer/chat.ts";

export interface Tool {
  name: string;
  description: string;
  /** JSON Schema of the arguments object */
  parameters: Record<string, unknown>;
  run(args: unknown): Promise<string> | string;
}

/** A tool whose arguments are a zod object schema; the JSON Schema is derived from it. */
export function defineTool<S extends z.ZodObject>(
  name: string,
  description: string,
  args: S,
  run: (args: z.infer<S>) => Promise<string> | string,
): Tool {
  const { $schema: _, ...parameters } = z.toJSONSchema(args) as Record<string, unknown>;
  return {
    name,
    description,
    parameters,
    run(raw: unknown) {
      const parsed = args.safeParse(raw ?? {});
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const where = issue?.path.length ? issue.path.join(".") : "arguments";
        throw new ToolError(`${where}: ${issue?.message ?? "invalid"}`);
      }
      return run(parsed.data);
    },
  };
}

/** A refusal or failure a tool reports to the model (bad arguments, an expression it will not run). */
export class ToolError extends Error {}

export interface ToolResult {
  ok: boolean;
  /** what the model reads: the tool's output, or "error: ..." */
  content: string;
}

/** Runs a tool with a time limit; every failure becomes an error result. */
export async function runTool(tool: Tool, args: unknown, timeoutMs = 5000): Promise<ToolResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ToolError(`${tool.name} took longer than ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const content = await Promise.race([Promise.resolve().then(() => tool.run(args)), timeout]);
    return { ok: true, content };
  } catch (e) {
    return { ok: false, content: `error: ${e instanceof Error ? e.message : String(e)}` };
  } finally {
    clearTimeout(timer);
  }
}

/** What the model is told about the tools (the chat template lists these). */
export function toolSpecs(tools: Tool[]): ToolSpec[] {
  return tools.map(({ name, description, parameters }) => ({ name, description, parameters }));
}

/** The tools as OpenAI's API lists them in a request. */
export function openAiTools(tools: Tool[]): { type: "function"; function: ToolSpec }[] {
  return toolSpecs(tools).map((spec) => ({ type: "function", function: spec }));
}
