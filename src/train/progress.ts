// Live training progress: a progress bar on a terminal, plain log lines elsewhere.
import cliProgress from "cli-progress";

export interface StepReport {
  step: number;
  loss: number;
  lr: number;
  /** left out where a step has no meaningful figure (DPO's pairs, RL's sampling-bound steps) */
  tokPerSec?: number;
  mfu?: number;
  /** the step's time; left out, the reporter measures it (the wall time since the last report) */
  ms?: number;
}

export interface Reporter {
  step(r: StepReport): void;
  evaluation(step: number, trainLoss: number, valLoss: number): void;
  stop(): void;
}

export function createReporter(total: number, done: number, logInterval: number, quiet: boolean): Reporter {
  if (quiet) return { step() {}, evaluation() {}, stop() {} };
  if (process.stderr.isTTY) return barReporter(total, done);
  // A step reported without its time took the wall time since the previous report.
  let last = performance.now();
  return {
    step(r) {
      const now = performance.now();
      const ms = r.ms ?? now - last;
      last = now;
      if (r.step % logInterval === 0 || r.step === total - 1) process.stderr.write(`${formatStep({ ...r, ms })}\n`);
    },
    evaluation(step, train, val) {
      process.stderr.write(`step ${step}: train loss ${train.toFixed(4)}, val loss ${val.toFixed(4)}\n`);
    },
    stop() {},
  };
}

function formatStep(r: StepReport): string {
  const parts = [`step ${r.step}: loss ${r.loss.toFixed(4)}`, `lr ${r.lr.toExponential(2)}`];
  if (r.ms !== undefined) parts.push(`${r.ms.toFixed(1)} ms`);
  if (r.tokPerSec !== undefined) parts.push(`${Math.round(r.tokPerSec)} tok/s`);
  if (r.mfu !== undefined) parts.push(`MFU ${(100 * r.mfu).toFixed(1)}%`);
  return parts.join(", ");
}

function barReporter(total: number, done: number): Reporter {
  const bar = new cliProgress.SingleBar(
    {
      format: "{bar} {value}/{total} | loss {loss} | val {val} | {tokps} tok/s | MFU {mfu}% | ETA {eta_formatted}",
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, done, { loss: "-", val: "-", tokps: "-", mfu: "-" });
  return {
    step(r) {
      bar.update(r.step + 1, {
        loss: r.loss.toFixed(4),
        tokps: r.tokPerSec === undefined ? "-" : Math.round(r.tokPerSec),
        mfu: r.mfu === undefined ? "-" : (100 * r.mfu).toFixed(1),
      });
    },
    evaluation(_step, _train, val) {
      bar.update({ val: val.toFixed(4) });
    },
    stop() {
      bar.stop();
    },
  };
}
