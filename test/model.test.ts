import fc from 'fast-check'
import { it } from 'vitest'
import { describeEachDatabase } from './harness/engines'
import { sequence } from './support/model/ops'
import { outcomes, runSequence, type CheckLevel } from './support/model/run'

/**
 * Model-based tests: seeded random sequences of contact operations by three tenants (create, createMany
 * with bad rows, update, soft delete, restore, purge, a production's soft delete and restore with the
 * contacts and uploads they take along, reads, search, committed and rolled-back transactions), each on a fresh set
 * of organizations, checked against an in-memory model after every step and at the end — rows, counts,
 * paging, tenant isolation, uniqueness errors, cascade tags and the audit trail.
 *
 * MODEL_RUNS (default 1000 per engine), MODEL_SEED (default fixed), MODEL_PATH (replay one failure, as
 * printed), MODEL_CHECK=sequence (compare full state only at the end of each sequence: faster).
 * The long run: `node scripts/model-long.mjs` (10,000 sequences per engine).
 */
const RUNS = Number(process.env.MODEL_RUNS ?? 1000)
/**
 * On Citus each unit crosses coordinator → worker (2–5× a single node, BENCHMARKS.md): fewer sequences, the
 * same seed, so the first MODEL_RUNS_CITUS of the single-node sequences.
 */
const CITUS_RUNS = Math.min(RUNS, Number(process.env.MODEL_RUNS_CITUS ?? 150))
const SEED = Number(process.env.MODEL_SEED ?? 20240611)
const PATH = process.env.MODEL_PATH
/**
 * fast-check stops (and fails) after this long, shrinking included: a slow machine gets a report, not a
 * timeout. A hang bound, not a speed check: ~12× an idle run (1,000 sequences: 50 s on PGlite), as a
 * 2-core machine shared with other work is several times slower.
 */
const TIME_LIMIT_MS = Math.max(600_000, RUNS * 600)
const LEVEL: CheckLevel = process.env.MODEL_CHECK === 'sequence' ? 'sequence' : 'step'

describeEachDatabase(
  'model-based contacts',
  (ctx) => {
    it(
      `${RUNS} seeded sequences (${CITUS_RUNS} on Citus) match the model (seed ${SEED}, checks per ${LEVEL})`,
      async () => {
        const started = Date.now()
        const runs = ctx().engine.name === 'citus' ? CITUS_RUNS : RUNS
        outcomes.clear()
        await fc.assert(
          fc.asyncProperty(sequence(), (ops) => runSequence(ctx().db, ops, LEVEL)),
          {
            seed: SEED,
            numRuns: runs,
            ...(PATH === undefined ? {} : { path: PATH }),
            // Shrinking replays sequences on fresh tenants, so it is sound, but bounded in time.
            interruptAfterTimeLimit: TIME_LIMIT_MS,
            markInterruptAsFailure: true,
            reporter: (details) => {
              if (!details.failed) return
              console.error(
                `model-based failure: replay with MODEL_SEED=${details.seed} MODEL_PATH=${JSON.stringify(details.counterexamplePath)} MODEL_RUNS=${runs}`,
              )
              throw new Error(`${fc.defaultReportMessage(details)}\n\nGot error: ${String(details.errorInstance)}`, {
                cause: details.errorInstance,
              })
            },
          },
        )
        const tallies = [...outcomes].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, n]) => `${k}=${n}`)
        console.log(
          `model-based [${ctx().engine.name}]: ${PATH === undefined ? `${runs} sequences` : `replayed path ${PATH}`} in ${((Date.now() - started) / 1000).toFixed(1)} s; outcomes: ${tallies.join(', ')}`,
        )
      },
      TIME_LIMIT_MS + 120_000,
    )
  },
  {},
  { citus: true },
)
