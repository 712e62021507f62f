#!/usr/bin/env node
// The llmfab command line. Each command is a thin layer over a library stage. Under mpirun
// a rank that fails ends the whole job (its peers would otherwise wait for it forever).
import { joinedJob } from "../backend/mpi.ts";
import { buildProgram } from "./program.ts";

buildProgram()
  .parseAsync(process.argv)
  .then(() => joinedJob()?.finish())
  .catch((e: unknown) => {
    const job = joinedJob();
    const who = job && job.size > 1 ? `llmfab (rank ${job.rank} of ${job.size})` : "llmfab";
    process.stderr.write(`${who}: ${e instanceof Error ? e.message : String(e)}\n`);
    if (process.env.LLMFAB_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    if (job && job.size > 1) job.abort(1);
    process.exit(1);
  });
