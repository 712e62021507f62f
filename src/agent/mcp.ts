// Tools from Model Context Protocol servers: `--mcp "CMD ARGS"` starts a server over stdio
// with the official SDK's client, lists its tools, and offers each to the model as a Tool
// whose calls go to that server.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { type Tool, ToolError } from "./tool.ts";

export interface McpConnection {
  /** the server's command line, for messages */
  command: string;
  tools: Tool[];
  close(): Promise<void>;
}

/** Splits a command line into words; "double" or 'single' quotes keep spaces in a word. */
export function splitCommand(line: string): string[] {
  const words = line.match(/"[^"]*"|'[^']*'|\S+/g) ?? [];
  return words.map((w) => (/^(["']).*\1$/.test(w) ? w.slice(1, -1) : w));
}

interface TextContent {
  type: string;
  text?: string;
}

/** Starts an MCP server and connects to it; throws with the command in the message if it cannot. */
export async function connectMcp(commandLine: string, timeoutMs = 20_000): Promise<McpConnection> {
  const [command, ...args] = splitCommand(commandLine);
  if (!command) throw new Error("--mcp needs a command to start the server");
  const transport = new StdioClientTransport({ command, args, stderr: "pipe" });
  const client = new Client({ name: "llmfab", version: "1" });
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    await Promise.race([client.connect(transport), timeout]);
    const { tools } = await Promise.race([client.listTools(), timeout]);
    return {
      command: commandLine,
      tools: tools.map((t) => ({
        name: t.name,
        description: t.description ?? "",
        parameters: t.inputSchema as Record<string, unknown>,
        async run(input: unknown) {
          const r = await client.callTool({ name: t.name, arguments: (input ?? {}) as Record<string, unknown> });
          const text = ((r.content ?? []) as TextContent[])
            .map((c) => (c.type === "text" ? (c.text ?? "") : `[${c.type}]`))
            .join("\n");
          if (r.isError) throw new ToolError(text || `${t.name} reported an error`);
          return text;
        },
      })),
      close: () => client.close(),
    };
  } catch (e) {
    await client.close().catch(() => {});
    throw new Error(`MCP server "${commandLine}": ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}
