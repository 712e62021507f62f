// Running the llmfab command as a user would, and checking its one-line errors.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";

export const root = new URL("..", import.meta.url).pathname;

export function llmfab(args: string[], input?: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(root, "bin/llmfab.js"), "--threads", "1", ...args], {
    encoding: "utf8",
    input,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function assertOneLineError(r: { code: number; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 1, `exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
  assert.match(lines[0] as string, pattern);
}
