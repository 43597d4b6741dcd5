import { beforeAll, expect, it } from 'vitest'
import { describeEachEngine } from './harness/engines'
import postgres from 'postgres'
import { asAppRole, expectSqlState, postgresRunner, type SqlRunner } from './harness/sql-runner'
import { seedTenant, type SeededTenant } from './support/seed'
import { testProof } from './harness/secret'

// These tests bypass the library entirely and talk SQL as the app role: they prove the database
// itself keeps tenants apart, whatever the code above it does.

const TABLES = ['users', 'departments', 'productions', 'contacts', 'uploads', 'api_keys', 'audit_logs'] as const
const ID_OF: Record<(typeof TABLES)[number], keyof SeededTenant> = {
  users: 'userId',
  departments: 'departmentId',
  productions: 'productionId',
  contacts: 'contactId',
  uploads: 'uploadId',
  api_keys: 'apiKeyId',
  audit_logs: 'auditId',
}

async function count(tx: SqlRunner, table: string, where = 'true', params: unknown[] = []): Promise<number> {
  const [row] = await tx.query<{ n: number }>(`select count(*)::int as n from ${table} where ${where}`, params)
  return row?.n ?? -1
}

describeEachEngine(
  'isolation by raw SQL as the app role',
  (engine) => {
    let a: SeededTenant
    let b: SeededTenant
    const db = () => engine().admin

    beforeAll(async () => {
      a = await seedTenant(db(), 'tenant-a')
      b = await seedTenant(db(), 'tenant-b')
    })

    it('runs as callsheet_app, which is neither superuser nor BYPASSRLS', async () => {
      const [who] = await asAppRole(db(), a.organizationId, (tx) =>
        tx.query<{ role: string; superuser: string }>(
          `select current_user as role, current_setting('is_superuser') as superuser`,
        ),
      )
      expect(who).toEqual({ role: 'callsheet_app', superuser: 'off' })
    })

    it.each(TABLES)('%s: tenant A sees its own rows and none of tenant B', async (table) => {
      await asAppRole(db(), a.organizationId, async (tx) => {
        expect(await count(tx, table, 'id = $1', [a[ID_OF[table]]])).toBe(1)
        expect(await count(tx, table, 'id = $1', [b[ID_OF[table]]])).toBe(0)
        expect(await count(tx, table, 'organization_id <> $1', [a.organizationId])).toBe(0)
      })
    })

    it('organizations: the app role sees only its own organization and cannot create one', async () => {
      await asAppRole(db(), a.organizationId, async (tx) => {
        const rows = await tx.query<{ id: string }>('select id from organizations')
        expect(rows.map((r) => r.id)).toEqual([a.organizationId])
      })
      await expectSqlState(
        asAppRole(db(), a.organizationId, (tx) => tx.query(`insert into organizations (name, slug) values ('X', 'x')`)),
        '42501',
      )
    })

    it.each(TABLES)('%s: no tenant setting means zero rows, not an error', async (table) => {
      await asAppRole(db(), null, async (tx) => {
        expect(await count(tx, table)).toBe(0)
      })
    })

    it("sees zero rows when the setting reads back as '' after an earlier transaction on the same session", async () => {
      // One session for both transactions: a pooled client could hand the second to another connection.
      const run = async (session: SqlRunner) => {
        await asAppRole(session, a.organizationId, async (tx) => {
          expect(await count(tx, 'contacts')).toBe(1)
        })
        await session.transaction(async (tx) => {
          await tx.query(`select set_config('role', 'callsheet_app', true)`)
          const [setting] = await tx.query<{ v: string | null }>(
            `select current_setting('app.organization_id', true) as v`,
          )
          expect(setting?.v).toBe('')
          for (const table of TABLES) expect(await count(tx, table)).toBe(0)
        })
      }
      const e = engine()
      if (e.url) {
        const single = postgres(e.url, { max: 1, onnotice: () => {} })
        try {
          await run(postgresRunner(single))
        } finally {
          await single.end({ timeout: 5 })
        }
      } else {
        await run(e.admin)
      }
    })

    it('cannot insert rows for another tenant (WITH CHECK)', async () => {
      await expectSqlState(
        asAppRole(db(), a.organizationId, (tx) =>
          tx.query(`insert into departments (organization_id, name, code) values ($1, 'Grip', 'GRIP')`, [
            b.organizationId,
          ]),
        ),
        '42501',
      )
      await expectSqlState(
        asAppRole(db(), a.organizationId, (tx) =>
          tx.query(
            `insert into audit_logs (organization_id, action, entity_type, entity_id) values ($1, 'insert', 'contacts', $2)`,
            [b.organizationId, b.contactId],
          ),
        ),
        '42501',
      )
      expect(await count(db(), 'departments', "code = 'GRIP'")).toBe(0)
    })

    // Ids are unique per tenant since 0015 (primary key (organization_id, id)): reusing B's id is no
    // UNIQUE_VIOLATION naming B's row, so inserting cannot probe whether an id exists in another tenant.
    it("inserting a row with another tenant's existing id creates the own tenant's row; no error tells the id is taken", async () => {
      const rollback = new Error('rollback')
      for (const [id, upsert] of [
        [b.departmentId, ''],
        [b.departmentId, 'on conflict (organization_id, id) do nothing'],
        [crypto.randomUUID(), ''],
      ] as const) {
        await asAppRole(db(), a.organizationId, async (tx) => {
          const rows = await tx.query<{ organization_id: string }>(
            `insert into departments (id, organization_id, name, code) values ($1, $2, 'Reused', 'REUSED') ${upsert} returning organization_id`,
            [id, a.organizationId],
          )
          expect(rows).toEqual([{ organization_id: a.organizationId }])
          throw rollback
        }).catch((error: unknown) => {
          if (error !== rollback) throw error
        })
      }
      expect(await count(db(), 'departments', 'id = $1', [b.departmentId])).toBe(1)
      expect(await count(db(), 'departments', "code = 'REUSED'")).toBe(0)
    })

    it("cannot update or delete another tenant's rows: they are invisible, zero rows change", async () => {
      await asAppRole(db(), a.organizationId, async (tx) => {
        const updated = await tx.query(`update contacts set name = 'Hijacked' where id = $1 returning id`, [
          b.contactId,
        ])
        expect(updated).toEqual([])
        const deleted = await tx.query(`delete from productions where id = $1 returning id`, [b.productionId])
        expect(deleted).toEqual([])
      })
      const [contact] = await db().query<{ name: string }>('select name from contacts where id = $1', [b.contactId])
      expect(contact?.name).toBe('Jon Smith')
      expect(await count(db(), 'productions', 'id = $1', [b.productionId])).toBe(1)
    })

    it('cannot move its own row into another tenant (immutable tenant column, and RLS WITH CHECK behind it)', async () => {
      // The BEFORE UPDATE trigger refuses first (23514); with it disabled, the policy's WITH CHECK (42501).
      // Citus refuses both before either runs: the distribution column cannot change (0A000).
      const citus = engine().name === 'citus'
      await expectSqlState(
        asAppRole(db(), a.organizationId, (tx) =>
          tx.query(`update users set organization_id = $1 where id = $2`, [b.organizationId, a.userId]),
        ),
        citus ? '0A000' : '23514',
      )
      // Citus refuses to disable a trigger on a distributed table; the 0A000 above is its whole answer.
      if (!citus)
        await expectSqlState(
          db().transaction(async (tx) => {
            await tx.exec('alter table users disable trigger users_set_updated_at')
            await tx.query(
              `select set_config('role', 'callsheet_app', true), set_config('app.organization_id', $1, true), set_config('app.tenant_proof', $2, true)`,
              [a.organizationId, testProof(a.organizationId)],
            )
            await tx.query(`update users set organization_id = $1 where id = $2`, [b.organizationId, a.userId])
          }),
          '42501',
        )
      expect(await count(db(), 'users', 'id = $1 and organization_id = $2', [a.userId, a.organizationId])).toBe(1)
    })

    it("cannot point its contact at another tenant's production, department or upload (composite FKs)", async () => {
      for (const [column, foreignId] of [
        ['production_id', b.productionId],
        ['department_id', b.departmentId],
        ['upload_id', b.uploadId],
      ] as const) {
        await expectSqlState(
          asAppRole(db(), a.organizationId, (tx) =>
            tx.query(`update contacts set ${column} = $1 where id = $2`, [foreignId, a.contactId]),
          ),
          '23503',
        )
      }
      await expectSqlState(
        asAppRole(db(), a.organizationId, (tx) =>
          tx.query(`insert into contacts (organization_id, production_id, name) values ($1, $2, 'Spy')`, [
            a.organizationId,
            b.productionId,
          ]),
        ),
        '23503',
      )
      expect(await count(db(), 'contacts', "name = 'Spy'")).toBe(0)
    })

    it('audit_logs: the app role reads its own rows; it can never insert, update, delete or truncate them', async () => {
      await asAppRole(db(), a.organizationId, async (tx) => {
        expect(await count(tx, 'audit_logs', 'id = $1', [a.auditId])).toBe(1)
      })
      for (const statement of [
        `insert into audit_logs (organization_id, action, entity_type, entity_id) values ('${a.organizationId}', 'update', 'contacts', '${a.contactId}')`,
        `update audit_logs set action = 'purge' where id = '${a.auditId}'`,
        `delete from audit_logs where id = '${a.auditId}'`,
        `truncate audit_logs`,
        `select count(*) from audit_logs_default`,
      ]) {
        await expectSqlState(
          asAppRole(db(), a.organizationId, (tx) => tx.query(statement)),
          '42501',
        )
      }
      expect(await count(db(), 'audit_logs', 'id = $1', [a.auditId])).toBe(1)
    })

    it('raw SQL writes as the app role are audited by the database, in the same transaction', async () => {
      const before = await count(db(), 'audit_logs', 'organization_id = $1', [a.organizationId])
      await asAppRole(db(), a.organizationId, async (tx) => {
        // SET LOCAL, not set_config: on Citus only SET LOCAL reaches the shards, where the audit trigger runs.
        await tx.exec(`set local app.request_id = 'raw-sql-1'`)
        await tx.query(`insert into departments (organization_id, name, code) values ($1, 'Raw', 'RAW')`, [
          a.organizationId,
        ])
        await tx.query(`update departments set name = 'Raw SQL' where code = 'RAW'`)
      })
      const rows = await db().query<{ action: string; request_id: string; new_values: Record<string, unknown> }>(
        `select action, request_id, new_values from audit_logs where organization_id = $1 and request_id = 'raw-sql-1' order by created_at, action`,
        [a.organizationId],
      )
      expect(rows.map((r) => r.action).sort()).toEqual(['insert', 'update'])
      expect(rows.find((r) => r.action === 'update')?.new_values).toEqual({ name: 'Raw SQL' })
      expect(await count(db(), 'audit_logs', 'organization_id = $1', [a.organizationId])).toBe(before + 2)
    })

    it('API key verification: a key row is visible only to whoever presents its hash, and only for reading', async () => {
      const [keyB] = await db().query<{ key_hash: string }>('select key_hash from api_keys where id = $1', [b.apiKeyId])
      const withHash = <T>(hash: string, fn: (tx: SqlRunner) => Promise<T>) =>
        asAppRole(db(), a.organizationId, async (tx) => {
          // SET LOCAL (reaches Citus shards; set_config does not); the hash is hex or a test constant.
          await tx.exec(`set local app.api_key_hash = '${hash.replace(/'/g, "''")}'`)
          return fn(tx)
        })
      // Without the hash, tenant A sees none of B's keys; with a wrong hash, still none.
      expect(
        await withHash('0'.repeat(64), (tx) => count(tx, 'api_keys', 'organization_id = $1', [b.organizationId])),
      ).toBe(0)
      // With B's hash (i.e. holding B's key), that one row can be read…
      expect(
        await withHash(keyB!.key_hash, (tx) => count(tx, 'api_keys', 'organization_id = $1', [b.organizationId])),
      ).toBe(1)
      // …but never changed or deleted: the verification policy is SELECT-only.
      const changed = await withHash(keyB!.key_hash, (tx) =>
        tx.query(`update api_keys set revoked_at = now() where id = $1 returning id`, [b.apiKeyId]),
      )
      expect(changed).toEqual([])
      const deleted = await withHash(keyB!.key_hash, (tx) =>
        tx.query(`delete from api_keys where id = $1 returning id`, [b.apiKeyId]),
      )
      expect(deleted).toEqual([])
      expect(await count(db(), 'api_keys', 'id = $1 and revoked_at is null', [b.apiKeyId])).toBe(1)
    })

    // Mutation check (scripts/mutation-check.ts): the two guarantees below hold only through the catalog
    // (FORCE, ownership), so without these tests the isolation suites could not notice them broken.
    it.each(TABLES)(
      '%s: a non-superuser owner is bound by the policy too (FORCE row level security)',
      async (table) => {
        if (engine().name === 'citus') {
          // Citus: placements changed by one user cannot be read by another in the same transaction, so the
          // owner swap below cannot be rolled back around the read. What it proves is that FORCE holds where
          // the rows are: every shard placement has it.
          const [placed] = await db().query<{ forced: boolean; n: number }>(
            `select bool_and(result::boolean) as forced, count(*)::int as n from run_command_on_placements($1,
               $$select relforcerowsecurity from pg_catalog.pg_class where oid = '%s'::regclass$$)`,
            [table],
          )
          expect(placed).toEqual({ forced: true, n: expect.any(Number) as number })
          expect(placed?.n).toBeGreaterThan(0)
          return
        }
        const owner = `callsheet_owner_probe_${Math.random().toString(36).slice(2, 10)}`
        const rollback = new Error('rollback')
        // CREATE ROLE and the ownership change are rolled back: the probe role never exists outside this transaction.
        await db()
          .transaction(async (tx) => {
            // One statement per call (Citus refuses several in one prepared statement); LOGIN on Citus,
            // which connects to the workers as the current role.
            await tx.exec(`create role ${owner} ${engine().name === 'citus' ? 'login' : 'nologin'}`)
            await tx.exec(`alter table ${table} owner to ${owner}`)
            await tx.exec(`set local role ${owner}`)
            // SET LOCAL reaches Citus shards (propagated once citus.propagate_set_commands is 'local').
            await tx.exec(`set local citus.propagate_set_commands = 'local'`)
            await tx.exec(`set local app.organization_id = '${a.organizationId}'`)
            await tx.exec(`set local app.tenant_proof = '${testProof(a.organizationId)}'`)
            expect(await count(tx, table, 'id = $1', [a[ID_OF[table]]])).toBe(1)
            expect(await count(tx, table, 'organization_id <> $1', [a.organizationId])).toBe(0)
            throw rollback
          })
          .catch((error: unknown) => {
            if (error !== rollback) throw error
          })
      },
    )

    it.each([...TABLES, 'organizations'])(
      '%s: the app role cannot switch its own isolation off (it owns no table)',
      async (table) => {
        for (const statement of [
          `alter table ${table} no force row level security`,
          `alter table ${table} disable row level security`,
          `drop policy tenant_isolation on ${table}`,
        ]) {
          await expectSqlState(
            asAppRole(db(), a.organizationId, (tx) => tx.exec(statement)),
            '42501',
          )
        }
      },
    )

    it('a rolled-back tenant write leaves nothing behind', async () => {
      const failure = new Error('boom')
      await expect(
        asAppRole(db(), a.organizationId, async (tx) => {
          await tx.query(`insert into departments (organization_id, name, code) values ($1, 'Art', 'ART')`, [
            a.organizationId,
          ])
          throw failure
        }),
      ).rejects.toBe(failure)
      expect(await count(db(), 'departments', "code = 'ART'")).toBe(0)
    })
  },
  { citus: true },
)
