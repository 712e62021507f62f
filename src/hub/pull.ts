// Models from the Hugging Face Hub, kept in the cache layout Python's huggingface_hub
// uses (models--org--name/{blobs,snapshots,refs}), so a model either side fetched is
// found by the other. @huggingface/hub talks to the Hub (repository info, file list,
// range requests); this file lays the files out, resumes partial downloads and checks
// every byte against the Hub's hashes (sha256 for LFS files, git's sha1 for the rest).
import { createHash } from "node:crypto";
import {
  createReadStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
} from "node:fs";
import { open } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { downloadFile, getHFHubCachePath, listFiles, modelInfo } from "@huggingface/hub";
import { writeFileAtomic } from "../io/atomic.ts";

/** What a model needs: config, weights (sharded with their index), tokenizer, generation config. */
const WANTED = [
  /^config\.json$/,
  /^generation_config\.json$/,
  /^tokenizer\.json$/,
  /^tokenizer_config\.json$/,
  /^special_tokens_map\.json$/,
  /^model(-\d+-of-\d+)?\.safetensors$/,
  /^model\.safetensors\.index\.json$/,
];

export interface HubSettings {
  /** the cache root ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub) */
  cacheDir: string;
  /** the Hub's address ($HF_ENDPOINT) */
  endpoint: string;
  token?: string;
  /** $HF_HUB_OFFLINE: only the cache is used */
  offline: boolean;
}

/** The settings Hugging Face's own tools read from the environment. */
export function hubSettings(env: NodeJS.ProcessEnv = process.env): HubSettings {
  const offline = (env.HF_HUB_OFFLINE ?? "").toLowerCase();
  return {
    // HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub: the library's own rule.
    cacheDir: getHFHubCachePath(),
    endpoint: (env.HF_ENDPOINT ?? "https://huggingface.co").replace(/\/+$/, ""),
    ...(env.HF_TOKEN ? { token: env.HF_TOKEN } : {}),
    offline: ["1", "true", "yes", "on"].includes(offline),
  };
}

export interface ModelRef {
  /** org/name */
  name: string;
  /** branch, tag or commit ("main" unless given) */
  revision: string;
}

const REF = /^([\w.-]+\/[\w.-]+)(?:@([\w./-]+))?$/;
const COMMIT = /^[0-9a-f]{40}$/;

/** org/name[@revision], or null for anything else (a local path). */
export function parseModelRef(spec: string): ModelRef | null {
  const m = REF.exec(spec);
  return m ? { name: m[1] as string, revision: m[2] ?? "main" } : null;
}

/** models--org--name under the cache root. */
export function repoCacheDir(cacheDir: string, name: string): string {
  return join(cacheDir, `models--${name.split("/").join("--")}`);
}

/** The snapshot directory of a cached revision, or null when it is not in the cache. */
export function cachedSnapshot(settings: HubSettings, ref: ModelRef): string | null {
  const repo = repoCacheDir(settings.cacheDir, ref.name);
  const refFile = join(repo, "refs", ref.revision);
  const commit = COMMIT.test(ref.revision)
    ? ref.revision
    : existsSync(refFile)
      ? readFileSync(refFile, "utf8").trim()
      : null;
  if (!commit) return null;
  const snapshot = join(repo, "snapshots", commit);
  return existsSync(join(snapshot, "config.json")) ? snapshot : null;
}

export interface PullProgress {
  file: string;
  bytes: number;
  total: number;
}

export interface PullResult {
  snapshot: string;
  commit: string;
  /** files fetched now (the rest were in the cache) */
  downloaded: string[];
}

