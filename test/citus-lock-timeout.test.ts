// Issue 21, part 4: lockTimeoutMs on a Citus coordinator also bounds a wait for a lock held on a shard,
// on a worker. The coordinator's session lock_timeout does not reach the worker connections Citus opens
// for a DDL's shard commands, so migrate() SET LOCALs it in each migration transaction with
// citus.propagate_set_commands = 'local', which Citus sends along to those connections. And a
// no-transaction migration's CREATE INDEX CONCURRENTLY reaches every shard.
import { expect, it } from 'vitest'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { migrate } from '../src/migrations/migrate'
import { isCallsheetDbError } from '../src/errors'
import { describeEachEngine } from './harness/engines'

/** An app migrations folder with one migration. */
function appFolder(tag: string, sql: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-citus-lock-'))
  mkdirSync(join(dir, 'meta'))
  writeFileSync(join(dir, `${tag}.sql`), sql)
  const entries = [{ idx: 0, version: '7', when: 1_900_000_000_000, tag, breakpoints: true }]
  writeFileSync(join(dir, 'meta', '_journal.json'), JSON.stringify({ version: '7', dialect: 'postgresql', entries }))
  return dir
}

/** One migration that alters contacts (a DDL Citus sends to every shard). */
const alterContactsFolder = () => appFolder('0000_contact_note', 'ALTER TABLE "contacts" ADD COLUMN "app_note" text;')

describeEachEngine(
  'lockTimeoutMs on a Citus coordinator',
  (engine) => {
    it('a lock held on a shard of contacts, on its worker, fails the migration fast with MIGRATION_LOCK_TIMEOUT; the retry applies it', async () => {
      const e = engine()
      const [shard] = await e.admin.query<{ shard: string; port: number }>(
        `select format('%s_%s', 'contacts', s.shardid) as shard, n.nodeport as port
           from pg_dist_shard s join pg_dist_placement p using (shardid) join pg_dist_node n using (groupid)
          where s.logicalrelid = 'contacts'::regclass and n.noderole = 'primary' and n.groupid <> 0
          order by s.shardid limit 1`,
      )
      expect(shard).toBeDefined()
      const workerUrl = e.workerUrls?.find((u) => new URL(u).port === String(shard!.port))
      expect(workerUrl, `a worker on port ${shard!.port}`).toBeDefined()
      const dir = alterContactsFolder()
      const holder = postgres(workerUrl!, { max: 1, onnotice: () => {} })
      // Were the wait unbounded, migrate() would wait for this holder, and the holder for migrate(): after a
      // while the holder lets go, so that the test fails (the migration then succeeds) instead of hanging.
      const unblock = setTimeout(() => void holder.end({ timeout: 0 }), 60_000)
      try {
        await holder.begin(async (tx) => {
          // Only the worker knows of this lock: the coordinator's own lock on contacts is free.
          // (A worker session that read the shard holds a conflicting lock the same way; LOCK says it plainly.)
          await tx`set local citus.enable_manual_changes_to_shards = on`
          await tx.unsafe(`lock table public.${shard!.shard} in access exclusive mode`)
          const error = await migrate(e.ownerUrl!, { secret: null, appMigrationsFolder: dir, lockTimeoutMs: 300 }).then(
            () => undefined,
            (err: unknown) => err,
          )
          expect(isCallsheetDbError(error, 'MIGRATION_LOCK_TIMEOUT'), String(error)).toBe(true)
          expect((error as Error).message).toContain('while applying 0000_contact_note')
        })
        const [column] = await e.admin.query(
          `select 1 from information_schema.columns where table_name = 'contacts' and column_name = 'app_note'`,
        )
        expect(column).toBeUndefined()
        const report = await migrate(e.ownerUrl!, { secret: null, appMigrationsFolder: dir, lockTimeoutMs: 300 })
        expect(report.appApplied).toEqual(['0000_contact_note'])
      } finally {
        clearTimeout(unblock)
        await holder.end({ timeout: 5 })
        rmSync(dir, { recursive: true, force: true })
      }
    })

    it('a no-transaction migration builds its index CONCURRENTLY on the distributed table and every shard', async () => {
      const e = engine()
      const dir = appFolder(
        '0000_contact_role_index',
        '-- callsheet:no-transaction\n-- squawk-disable-assume-in-transaction\n' +
          'CREATE INDEX CONCURRENTLY IF NOT EXISTS "contacts_app_role_idx" ON "contacts" ("organization_id", "role");\n',
      )
      try {
        const options = { secret: null, appMigrationsFolder: dir, appMigrationsTable: { table: 'citus_notx' } }
        expect((await migrate(e.ownerUrl!, options)).appApplied).toEqual(['0000_contact_role_index'])
        const [coordinator] = await e.admin.query<{ valid: boolean }>(
          `select i.indisvalid as valid from pg_index i join pg_class c on c.oid = i.indexrelid
            where c.relname = 'contacts_app_role_idx'`,
        )
        expect(coordinator).toEqual({ valid: true })
        const shards = await e.admin.query<{ success: boolean; result: string }>(
          `select success, result from run_command_on_shards('contacts', $cmd$
             select exists (select 1 from pg_index i join pg_class c on c.oid = i.indexrelid
                             where i.indrelid = '%s'::regclass and i.indisvalid
                               and starts_with(c.relname, 'contacts_app_role_idx'))$cmd$)`,
        )
        expect(shards.length).toBeGreaterThan(1)
        expect(
          shards.every((r) => r.success && r.result === 't'),
          JSON.stringify(shards),
        ).toBe(true)
        expect((await migrate(e.ownerUrl!, options)).appApplied).toEqual([])
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })
  },
  { only: ['citus'] },
)
