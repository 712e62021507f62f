// llmfab's own cache folder (downloaded sources, models read from GGUF): $LLMFAB_CACHE, or
// llmfab under $XDG_CACHE_HOME (default ~/.cache).
import { homedir } from "node:os";
import { join } from "node:path";

export function cacheDir(): string {
  return process.env.LLMFAB_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "llmfab");
}
