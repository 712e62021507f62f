// Wall time and peak RSS of a child process, measured the same way for every tool:
// python's resource.getrusage(RUSAGE_CHILDREN) around a subprocess.
import { spawnSync } from "node:child_process";

export interface ProcessMeasure {
  wallSeconds: number;
  peakRssMb: number;
  stdout: string;
}

const wrapper = [
  "import resource, subprocess, sys, time",
  "t = time.time()",
  "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)",
  "sys.stderr.write(r.stderr)",
  "print(r.stdout)",
  "print('MEASURE', r.returncode, time.time() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
].join("\n");

export function measureProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): ProcessMeasure {
  const r = spawnSync("python3", ["-c", wrapper, cmd, ...args], { encoding: "utf8", env });
  const line = r.stdout.split("\n").find((l) => l.startsWith("MEASURE"));
  if (!line) throw new Error(`could not measure ${cmd}: ${r.stderr}`);
  const [, code, wall, rss] = line.split(" ");
  if (code !== "0") throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr.slice(-500)}`);
  return { wallSeconds: Number(wall), peakRssMb: Number(rss) / 1024, stdout: r.stdout };
}

export function hasCommand(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}

/**
 * Runs a bench worker in a process of its own (its peak RSS is then its own): Node.js by
 * default, or `command` (mpirun); the worker prints its result as JSON on its last line.
 */
export function runWorker<T>(what: string, args: string[], command: string = process.execPath): T {
  const r = spawnSync(command, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${what} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop() as string) as T;
}
