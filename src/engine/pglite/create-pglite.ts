import { PGlite, type Extension, type PGliteOptions } from '@electric-sql/pglite'
import { btree_gin } from '@electric-sql/pglite/contrib/btree_gin'
import { citext } from '@electric-sql/pglite/contrib/citext'
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm'

/**
 * PGlite 0.5 hands every extension's `.so` to Emscripten's preload plugin, which instantiates the
 * side modules concurrently while the instance starts. With three of them that race sometimes goes
 * wrong (measured: about one start in 10–60 with btree_gin, citext and pg_trgm): pg_trgm then finds
 * no match for any text, and the next statement spins the process at 100 % CPU forever. Emscripten's
 * `noWasmDecoding` turns the preload off; each library is then loaded when PostgreSQL first needs it,
 * one at a time.
 */
const sequentialExtensionLoading: Extension = {
  name: 'callsheet-sequential-extension-loading',
  setup: (_pg, emscriptenOpts: Record<string, unknown>) =>
    Promise.resolve({ emscriptenOpts: { ...emscriptenOpts, noWasmDecoding: true } }),
}

/**
 * The PGlite extensions the schema needs (btree_gin, citext, pg_trgm), plus the switch that loads their
 * libraries one at a time (see above). `createPglite()` uses them; pass them when you create PGlite
 * yourself, e.g. with a data directory of your own.
 *
 * @example
 * ```ts
 * const pg = await PGlite.create({ dataDir: './data', extensions: pgliteExtensions })
 * ```
 */
export const pgliteExtensions = { btree_gin, citext, pg_trgm, sequentialExtensionLoading } as const satisfies Record<
  string,
  Extension
>

/**
 * `startParams` for a small, short-lived PGlite (a test database): PostgreSQL zeroes its shared memory at
 * every start, and the default 128 MB of shared_buffers took ≈ 0.45 s of each start (measured, PGlite
 * 0.5.16); one session needs few connection slots and a test database holds little data.
 */
export const smallMemoryStartParams: readonly string[] = [
  ...PGlite.defaultStartParams,
  '-c',
  'shared_buffers=4MB',
  '-c',
  'max_connections=5',
]

/**
 * Starts an in-memory PGlite with the extensions the schema needs (citext, pg_trgm, btree_gin) loaded.
 * A cold start takes about 2 s and ~700 MB for the first instance in a process; close it when done,
 * or the process never exits.
 *
 * @example
 * ```ts
 * const pg = await createPglite()
 * await migrate(pg)
 * ```
 */
export async function createPglite(options: Omit<PGliteOptions, 'extensions'> = {}): Promise<PGlite> {
  return PGlite.create({
    ...options,
    extensions: pgliteExtensions,
  })
}