/** Downloads what a model needs into the cache (what is there already is kept); returns its snapshot. */
export async function pullModel(
  ref: ModelRef,
  settings: HubSettings,
  onProgress: (p: PullProgress) => void = () => {},
): Promise<PullResult> {
  const label = `${ref.name}@${ref.revision}`;
  if (settings.offline) {
    const snapshot = cachedSnapshot(settings, ref);
    if (!snapshot) throw new Error(`${label} is not in the cache at ${settings.cacheDir}, and HF_HUB_OFFLINE is set`);
    return { snapshot, commit: snapshot.split("/").pop() as string, downloaded: [] };
  }
  const credentials = { hubUrl: settings.endpoint, ...(settings.token ? { accessToken: settings.token } : {}) };
  const repo = { type: "model" as const, name: ref.name };
  const info = await hubCall(label, () =>
    modelInfo({ name: ref.name, revision: ref.revision, additionalFields: ["sha"], ...credentials }),
  );
  const commit = (info as { sha?: string }).sha;
  if (!commit || !COMMIT.test(commit)) throw new Error(`${label}: the Hub did not name the revision's commit`);
  const files = [];
  for await (const f of listFiles({ repo, revision: commit, recursive: true, ...credentials })) {
    if (f.type === "file" && WANTED.some((re) => re.test(f.path))) files.push(f);
  }
  if (!files.some((f) => f.path === "config.json")) throw new Error(`${label}: the repository has no config.json`);
  if (!files.some((f) => f.path.endsWith(".safetensors")))
    throw new Error(`${label}: the repository has no safetensors weights (pytorch_model.bin is not read)`);

  const storage = repoCacheDir(settings.cacheDir, ref.name);
  const snapshot = join(storage, "snapshots", commit);
  const downloaded: string[] = [];
  for (const f of files) {
    const etag = f.lfs?.oid ?? f.oid;
    if (!etag) throw new Error(`${label}: the Hub gave no hash for ${f.path}`);
    const blob = join(storage, "blobs", etag);
    if (!existsSync(blob)) {
      await fetchBlob(
        blob,
        f.size,
        { sha256: f.lfs?.oid, gitSha1: f.lfs ? undefined : f.oid },
        async (offset) => {
          const remote = await hubCall(label, () =>
            downloadFile({ repo, path: f.path, revision: commit, xet: false, ...credentials }),
          );
          if (!remote) throw new Error(`${label}: ${f.path} is listed but cannot be downloaded`);
          return remote.slice(offset).stream();
        },
        (bytes) => onProgress({ file: f.path, bytes, total: f.size }),
      );
      downloaded.push(f.path);
    }
    const link = join(snapshot, f.path);
    if (!existsSync(link)) {
      mkdirSync(dirname(link), { recursive: true });
      rmSync(link, { force: true }); // a dangling link
      symlinkSync(relative(dirname(link), blob), link);
    }
  }
  if (ref.revision !== commit) writeFileAtomic(join(storage, "refs", ref.revision), commit);
  return { snapshot, commit, downloaded };
}

/** Errors from the Hub, said with the model they concern. */
async function hubCall<T>(label: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    throw new Error(`${label}: ${(e as Error).message}`);
  }
}

/**
 * Downloads a blob to `<blob>.incomplete`, continuing a partial one where it stopped,
 * then checks its size and hash before renaming it into place.
 */
async function fetchBlob(
  blob: string,
  size: number,
  hashes: { sha256?: string; gitSha1?: string },
  streamFrom: (offset: number) => Promise<ReadableStream<Uint8Array>>,
  onBytes: (bytes: number) => void,
): Promise<void> {
  mkdirSync(dirname(blob), { recursive: true });
  const partial = `${blob}.incomplete`;
  let offset = existsSync(partial) ? statSync(partial).size : 0;
  if (offset > size) {
    rmSync(partial);
    offset = 0;
  }
  if (offset < size) {
    const out = await open(partial, "a");
    try {
      onBytes(offset);
      for await (const chunk of Readable.fromWeb((await streamFrom(offset)) as WebReadableStream<Uint8Array>)) {
        await out.write(chunk as Buffer);
        offset += chunk.length;
        onBytes(offset);
      }
    } finally {
      await out.close();
    }
  }
  const got = statSync(partial).size;
  if (got !== size) throw new Error(`${blob}: downloaded ${got} bytes, expected ${size}; run the pull again to resume`);
  const check = async (algorithm: "sha256" | "sha1", expected: string, prefix?: string) => {
    const hash = createHash(algorithm);
    if (prefix) hash.update(prefix);
    for await (const chunk of createReadStream(partial)) hash.update(chunk as Buffer);
    const actual = hash.digest("hex");
    if (actual !== expected) {
      rmSync(partial);
      throw new Error(`${blob}: checksum mismatch (${algorithm} ${actual}, the Hub says ${expected}); removed it`);
    }
  };
  if (hashes.sha256) await check("sha256", hashes.sha256);
  else if (hashes.gitSha1) await check("sha1", hashes.gitSha1, `blob ${size}\0`);
  renameSync(partial, blob);
}
