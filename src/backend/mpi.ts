// The communicator of data-parallel training. Started under `mpirun` (seen in MPI's
// environment), the process joins the job through the MPI addon (native/mpi, built where
// MPI is installed); otherwise it is the one rank of a job of one, and nothing is loaded.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

export interface Communicator {
  rank: number;
  size: number;
  /** sums the first n values (all by default) across ranks, in place */
  sum(values: Float32Array, n?: number): void;
  /** sums float64 values across ranks, in place (loss sums, token counts) */
  sumScalars(values: Float64Array): void;
  /** makes every rank's values rank `root`'s */
  broadcast(values: Float32Array, root: number): void;
  barrier(): void;
  /** ends every rank of the job: one rank's failure must not leave the others waiting */
  abort(code: number): void;
  finish(): void;
}

interface MpiAddon {
  start(): { rank: number; size: number };
  allreduceF32(values: Float32Array, n?: number): void;
  allreduceF64(values: Float64Array): void;
  broadcastF32(values: Float32Array, root: number): void;
  barrier(): void;
  finish(): void;
  abort(code: number): void;
}

/** Whether this process was started by mpirun (Open MPI, MPICH or any PMIx launcher). */
export function launchedByMpi(env: NodeJS.ProcessEnv = process.env): boolean {
  const size = Number(env.OMPI_COMM_WORLD_SIZE ?? env.PMI_SIZE ?? env.PMIX_SIZE ?? 1);
  return size > 1;
}

/** Ranks of this job on this machine, for dividing its cores between them. */
export function localRanks(env: NodeJS.ProcessEnv = process.env): number {
  return Math.max(1, Number(env.OMPI_COMM_WORLD_LOCAL_SIZE ?? env.MPI_LOCALNRANKS ?? 1));
}

const SINGLE: Communicator = {
  rank: 0,
  size: 1,
  sum: () => {},
  sumScalars: () => {},
  broadcast: () => {},
  barrier: () => {},
  abort: (code) => process.exit(code),
  finish: () => {},
};

let current: Communicator | null = null;

/** The communicator if this process has joined its job already (null: nothing started). */
export function joinedJob(): Communicator | null {
  return current;
}

/** This process's place in the job: MPI's communicator under mpirun, else a job of one. */
export function communicator(): Communicator {
  if (current) return current;
  if (!launchedByMpi()) {
    current = SINGLE;
    return current;
  }
  const path = fileURLToPath(new URL("../../native/mpi/build/Release/llmfab_mpi.node", import.meta.url));
  if (!existsSync(path))
    throw new Error(
      "started by mpirun, but llmfab was built without MPI: install it (sudo apt-get install libopenmpi-dev openmpi-bin) and run npm run build:native",
    );
  const mpi = createRequire(import.meta.url)(path) as MpiAddon;
  const { rank, size } = mpi.start();
  current = {
    rank,
    size,
    sum: (values, n) => mpi.allreduceF32(values, n ?? values.length),
    sumScalars: (values) => mpi.allreduceF64(values),
    broadcast: (values, root) => mpi.broadcastF32(values, root),
    barrier: () => mpi.barrier(),
    abort: (code) => mpi.abort(code),
    finish: () => mpi.finish(),
  };
  return current;
}
