import { execFile } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { build, type Options } from 'tsup'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import tsupConfig from '../tsup.config'
import { availableEngines, openEngine, type EngineName, type TestEngine } from './harness/engines'
import { APP_DRIZZLE_CONFIG, APP_REGISTRATION, APP_SCHEMA, APP_SCRIPT } from './support/scratch-app'

// README "Your own tenant tables", done by a user's project against the packed tarball: a scratch app
// with two tables of its own (tenantTable/tenantReference, ours imported from @callsheet/db/schema and
// not re-exported), drizzle-kit generate, the custom registration migration, migrate() with
// appMigrationsFolder on PGlite and PostgreSQL, tenants kept apart on the app's tables, then a new
// library release whose migration is older than the app's newest (the old silent skip) applied by the
// next migrate(). Slow (npm install, drizzle-kit, three PGlite starts): no clock is asserted.

const root = resolve(import.meta.dirname, '..')
const exec = promisify(execFile)
const workDir = mkdtempSync(join(tmpdir(), 'callsheet-app-workflow-'))
const app = join(workDir, 'app')
const installed = join(app, 'node_modules', '@callsheet', 'db', 'drizzle')
let keep = false

interface Journal {
  entries: { idx: number; version: string; when: number; tag: string; breakpoints: boolean }[]
}
const readJournal = (folder: string): Journal =>
  JSON.parse(readFileSync(join(folder, 'meta', '_journal.json'), 'utf8')) as Journal
const writeJournal = (folder: string, journal: Journal) =>
  writeFileSync(join(folder, 'meta', '_journal.json'), JSON.stringify(journal, null, 2))

