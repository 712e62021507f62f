#!/usr/bin/env node
// Builds the native addon (native/) at `npm install`. It needs oneDNN's headers: when
// they are missing and we run as root with apt, it installs Debian's libdnnl-dev;
// otherwise it stops with the exact command to run.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const addon = join(root, "native", "build", "Release", "llmfab_native.node");
const headerDirs = ["/usr/include", "/usr/local/include", "/opt/homebrew/include"];

const hasOneDnn = () => headerDirs.some((d) => existsSync(join(d, "oneapi", "dnnl", "dnnl.hpp")));
const has = (cmd) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

function installOneDnn() {
  if (process.platform === "darwin") {
    fail("oneDNN is missing. Install it with:  brew install onednn libomp");
  }
  const isRoot = process.getuid?.() === 0;
  if (!isRoot || !has("apt-get")) {
    fail("oneDNN is missing. Install it with:  sudo apt-get install -y libdnnl-dev");
  }
  console.log("llmfab: installing oneDNN (apt-get install libdnnl-dev) ...");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
  execFileSync("apt-get", ["install", "-y", "-qq", "libdnnl-dev"], { stdio: "inherit", env });
}

function fail(message) {
  console.error(`llmfab: ${message}`);
  process.exit(1);
}

// node-gyp needs Node's headers; npm points it at them through npm_config_nodedir, and a
// Node installed with its headers has them next to the binary.
function nodedirArgs() {
  const prefix = join(dirname(process.execPath), "..");
  const dir =
    process.env.npm_config_nodedir || (existsSync(join(prefix, "include", "node", "node_api.h")) ? prefix : "");
  return dir ? [`--nodedir=${dir}`] : [];
}

/**
 * Chinese OCR reads Debian's tesseract-ocr-chi-sim data (English ships in an npm package).
 * Installed here when we can, as oneDNN is; without it, `llmfab ocr --lang chi_sim` says
 * what to install, and everything else works.
 */
function installChineseOcrData() {
  const data = "/usr/share/tesseract-ocr/5/tessdata/chi_sim.traineddata";
  if (existsSync(data) || process.platform !== "linux" || process.getuid?.() !== 0 || !has("apt-get")) return;
  console.log("llmfab: installing Chinese OCR data (apt-get install tesseract-ocr-chi-sim) ...");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const r = spawnSync("sh", ["-c", "apt-get update -qq && apt-get install -y -qq tesseract-ocr-chi-sim"], {
    stdio: "inherit",
    env,
  });
  if (r.status !== 0)
    console.log("llmfab: could not install tesseract-ocr-chi-sim; Chinese OCR will say it is missing");
}

const force = process.argv.includes("--force");
if (existsSync(addon) && !force && !process.env.npm_lifecycle_event) process.exit(0);
if (!hasOneDnn()) installOneDnn();
installChineseOcrData();
const gyp = join(root, "node_modules", "node-gyp", "bin", "node-gyp.js");
const result = spawnSync(process.execPath, [gyp, "rebuild", "-j", "max", "--loglevel=warn", ...nodedirArgs()], {
  cwd: join(root, "native"),
  stdio: "inherit",
});
if (result.status !== 0) fail("building the native addon failed (see the compiler output above).");

// The MPI collectives (data-parallel training under mpirun) are an addon of their own, built
// where MPI is installed; without it every command runs as one process.
if (has("mpicxx")) {
  const mpi = spawnSync(process.execPath, [gyp, "rebuild", "--loglevel=warn", ...nodedirArgs()], {
    cwd: join(root, "native", "mpi"),
    stdio: "inherit",
  });
  if (mpi.status !== 0) console.log("llmfab: building the MPI addon failed; training runs as one process only");
}
