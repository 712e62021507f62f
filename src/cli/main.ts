#!/usr/bin/env node
// The llmfab command line. Each command is a thin layer over a library stage.
import { buildProgram } from "./program.ts";

buildProgram()
  .parseAsync(process.argv)
  .catch((e: unknown) => {
    process.stderr.write(`llmfab: ${e instanceof Error ? e.message : String(e)}\n`);
    if (process.env.LLMFAB_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    process.exit(1);
  });
