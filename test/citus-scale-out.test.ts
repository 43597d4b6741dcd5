import { beforeAll, expect, it } from 'vitest'
import { withRetry } from '../src/index'
import { isCallsheetDbError } from '../src/errors'
import { describeEachDatabase, type TestEngine } from './harness/engines'
import { asAppRole } from './harness/sql-runner'
import { fillTenant, type FilledTenant } from './support/fixtures'

// Scale-out under load (issue 16): a tenant's shard group moves to the other worker (and, in the second
// test, is first split off into a shard of its own) while clients write to it through the library. With
// `shard_transfer_mode => 'block_writes'` a write to the moving group waits for the copy; nothing may
// fail (after withRetry), be lost, be written twice, or be audited other than it happened. No wall-clock
// assertions: the workload runs until the move has finished, then a fixed number of further rounds.

const WORKERS_ON_MOVED = 3
const WORKERS_ON_OTHER = 1
const ROUNDS_BEFORE_MOVE = 3
const ROUNDS_AFTER_MOVE = 5
const BATCH = 3
const DOMAIN = 'load.example'

/** What the clients of one tenant believe committed. */
interface Ledger {
  readonly created: Set<string>
  readonly updates: Map<string, number>
  readonly deleted: Set<string>
}

/** What the clients saw, for the whole workload. */
interface Figures {
  ops: number
  opsStartedDuringMove: number
  retries: string[]
  failures: unknown[]
  longestOpDuringMoveMs: number
}

interface Placement {
  shard: string
  host: string
  port: number
}

const newLedger = (): Ledger => ({ created: new Set(), updates: new Map(), deleted: new Set() })

async function placementOf(engine: TestEngine, orgId: string, table = 'users'): Promise<Placement> {
  const [row] = await engine.admin.query<{ shard: string; host: string; port: number }>(
    `select s.shardid::text as shard, s.nodename as host, s.nodeport as port
       from citus_shards s
      where s.shardid = get_shard_id_for_distribution_column($1::regclass, $2::uuid)`,
    [table, orgId],
  )
  if (!row) throw new Error(`no placement for ${table} of ${orgId}`)
  return row
}

async function otherWorker(engine: TestEngine, from: Placement): Promise<{ host: string; port: number }> {
  const [row] = await engine.admin.query<{ host: string; port: number }>(
    `select nodename as host, nodeport as port from pg_dist_node
      where noderole = 'primary' and isactive and shouldhaveshards and groupid <> 0
        and not (nodename = $1 and nodeport = $2)
      order by nodeid limit 1`,
    [from.host, from.port],
  )
  if (!row) throw new Error('no other worker to move to')
  return row
}

async function moveTo(engine: TestEngine, shard: string, from: Placement, to: { host: string; port: number }) {
  await engine.admin.query(
    `select citus_move_shard_placement($1::bigint, $2, $3::int, $4, $5::int, shard_transfer_mode => 'block_writes')`,
    [shard, from.host, from.port, to.host, to.port],
  )
}

/**
 * Runs the workload on `moved` (3 clients) and `other` (1 client) while `move` runs: each client loops
 * createMany(3) → update the first → soft-delete the last, every call its own withRetry. The move starts
 * once every client has done ROUNDS_BEFORE_MOVE rounds; each client stops ROUNDS_AFTER_MOVE rounds after
 * the move returned.
 */
