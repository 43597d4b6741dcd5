import { beforeAll, expect, it } from 'vitest'
import { seededRandom } from '../src/testing/fixtures'
import type { ContactSearchHit } from '../src/repositories/contacts-repository'
import { describeEachDatabase } from './harness/engines'
import { fillTenant, type FilledTenant } from './support/fixtures'

/**
 * contacts.search tries a high threshold first and keeps its answer only when it fills `limit` (the
 * threshold ladder): every search must still equal the exact ranking — every live name of the tenant at or
 * over the threshold, by similarity then id, computed here without the trigram index.
 */

const FIRST = ['maria', 'marta', 'mario', 'james', 'jane', 'jon', 'john', 'ada', 'anna', 'hugo', 'lars', 'ingrid']
const LAST = ['lopez', 'lopes', 'smith', 'smyth', 'quill', 'olsen', 'nielsen', 'rossi', 'ross', 'tanaka', 'chen']

/** `n` seeded names: mostly "first last", some first names alone, some doubled surnames, a few repeats. */
function names(seed: number, n: number): string[] {
  const random = seededRandom(seed)
  const pick = (list: readonly string[]): string => list[Math.floor(random() * list.length)]!
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const r = random()
    if (r < 0.1) out.push(pick(FIRST))
    else if (r < 0.2) out.push(`${pick(FIRST)} ${pick(LAST)}-${pick(LAST)}`)
    else out.push(`${pick(FIRST)} ${pick(LAST)}`)
  }
  return out
}

const thresholdSets: number[][] = []
let current: number[] = []
const logger = {
  debug: (_message: string, fields?: Record<string, unknown>) => {
    if (String(fields?.sql).includes('callsheet_set_similarity_threshold'))
      current.push(Number((fields?.params as unknown[] | undefined)?.[0]))
  },
}

describeEachDatabase(
  'contacts.search threshold ladder',
  (ctx) => {
    let a: FilledTenant
    let b: FilledTenant
    let otherIds: Set<string>

    beforeAll(async () => {
      a = await fillTenant(ctx().db, 'ladder-a')
      b = await fillTenant(ctx().db, 'ladder-b')
      const created = await a.tenant.contacts.createMany(
        names(11, 400).map((name) => ({ productionId: a.production.id, name })),
      )
      // Some live names are deleted: they must not appear at any rung.
      for (const row of created.slice(0, 40)) await a.tenant.contacts.softDelete(row.id)
      // The other tenant holds many exact copies of the names searched for: were any rung to leave the
      // tenant, they would rank first.
      const theirs = await b.tenant.contacts.createMany(
        [...names(12, 150), ...Array.from({ length: 30 }, () => 'maria lopez'), ...Array(30).fill('marta')].map(
          (name: string) => ({ productionId: b.production.id, name }),
        ),
      )
      otherIds = new Set(theirs.map((r) => r.id))
    })

    /** The exact ranking, as the owner, with no trigram operator (so no trigram index) in the query. */
    async function exact(text: string, threshold: number, limit: number, productionId?: string) {
      const rows = await ctx().engine.admin.query<{ id: string; score: number }>(
        `select id, similarity(name, $1) as score from contacts
         where organization_id = $2 and deleted_at is null and similarity(name, $1) >= $3::float8
           and ($4::uuid is null or production_id = $4::uuid)
         order by score desc, id limit $5`,
        [text, a.org.id, threshold, productionId ?? null, limit],
      )
      return rows.map((r) => ({ id: r.id, score: Number(r.score) }))
    }

    async function searched(text: string, options: { threshold?: number; limit?: number; productionId?: string }) {
      current = []
      const hits: ContactSearchHit[] = await a.tenant.contacts.search(text, options)
      thresholdSets.push(current)
      return hits
    }

    it('equals the exact ranking for every query, threshold and limit, whether it stops early or not', async () => {
      const texts = ['maria lopez', 'marta', 'mraia lopz', 'jon smith', 'jane', 'ingrid olsen', 'ross', 'zzzz']
      const rungs = { stopped: 0, wentDown: 0 }
      for (const text of texts) {
        for (const threshold of [undefined, 0, 0.3, 0.45, 0.6, 0.8, 1]) {
          for (const limit of [1, 5, 20, 100]) {
            const hits = await searched(text, { threshold, limit })
            const want = await exact(text, threshold ?? 0.3, limit)
            expect(
              hits.map((h) => [h.id, h.score]),
              `${text} ${threshold} ${limit}`,
            ).toEqual(want.map((h) => [h.id, h.score]))
            expect(hits.every((h) => h.organizationId === a.org.id && !otherIds.has(h.id))).toBe(true)
            const sets = thresholdSets.at(-1)!
            // The last threshold set is always the caller's: the unit (or transaction) keeps it.
            expect(sets.at(-1)).toBe(threshold ?? 0.3)
            // A 4-letter word (5 trigrams) skips the ladder: one threshold, one search.
            if (text.length <= 4 && (threshold ?? 0.3) < 0.6) expect(sets).toHaveLength(1)
            if (sets.length === 2) rungs.stopped++
            if (sets.length === 3) rungs.wentDown++
          }
        }
      }
      // The data makes both paths happen: some searches filled `limit` at the high rung, some did not.
      expect(rungs.stopped).toBeGreaterThan(10)
      expect(rungs.wentDown).toBeGreaterThan(10)
    })

    it('equals the exact ranking within a production, and inside a transaction', async () => {
      const p = await a.tenant.productions.create({ title: 'Ladder Subset' })
      await a.tenant.contacts.createMany(names(13, 60).map((name) => ({ productionId: p.id, name })))
      for (const text of ['maria lopez', 'marta', 'jon smth']) {
        for (const limit of [1, 20]) {
          const want = await exact(text, 0.3, limit, p.id)
          const hits = await searched(text, { productionId: p.id, limit })
          expect(hits.map((h) => [h.id, h.score])).toEqual(want.map((h) => [h.id, h.score]))
          const inside = await a.tenant.transaction(async (tx) => {
            const first = await tx.contacts.search(text, { productionId: p.id, limit, threshold: 0.1 })
            // A search after one that stopped early in the same transaction still sees its own threshold.
            const second = await tx.contacts.search(text, { productionId: p.id, limit })
            return { first, second }
          })
          expect(inside.second.map((h) => h.id)).toEqual(want.map((h) => h.id))
          const loose = await exact(text, 0.1, limit, p.id)
          expect(inside.first.map((h) => h.id)).toEqual(loose.map((h) => h.id))
        }
      }
    })

    it("never returns another tenant's contacts, even where the high rung is filled by theirs", async () => {
      // b's 30 exact 'maria lopez' and 'marta' would fill the high rung; b sees them, a never does.
      const ours = await searched('maria lopez', { limit: 20 })
      expect(ours.some((h) => otherIds.has(h.id))).toBe(false)
      const theirs = await b.tenant.contacts.search('maria lopez', { limit: 20 })
      expect(theirs).toHaveLength(20)
      expect(theirs.every((h) => h.organizationId === b.org.id && h.score === 1)).toBe(true)
      expect(await b.tenant.contacts.search('marta', { limit: 20, productionId: a.production.id })).toEqual([])
    })
  },
  { logger },
  { citus: true },
)