async function run(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<string> {
  try {
    const { stdout } = await exec(cmd, args, { cwd, env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 })
    return stdout
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string }
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`)
  }
}

/** A library migration added to the installed package, as a release would ship it. */
function addLibraryMigration(tag: string, sql: string, when: number): () => void {
  const original = readFileSync(join(installed, 'meta', '_journal.json'), 'utf8')
  const journal = readJournal(installed)
  journal.entries.push({ idx: journal.entries.length, version: '7', when, tag, breakpoints: true })
  writeFileSync(join(installed, `${tag}.sql`), sql)
  writeJournal(installed, journal)
  return () => {
    rmSync(join(installed, `${tag}.sql`))
    writeFileSync(join(installed, 'meta', '_journal.json'), original)
  }
}

/** The packed tarball of the current source: tsup's JS (types are not needed by a node script) + npm pack. */
async function packCurrentSource(): Promise<string> {
  const stage = join(workDir, 'stage')
  mkdirSync(stage)
  const config = tsupConfig as Options
  await build({ ...config, config: false, dts: false, silent: true, outDir: join(stage, 'dist') })
  for (const entry of ['package.json', 'README.md', 'CHANGELOG.md', 'drizzle'])
    cpSync(join(root, entry), join(stage, entry), { recursive: true })
  const name = (await run('npm', ['pack', '--silent', '--pack-destination', workDir], stage)).trim().split('\n').pop()
  return join(workDir, name!)
}

const version = (pkg: string): string =>
  (JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version

let appMigrations: Journal
let generated: string[]

beforeAll(async () => {
  try {
    const tarball = await packCurrentSource()
    mkdirSync(join(app, 'db'), { recursive: true })
    // The versions this repository is tested with.
    const dependencies = Object.fromEntries(
      ['drizzle-orm', 'drizzle-kit', 'postgres', '@electric-sql/pglite', 'tsx'].map((p) => [p, version(p)]),
    )
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'scratch-app',
        private: true,
        type: 'module',
        dependencies: { '@callsheet/db': `file:${tarball}`, ...dependencies },
      }),
    )
    writeFileSync(join(app, 'db', 'schema.ts'), APP_SCHEMA)
    writeFileSync(join(app, 'drizzle.config.ts'), APP_DRIZZLE_CONFIG)
    writeFileSync(join(app, 'app.mts'), APP_SCRIPT)
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], app)

    await run('npx', ['drizzle-kit', 'generate', '--name', 'app_tables'], app)
    await run('npx', ['drizzle-kit', 'generate', '--custom', '--name', 'register_tenant_tables'], app)
    appMigrations = readJournal(join(app, 'drizzle'))
    const custom = appMigrations.entries.at(-1)!.tag
    writeFileSync(join(app, 'drizzle', `${custom}.sql`), APP_REGISTRATION)
    generated = appMigrations.entries.map((e) => readFileSync(join(app, 'drizzle', `${e.tag}.sql`), 'utf8'))
  } catch (error) {
    keep = true
    throw error
  }
}, 900_000)

afterEach((context) => {
  if (context.task.result?.state === 'fail') keep = true
})

afterAll(() => {
  if (keep) console.warn(`[app-workflow] a step failed: the scratch app is kept in ${workDir}`)
  else rmSync(workDir, { recursive: true, force: true })
})

describe('an app drizzle-kit workflow from the packed tarball', () => {
  it('drizzle-kit generates only the app tables, referencing ours, and then sees no change', async () => {
    expect(appMigrations.entries.map((e) => e.tag)).toEqual(['0000_app_tables', '0001_register_tenant_tables'])
    const [tables] = generated
    const created = [...tables!.matchAll(/CREATE TABLE "([a-z_]+)"/g)].map((m) => m[1]).sort()
    expect(created).toEqual(['call_notes', 'call_times'])
    expect(tables).toContain('REFERENCES "public"."contacts"("organization_id","id")')
    expect(tables).toContain('REFERENCES "public"."productions"("organization_id","id")')
    expect(tables).toContain('REFERENCES "public"."organizations"("id")')
    expect(tables).not.toMatch(/CREATE (TYPE|SCHEMA|ROLE|EXTENSION|FUNCTION)/)
    const again = await run('npx', ['drizzle-kit', 'generate'], app)
    expect(again).toContain('No schema changes')
    expect(readJournal(join(app, 'drizzle')).entries).toHaveLength(2)
  })
})

type Summary = Record<string, unknown> & {
  ledger: { library: { hash: string }[]; app: { hash: string; created_at: string }[] }
}
interface UpgradeSummary {
  before: Summary['ledger']
  after: Summary['ledger']
  probe: string
}

const engines = availableEngines()
for (const name of ['pglite', 'postgres'] as const satisfies readonly EngineName[]) {
  if (!engines.includes(name)) {
    // The global setup said why loudly (and failed the run under CALLSHEET_REQUIRE_SERVER=1).
    console.warn(
      `\n!! app workflow [${name}] SKIPPED: this run has no ${name} engine (no server, or CALLSHEET_ENGINES leaves it out)\n`,
    )
    describe.skip(`an app's migrations and tenants from the packed tarball [${name}]`, () => {
      it(`needs ${name}, which this run does not have`, () => {})
    })
    continue
  }
  describe(`an app's migrations and tenants from the packed tarball [${name}]`, () => {
    let engine: TestEngine | undefined
    let env: Record<string, string>
    beforeAll(async () => {
      if (name === 'pglite') {
        env = { APP_ENGINE: 'pglite', APP_PGLITE_DIR: join(workDir, 'pglite-data') }
        return
      }
      engine = await openEngine('postgres')
      env = { APP_ENGINE: 'postgres', APP_OWNER_URL: engine.ownerUrl!, APP_RUNTIME_URL: engine.url! }
    }, 300_000)
    afterAll(async () => {
      await engine?.close()
    })
    const script = async <T>(mode: 'workflow' | 'upgrade' | 'testing'): Promise<T> => {
      const out = await run('node', ['--import', 'tsx', 'app.mts', mode], app, env)
      return JSON.parse(out.trim().split('\n').pop()!) as T
    }

    it('migrates ours then the app tables, writes and reads, and keeps tenants apart without a trace', async () => {
      const summary = await script<Summary>('workflow')
      expect(summary.ledger.app).toHaveLength(2)
      expect(summary.forceRowLevelSecurity).toEqual({ call_notes: true, call_times: true })
      expect(summary.joined).toEqual([{ name: 'Jon Smith', sequence: 2, location: 'stage 4' }])
      expect(summary.notesOfA).toBe(2)
      expect(summary.mine).toBe('stage 4')
      expect(summary.crossTenant).toEqual({
        findByIdOfOther: 'undefined',
        noteFindByIdOfOther: 'undefined',
        getByIdOfOther: 'NOT_FOUND',
        updateOfOther: 'NOT_FOUND',
        softDeleteOfOther: 'NOT_FOUND',
        purgeNoteOfOther: 'NOT_FOUND',
        txDbSelectOfOther: 0,
        txDbUpdateOfOther: 0,
        referenceToOthersContact: 'FOREIGN_KEY_VIOLATION',
        referenceToOthersCallTime: 'FOREIGN_KEY_VIOLATION',
        txDbReferenceToOthersContact: 'FOREIGN_KEY_VIOLATION',
        txDbInsertWithOthersOrganizationId: 'PERMISSION_DENIED',
      })
      const traces = summary.traces as { before: unknown; after: unknown }
      expect(traces.after).toEqual(traces.before)
    })

    if (name === 'pglite')
      it("the app's own tests: createTestDatabase, the app's migrations on it, setDefaultDatabase", async () => {
        expect(await script<unknown>('testing')).toEqual({ callTimes: 1 })
      })

    it('a library release whose migration is older than the app newest is applied by the next migrate()', async () => {
      const appNewest = Math.max(...appMigrations.entries.map((e) => e.when))
      const libraryNewest = readJournal(installed).entries.at(-1)!.when
      // The scenario needs room between the two: ours after our last, before the app's newest.
      expect(libraryNewest + 1).toBeLessThan(appNewest)
      const next = String(readJournal(installed).entries.length).padStart(4, '0')
      const remove = addLibraryMigration(
        `${next}_upgrade_probe`,
        "CREATE FUNCTION callsheet_upgrade_probe() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'probe' $$;",
        libraryNewest + 1,
      )
      try {
        const { before, after, probe } = await script<UpgradeSummary>('upgrade')
        expect(probe).toBe('probe')
        expect(after.library).toHaveLength(before.library.length + 1)
        expect(after.library.slice(0, -1)).toEqual(before.library)
        expect(after.app).toEqual(before.app)
        expect(after.app).toHaveLength(2)
      } finally {
        remove()
      }
    })
  })
}