async function underLoad(
  moved: FilledTenant,
  other: FilledTenant,
  move: (stage: (name: string) => void) => Promise<void>,
): Promise<{ ledgers: Map<string, Ledger>; figures: Figures; moveMs: number; stages: string[] }> {
  const ledgers = new Map([
    [moved.org.id, newLedger()],
    [other.org.id, newLedger()],
  ])
  const figures: Figures = { ops: 0, opsStartedDuringMove: 0, retries: [], failures: [], longestOpDuringMoveMs: 0 }
  let phase: 'before' | 'moving' | 'after' = 'before'
  // What the mover is doing (e.g. 'split', 'move'), with how long each stage took: for the log only.
  let stage = 'before'
  const stages: string[] = []
  const rounds: number[] = []

  const op = async <T>(fn: () => Promise<T>): Promise<T> => {
    const duringMove = phase === 'moving'
    if (duringMove) figures.opsStartedDuringMove++
    const started = performance.now()
    try {
      return await withRetry(fn, {
        retries: 8,
        onRetry: (error, attempt) =>
          figures.retries.push(`${error.code}/${error.sqlState ?? '-'} #${attempt} during ${stage}: ${error.message}`),
      })
    } finally {
      figures.ops++
      if (duringMove)
        figures.longestOpDuringMoveMs = Math.max(figures.longestOpDuringMoveMs, performance.now() - started)
    }
  }

  const client = async (index: number, target: FilledTenant): Promise<void> => {
    const ledger = ledgers.get(target.org.id) as Ledger
    let afterMove = 0
    for (let round = 1; afterMove < ROUNDS_AFTER_MOVE; round++) {
      if (phase === 'after') afterMove++
      const inputs = Array.from({ length: BATCH }, (_, k) => ({
        productionId: target.production.id,
        name: `Mover Workload ${index} ${round} ${k}`,
        email: `c${index}-${round}-${k}-${target.org.slug}@${DOMAIN}`,
      }))
      try {
        const ids = await op(() => target.tenant.contacts.createMany(inputs, { returning: 'ids' }))
        for (const id of ids) ledger.created.add(id)
        const [first, , last] = ids as [string, string, string]
        await op(() => target.tenant.contacts.update(first, { role: `Round ${round}` }))
        ledger.updates.set(first, (ledger.updates.get(first) ?? 0) + 1)
        await op(() => target.tenant.contacts.softDelete(last))
        ledger.deleted.add(last)
      } catch (error) {
        figures.failures.push(error)
        return
      }
      rounds[index] = round
    }
  }

  const targets = [
    ...Array.from({ length: WORKERS_ON_MOVED }, () => moved),
    ...Array.from({ length: WORKERS_ON_OTHER }, () => other),
  ]
  const clients = targets.map((target, index) => client(index, target))
  const mover = (async () => {
    while (targets.some((_, i) => (rounds[i] ?? 0) < ROUNDS_BEFORE_MOVE) && figures.failures.length === 0) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    phase = 'moving'
    const started = performance.now()
    let stageStarted = started
    const mark = (name: string): void => {
      const now = performance.now()
      // An empty stage (the mover named its first stage at once) says nothing.
      if (stage !== 'before' && now - stageStarted >= 1) stages.push(`${stage} ${(now - stageStarted).toFixed(0)} ms`)
      stage = name
      stageStarted = now
    }
    try {
      mark('move')
      await move(mark)
    } finally {
      mark('after')
      phase = 'after'
    }
    return performance.now() - started
  })()
  const [moveMs] = await Promise.all([mover, ...clients])
  return { ledgers, figures, moveMs, stages }
}

/** The database holds exactly what the clients recorded, and the audit says exactly what they did. */
async function expectExactly(engine: TestEngine, tenant: FilledTenant, ledger: Ledger): Promise<void> {
  const rows = await engine.admin.query<{ id: string; email: string; deleted: boolean; organization_id: string }>(
    `select id, email, deleted_at is not null as deleted, organization_id from contacts
      where organization_id = $1 and email like $2`,
    [tenant.org.id, `%@${DOMAIN}`],
  )
  expect(rows.length).toBe(ledger.created.size)
  expect(new Set(rows.map((r) => r.id))).toEqual(ledger.created)
  expect(new Set(rows.map((r) => r.email)).size).toBe(rows.length)
  expect(new Set(rows.filter((r) => r.deleted).map((r) => r.id))).toEqual(ledger.deleted)

  const audit = await engine.admin.query<{ entity_id: string; action: string; n: number }>(
    `select entity_id::text as entity_id, action, count(*)::int as n from audit_logs
      where organization_id = $1 and entity_type = 'contacts' and entity_id <> $2
      group by 1, 2`,
    [tenant.org.id, tenant.contact.id],
  )
  const actual = new Map(audit.map((a) => [`${a.entity_id} ${a.action}`, a.n]))
  const expected = new Map<string, number>()
  for (const id of ledger.created) expected.set(`${id} insert`, 1)
  for (const [id, n] of ledger.updates) expected.set(`${id} update`, n)
  for (const id of ledger.deleted) expected.set(`${id} soft_delete`, 1)
  expect(actual).toEqual(expected)
}

