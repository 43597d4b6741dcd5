#!/usr/bin/env node
// The long run of the model-based tests (test/model.test.ts): 10,000 seeded sequences per engine by
// default, on PGlite and on the PostgreSQL server the test harness finds or starts.
//
//   node scripts/model-long.mjs                      # 10,000 sequences, the default seed
//   node scripts/model-long.mjs --runs 50000 --seed 7
//   MODEL_SEED=… MODEL_PATH=… node scripts/model-long.mjs   # replay a reported failure
//
// Extra arguments after `--` go to vitest (e.g. `-- -t postgres` for one engine).
import { spawnSync } from 'node:child_process'

const args = process.argv.slice(2)
const dash = args.indexOf('--')
const own = dash === -1 ? args : args.slice(0, dash)
const passThrough = dash === -1 ? [] : args.slice(dash + 1)
const option = (name) => {
  const i = own.indexOf(`--${name}`)
  return i === -1 ? undefined : own[i + 1]
}

const env = {
  ...process.env,
  MODEL_RUNS: option('runs') ?? process.env.MODEL_RUNS ?? '10000',
  ...((option('seed') ?? process.env.MODEL_SEED) ? { MODEL_SEED: option('seed') ?? process.env.MODEL_SEED } : {}),
}
console.log(`model-long: MODEL_RUNS=${env.MODEL_RUNS} MODEL_SEED=${env.MODEL_SEED ?? '(default)'}`)
const result = spawnSync('npx', ['vitest', 'run', 'test/model.test.ts', ...passThrough], { stdio: 'inherit', env })
process.exit(result.status ?? 1)
