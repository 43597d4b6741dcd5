#!/usr/bin/env node
/**
 * The `callsheet-db` command: migrate, status, doctor, partitions, stats. See docs/cli.md.
 * Everything lives in ./run (runCli), which tests call in-process; this file only runs it.
 */
import { runCli } from './run'

void runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    process.stderr.write(`callsheet-db: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exitCode = 1
  },
)