describeEachDatabase(
  'scale-out: a tenant moves to another worker under load',
  (ctx) => {
    let tenants: FilledTenant[]

    beforeAll(async () => {
      tenants = []
      for (const label of ['moved', 'other', 'isolated', 'neighbour']) tenants.push(await fillTenant(ctx().db, label))
    })

    async function check(
      moved: FilledTenant,
      other: FilledTenant,
      run: Awaited<ReturnType<typeof underLoad>>,
      destination: { host: string; port: number },
    ): Promise<void> {
      const { engine } = ctx()
      const { ledgers, figures, moveMs, stages } = run
      console.info(
        `[scale-out] move ${moveMs.toFixed(0)} ms (${stages.join(', ')}); ops ${figures.ops} (${figures.opsStartedDuringMove} started during the move, ` +
          `longest ${figures.longestOpDuringMoveMs.toFixed(0)} ms); retries ${figures.retries.length}` +
          (figures.retries.length > 0 ? ` [${figures.retries.join(', ')}]` : '') +
          `; contacts ${[...ledgers.values()].map((l) => l.created.size).join(' / ')}`,
      )
      // Every operation succeeded (after withRetry), and the clients were writing while the move ran.
      expect(figures.failures).toEqual([])
      expect(figures.opsStartedDuringMove).toBeGreaterThan(0)
      for (const tenant of [moved, other]) await expectExactly(engine, tenant, ledgers.get(tenant.org.id) as Ledger)

      // The whole shard group is on the destination now.
      for (const table of ['users', 'contacts', 'productions', 'audit_logs']) {
        expect(await placementOf(engine, moved.org.id, table)).toMatchObject(destination)
      }

      // Isolation holds after the move: through the library…
      const t = moved.tenant
      expect(await t.contacts.findById(other.contact.id, { deleted: 'include' })).toBeUndefined()
      await expect(t.contacts.update(other.contact.id, { role: 'x' })).rejects.toSatisfy((e) =>
        isCallsheetDbError(e, 'NOT_FOUND'),
      )
      expect((await t.contacts.findById(moved.contact.id))?.id).toBe(moved.contact.id)
      const hits = await t.contacts.search('Mover Workload 0 1', { limit: 100 })
      expect(hits.length).toBeGreaterThan(0)
      expect(hits.every((h) => h.organizationId === moved.org.id)).toBe(true)
      expect(hits.map((h) => h.name)).toContain('Mover Workload 0 1 0')
      // …and by raw SQL as the app role.
      await asAppRole(engine.admin, moved.org.id, async (tx) => {
        const [mine] = await tx.query<{ n: number }>(`select count(*)::int as n from contacts where email like $1`, [
          `%@${DOMAIN}`,
        ])
        expect(mine?.n).toBe(ledgers.get(moved.org.id)?.created.size)
        const [foreign] = await tx.query<{ n: number }>(
          `select count(*)::int as n from contacts where organization_id <> $1`,
          [moved.org.id],
        )
        expect(foreign?.n).toBe(0)
        const [byId] = await tx.query<{ n: number }>(`select count(*)::int as n from contacts where id = $1`, [
          other.contact.id,
        ])
        expect(byId?.n).toBe(0)
      })
    }

    it('citus_move_shard_placement (block_writes): no failed operation, nothing lost or doubled, audit exact', async () => {
      const { engine } = ctx()
      const [moved, other] = tenants as [FilledTenant, FilledTenant]
      const from = await placementOf(engine, moved.org.id)
      const to = await otherWorker(engine, from)
      const run = await underLoad(moved, other, () => moveTo(engine, from.shard, from, to))
      await check(moved, other, run, to)
    })

    it('isolate_tenant_to_new_shard (block_writes), then moving that shard: the same guarantees', async () => {
      const { engine } = ctx()
      const [, , isolated, neighbour] = tenants as [FilledTenant, FilledTenant, FilledTenant, FilledTenant]
      const before = await placementOf(engine, isolated.org.id)
      const to = await otherWorker(engine, before)
      let isolatedShard = ''
      // The shards as they were, to name the ones a stale-placement error mentions (for the log).
      const shardTables = new Map(
        (
          await engine.admin.query<{ id: string; t: string }>(
            `select shardid::text as id, logicalrelid::regclass::text as t from pg_dist_shard`,
          )
        ).map((r) => [r.id, r.t]),
      )
      const run = await underLoad(isolated, neighbour, async (stage) => {
        stage('split')
        const [row] = await engine.admin.query<{ shard: string }>(
          `select isolate_tenant_to_new_shard('users', $1::uuid, 'CASCADE', shard_transfer_mode => 'block_writes')::text as shard`,
          [isolated.org.id],
        )
        isolatedShard = row?.shard ?? ''
        const split = await placementOf(engine, isolated.org.id)
        expect(split.shard).toBe(isolatedShard)
        stage('move')
        await moveTo(engine, split.shard, split, to)
      })
      const named = run.figures.retries.map((r) => /shard (\d+)/.exec(r)?.[1]).filter((id) => id !== undefined)
      console.info(
        `[scale-out] users shard of the isolated tenant: ${before.shard} → ${isolatedShard}; stale shards retried: ` +
          named.map((id) => `${id} (${shardTables.get(id) ?? '?'})`).join(', '),
      )
      await check(isolated, neighbour, run, to)
      // The tenant has a shard of its own: no other organization's users hash into it.
      const [{ n } = { n: -1 }] = await engine.admin.query<{ n: number }>(
        `select count(*)::int as n from organizations
          where get_shard_id_for_distribution_column('users', id) = $1::bigint`,
        [isolatedShard],
      )
      expect(n).toBe(1)
    })
  },
  {},
  { only: ['citus'] },
)
