// Data parallelism: every rank holds the model and runs its share of each batch; the
// gradients are then summed across ranks in buckets (a few large all-reduces rather than
// one per parameter), so every rank takes the same optimizer step and the weights stay equal.
import type { Communicator } from "../backend/mpi.ts";
import type { AdamWState } from "../optim/adamw.ts";
import type { Tensor } from "../tensor/index.ts";

/** Floats per all-reduce: 16 MB buckets. */
const BUCKET_FLOATS = 4 << 20;

/** The staging buffer of sumGradients for these parameters: made once per run. */
export function gradientBucket(params: [string, Tensor][], bucketFloats = BUCKET_FLOATS): Float32Array {
  return new Float32Array(
    Math.min(
      bucketFloats,
      params.reduce((n, [, p]) => n + p.size, 0),
    ),
  );
}

/** Sums every parameter's gradient across ranks, in place, through `bucket`; returns the seconds it took. */
export function sumGradients(params: [string, Tensor][], comm: Communicator, bucket: Float32Array): number {
  if (comm.size === 1) return 0;
  const started = performance.now();
  // Every rank reduces the same buffers in the same order: a parameter this rank's share
  // did not reach still sends its zeros (buffers can be longer than their tensor: the size counts).
  const grads = params.map(([, p]) => p.ensureGrad().subarray(0, p.size));
  let pending: Float32Array[] = [];
  let filled = 0;
  const flush = () => {
    comm.sum(bucket, filled);
    let at = 0;
    for (const g of pending) {
      g.set(bucket.subarray(at, at + g.length));
      at += g.length;
    }
    pending = [];
    filled = 0;
  };
  for (const g of grads) {
    if (g.length > bucket.length) {
      comm.sum(g); // larger than a bucket: reduced where it lies
      continue;
    }
    if (filled + g.length > bucket.length) flush();
    bucket.set(g, filled);
    pending.push(g);
    filled += g.length;
  }
  if (filled) flush();
  return (performance.now() - started) / 1000;
}

/** This rank's rows of a batch of `rows` rows: an equal, contiguous share. */
export function rankRows(rows: number, comm: Communicator, what: string): { start: number; count: number } {
  if (rows % comm.size !== 0)
    throw new Error(
      `${what} is ${rows}, which ${comm.size} ranks cannot share equally; make it a multiple of ${comm.size}`,
    );
  const count = rows / comm.size;
  return { start: comm.rank * count, count };
}

/**
 * ZeRO stage 1: which rank keeps each parameter's optimizer moments and updates it. Largest
 * parameters first, each to the rank holding the fewest values so far, so the shards (and
 * the memory they save) are even; the same on every rank.
 */
export function shardOwners(params: [string, Tensor][], ranks: number): Map<string, number> {
  const load = new Array<number>(ranks).fill(0);
  const owners = new Map<string, number>();
  const bySize = [...params].sort((a, b) => b[1].size - a[1].size || (a[0] < b[0] ? -1 : 1));
  for (const [name, p] of bySize) {
    const rank = load.indexOf(Math.min(...load));
    owners.set(name, rank);
    load[rank] = (load[rank] as number) + p.size;
  }
  return owners;
}

/** After each rank updated the parameters it owns: every rank gets every parameter from its owner. */
export function shareUpdatedParameters(
  params: [string, Tensor][],
  owners: Map<string, number>,
  comm: Communicator,
): void {
  for (const [name, p] of params) comm.broadcast(p.data.subarray(0, p.size), owners.get(name) as number);
}

/**
 * The whole optimizer state, gathered from the ranks that own its parts (for a checkpoint,
 * which any number of ranks can resume). Every rank must call it; every rank gets it all.
 */
export function gatherOptimizerState(
  params: [string, Tensor][],
  owners: Map<string, number>,
  mine: AdamWState,
  comm: Communicator,
): AdamWState {
  const full: AdamWState = { step: mine.step, m: new Map(), v: new Map() };
  for (const [name, p] of params) {
    const owner = owners.get(name) as number;
    for (const [moments, into] of [
      [mine.m, full.m],
      [mine.v, full.v],
    ] as const) {
      const values = comm.rank === owner ? (moments.get(name) as Float32Array) : new Float32Array(p.size);
      comm.broadcast(values, owner);
      into.set(name, values);
    }
  }
  return full;
}
