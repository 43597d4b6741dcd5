import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { gunzipSync, gzipSync } from 'node:zlib'
import { dirname, join, resolve } from 'node:path'
import { createPglite, pgliteExtensions, smallMemoryStartParams } from '../engine/pglite/create-pglite'
import {
  closeIntoSnapshot,
  decodeSnapshot,
  encodeSnapshot,
  SnapshotFilesystem,
  type DataDirSnapshot,
} from '../engine/pglite/data-dir-snapshot'
import { migrate } from '../migrations/migrate'
import { migrationsFolder } from '../migrations/migrations-folder'
import { capturePristine, parseStoredPristine, serializePristine, type StoredPristine } from './instance-reset'

// Bump when the snapshot's content or format changes for a reason the key below does not see.
// v2: the metadata carries the fresh instance's catalog baseline (`pristine`).
const SNAPSHOT_FORMAT = 'callsheet-db test template v2'

/**
 * Where a template snapshot came from: this process's `memory`, the machine's `cache`, the one `shipped`
 * in the package (built at pack time), or `built` now.
 */
export type TemplateSource = 'memory' | 'cache' | 'shipped' | 'built'

/** A migrated template's data directory, and how this process got it. */
export interface TemplateSnapshot {
  readonly snapshot: DataDirSnapshot
  readonly source: TemplateSource
  /** Where it is cached on this machine (`undefined`: the cache could not be written). */
  readonly cacheFile: string | undefined
  /** The UTC month (`YYYY-MM`) it was migrated in: its audit partitions run from there. */
  readonly builtMonth: string
  /**
   * What an instance started from it looks like before anything runs on it (read when the snapshot was
   * made, on such an instance), for the reset of a reused instance; `undefined` when the snapshot has
   * none (it is then read on each new instance).
   */
  readonly pristine: StoredPristine | undefined
}

type Made = Omit<TemplateSnapshot, 'source' | 'cacheFile'>

/**
 * The key of a template: everything its data directory is made from. The library's migrations exactly
 * as drizzle applies them (the journal and each journal entry's SQL), the app's (same), the PGlite
 * version (its PostgreSQL writes the files) and the extensions. Any change gives another key: a cached
 * snapshot made from other migrations is never loaded, it is rebuilt.
 */
export function templateKey(appMigrationsFolder?: string): string {
  const hash = createHash('sha256')
  hash.update(`${SNAPSHOT_FORMAT}\0pglite ${pgliteVersion()}\0${Object.keys(pgliteExtensions).join(',')}\0`)
  hashMigrationsFolder(hash, migrationsFolder())
  if (appMigrationsFolder !== undefined) {
    hash.update('\0app\0')
    hashMigrationsFolder(hash, resolve(appMigrationsFolder))
  }
  return hash.digest('hex')
}

function hashMigrationsFolder(hash: ReturnType<typeof createHash>, folder: string): void {
  const journalBytes = readFileSync(join(folder, 'meta', '_journal.json'))
  const journal = JSON.parse(journalBytes.toString('utf8')) as { entries?: { tag?: unknown }[] }
  hash.update(journalBytes)
  for (const entry of journal.entries ?? []) {
    const tag = String(entry.tag)
    const sql = readFileSync(join(folder, `${tag}.sql`))
    hash.update(`\0${tag}\0${sql.length}\0`)
    hash.update(sql)
  }
}

function pgliteVersion(): string {
  // The package exports no package.json: find it from its entry point.
  const entry = createRequire(import.meta.url).resolve('@electric-sql/pglite')
  let dir = dirname(entry)
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'package.json')
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string }
      if (pkg.name === '@electric-sql/pglite' && typeof pkg.version === 'string') return pkg.version
    }
    dir = dirname(dir)
  }
  return `unknown (${entry})`
}

/**
 * The per-machine cache: `CALLSHEET_DB_CACHE_DIR`, else `node_modules/.cache/callsheet-db` of the nearest
 * `node_modules` above the working directory (where test tools keep their caches), else the temp dir.
 */
function templateCacheDir(): string {
  const configured = process.env.CALLSHEET_DB_CACHE_DIR
  if (configured !== undefined && configured !== '') return resolve(configured)
  let dir = process.cwd()
  for (;;) {
    if (existsSync(join(dir, 'node_modules'))) return join(dir, 'node_modules', '.cache', 'callsheet-db')
    const parent = dirname(dir)
    if (parent === dir) return join(tmpdir(), 'callsheet-db-cache')
    dir = parent
  }
}

const utcMonth = (date = new Date()): string => date.toISOString().slice(0, 7)

/** The snapshot the package ships (`npm run build` makes it): `dist/` beside the shipped `drizzle/`. */
export function shippedTemplateFile(): string {
  return join(dirname(migrationsFolder()), 'dist', SHIPPED_TEMPLATE_FILE)
}

/** Its file name in `dist/`. */
export const SHIPPED_TEMPLATE_FILE = 'test-template.snapshot.gz'

/**
 * The migrated template for `appMigrationsFolder` (or none): from the machine's cache when its key
 * matches; else, for the library's migrations alone, the snapshot shipped in the package when its key
 * matches (same migrations, same PGlite version), else built by migrating a PGlite from scratch (≈ 4–8 s).
 * With an app folder: the library's template, started, with the app's migrations applied. A template made
 * in an earlier month is rolled forward (see `rolledForward`). Whatever is not from the cache, or was rolled
 * forward, is then cached. A cache that cannot be read or written is skipped.
 *
 * @throws MigrationError when the migrations (the library's or the app's) cannot be applied.
 */
