// The browser side, served by the API server: a chat page (streams from
// /v1/chat/completions) and a training dashboard that plots a run's metrics.jsonl.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { FastifyInstance } from "fastify";

export interface WebOptions {
  /** folder whose subfolders are run directories (each with metrics.jsonl) */
  runsDir: string;
}

const page = (name: string) => readFileSync(new URL(`./${name}`, import.meta.url), "utf8");
// marked's browser build; its package exports only the module entry, so go by its folder.
const markedPath = join(dirname(createRequire(import.meta.url).resolve("marked/package.json")), "lib", "marked.umd.js");

/** Run directories under `root` (searched two levels deep) that have metrics. */
export function listRuns(root: string): string[] {
  if (!existsSync(root)) return [];
  const runs: string[] = [];
  const visit = (dir: string, rel: string, depth: number) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (!statSync(path).isDirectory()) continue;
      const id = rel ? `${rel}/${name}` : name;
      if (existsSync(join(path, "metrics.jsonl"))) runs.push(id);
      else if (depth > 0) visit(path, id, depth - 1);
    }
  };
  visit(root, "", 1);
  return runs;
}

export function registerWeb(app: FastifyInstance, o: WebOptions): void {
  const chat = page("chat.html");
  const dashboard = page("dashboard.html");
  app.get("/", async (_req, reply) => reply.type("text/html").send(chat));
  app.get("/dashboard", async (_req, reply) => reply.type("text/html").send(dashboard));
  app.get("/static/marked.js", async (_req, reply) =>
    reply.type("application/javascript").send(readFileSync(markedPath, "utf8")),
  );
  app.get("/api/runs", async () => ({ runs: listRuns(o.runsDir) }));
  app.get<{ Querystring: { run?: string } }>("/api/metrics", async (req, reply) => {
    const run = req.query.run ?? "";
    if (!listRuns(o.runsDir).includes(run)) {
      return reply.status(404).send({
        error: {
          message: `no run ${JSON.stringify(run)} under ${o.runsDir}`,
          type: "invalid_request_error",
          param: "run",
          code: null,
        },
      });
    }
    const lines = readFileSync(join(o.runsDir, run, "metrics.jsonl"), "utf8").split("\n");
    return { run, metrics: lines.filter((l) => l.trim()).map((l) => JSON.parse(l)) };
  });
}
