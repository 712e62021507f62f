// Temporary directories for tests, removed when the test process exits (a test file runs
// in its own process), so that running the suite again and again does not fill the disk.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const made: string[] = [];
process.on("exit", () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory named llmfab-<what>-XXXXXX under the system's temporary folder. */
export function tempDir(what: string): string {
  const dir = mkdtempSync(join(tmpdir(), `llmfab-${what}-`));
  made.push(dir);
  return dir;
}