export async function loadTemplate(appMigrationsFolder?: string): Promise<TemplateSnapshot> {
  const key = templateKey(appMigrationsFolder)
  const file = join(templateCacheDir(), `template-${key.slice(0, 32)}.snapshot`)
  const cached = readCached(file, key)
  let made: Made & { source: TemplateSource }
  if (cached) {
    made = { ...cached, source: 'cache' }
  } else if (appMigrationsFolder === undefined) {
    const shipped = readShipped(key)
    made = shipped
      ? { ...shipped, source: 'shipped' }
      : { ...(await withPristine(await buildTemplate())), source: 'built' }
  } else {
    const base = await loadTemplate()
    made = {
      ...(await withPristine(await withAppMigrations(base.snapshot, appMigrationsFolder), base.builtMonth)),
      source: 'built',
    }
  }
  if (made.builtMonth !== utcMonth()) {
    // Made in an earlier month (a package published then, a cache from then): rolled forward once and
    // cached, so that each instance is again exactly the snapshot and starts without a live capture.
    made = { ...(await rolledForward(made.snapshot)), source: made.source }
  } else if (made.source === 'cache') {
    return { ...made, cacheFile: file }
  }
  const written = writeCached(file, encode(made, key))
  return { ...made, cacheFile: written ? file : undefined }
}

/**
 * `snapshot` (made in an earlier month) with this month's audit partitions and the next ones, as
 * `migrate()` would create them today, and the pristine state of an instance started from it (≈ 1 s, once
 * per machine and month instead of ≈ 0.5 s in every process).
 */
async function rolledForward(snapshot: DataDirSnapshot): Promise<Made> {
  const pg = await createPglite({ fs: new SnapshotFilesystem(snapshot), startParams: [...smallMemoryStartParams] })
  try {
    await pg.query('select callsheet_ensure_audit_partitions(3)')
  } catch (error) {
    await pg.close()
    throw error
  }
  return withPristine(await closeIntoSnapshot(pg))
}

function encode(made: Made, key: string): Buffer {
  const meta: Record<string, string> = { builtMonth: made.builtMonth }
  if (made.pristine) meta.pristine = serializePristine(made.pristine)
  return encodeSnapshot(made.snapshot, key, meta)
}

/**
 * `snapshot` with what an instance started from it looks like, read on such an instance now (≈ 0.5 s,
 * once per template instead of on each process's first test database). A template from an earlier month
 * gets none: each instance adds that month's audit partitions at start, so it differs from the snapshot.
 */
async function withPristine(snapshot: DataDirSnapshot, builtMonth = utcMonth()): Promise<Made> {
  if (builtMonth !== utcMonth()) return { snapshot, builtMonth, pristine: undefined }
  // Started as createTestDatabase starts its instances.
  const pg = await createPglite({ fs: new SnapshotFilesystem(snapshot), startParams: [...smallMemoryStartParams] })
  try {
    const { configFiles: _files, tempSchema: _temp, ...pristine } = await capturePristine(pg, builtMonth)
    return { snapshot, builtMonth, pristine }
  } finally {
    await pg.close()
  }
}

/** The library's template as a gzipped snapshot file, for the package (see scripts/build-test-template.mts). */
export async function shippableTemplate(): Promise<Buffer> {
  return gzipSync(encode(await withPristine(await buildTemplate()), templateKey()), { level: 6 })
}

function readShipped(key: string): Made | undefined {
  try {
    return fromBytes(gunzipSync(readFileSync(shippedTemplateFile())), key)
  } catch {
    return undefined
  }
}

function fromBytes(bytes: Uint8Array, key: string): Made | undefined {
  const decoded = decodeSnapshot(bytes, key)
  const builtMonth = decoded?.meta.builtMonth
  return decoded && typeof builtMonth === 'string'
    ? { snapshot: decoded.snapshot, builtMonth, pristine: parseStoredPristine(decoded.meta.pristine) }
    : undefined
}

function readCached(file: string, key: string): Made | undefined {
  let bytes: Buffer
  try {
    bytes = readFileSync(file)
  } catch {
    return undefined
  }
  return fromBytes(bytes, key)
}

function writeCached(file: string, bytes: Buffer): boolean {
  // Written aside and renamed: a reader (another test worker) sees the whole file or none.
  const temporary = `${file}.${process.pid}.${Date.now()}.tmp`
  try {
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(temporary, bytes)
    renameSync(temporary, file)
    return true
  } catch {
    try {
      unlinkSync(temporary)
    } catch {
      // nothing written
    }
    return false
  }
}

async function buildTemplate(): Promise<DataDirSnapshot> {
  const pg = await createPglite()
  try {
    // No key in the template: it is cached on disk, and each test database installs its own.
    await migrate(pg, { secret: null })
  } catch (error) {
    await pg.close()
    throw error
  }
  return closeIntoSnapshot(pg)
}

async function withAppMigrations(base: DataDirSnapshot, appMigrationsFolder: string): Promise<DataDirSnapshot> {
  const pg = await createPglite({ fs: new SnapshotFilesystem(base) })
  try {
    await migrate(pg, { secret: null, appMigrationsFolder })
  } catch (error) {
    await pg.close()
    throw error
  }
  return closeIntoSnapshot(pg)
}
