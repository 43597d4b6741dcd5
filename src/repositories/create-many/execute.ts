import { PartialBatchError } from '../../errors'
import { validate } from '../../support/validate'
import type { TenantRuntime } from '../../unit-of-work/tenant-runtime'
import { chunkStatement, type Written } from './encode'
import { planCreateMany, type CreateManyPlan, type CreateManyTarget } from './plan'

/**
 * `createMany`: plans the batch (plan.ts), then sends its chunks (encode.ts) with the plan's strategy.
 * Each chunk is one write through the runtime, so the hooks see it like any other insert.
 * @throws ValidationError on any bad row or option (nothing is written).
 * @throws PartialBatchError with `atomic: false`, naming how many rows committed before the failure.
 */
export async function createMany(
  target: CreateManyTarget,
  runtime: TenantRuntime,
  inputs: unknown,
  options: unknown,
): Promise<Record<string, unknown>[] | string[] | number> {
  const plan = planCreateMany(target, runtime, inputs, options)
  const statement = chunkStatement(target, runtime.organizationId, plan.settings, plan.countOnly)
  const writeChunk = async (bound: TenantRuntime, chunk: readonly Record<string, unknown>[]): Promise<Written> => {
    let count = 0
    const rows = await bound.write({
      entity: target.entity,
      operation: 'insert',
      ids: [],
      values: chunk,
      revalidate: (v) => validate(target.createSchema, v, `${target.entity} input`) as Record<string, unknown>,
      statement: async (db, values) => {
        const written = await statement(db, values)
        count = written.count
        return written.rows
      },
    })
    return { rows, count }
  }

  const out: Record<string, unknown>[] = []
  let inserted = 0
  let done = 0
  const result = (): Record<string, unknown>[] | string[] | number =>
    plan.settings.returning === 'count'
      ? inserted
      : plan.settings.returning === 'ids'
        ? out.map((r) => String(r.id))
        : out
  const collect = (chunk: readonly unknown[], written: Written) => {
    out.push(...written.rows)
    inserted += written.count
    done += chunk.length
    plan.settings.onProgress?.({ done, total: plan.total })
  }
  if (plan.total === 0) return result()

  switch (plan.strategy) {
    case 'pipelined':
      await runtime.writeUnit((bound) => sendPipelined(plan, (chunk) => writeChunk(bound, chunk), collect))
      return result()
    case 'atomic':
      await runtime.writeUnit(async (bound) => {
        for (const start of plan.starts) {
          const chunk = plan.chunkAt(start) as Record<string, unknown>[]
          collect(chunk, await writeChunk(bound, chunk))
        }
      })
      return result()
    case 'chunked':
      for (const start of plan.starts) {
        const chunk = plan.chunkAt(start) as Record<string, unknown>[]
        let written: Written
        try {
          written = await writeChunk(runtime, chunk)
        } catch (error) {
          throw new PartialBatchError(
            done,
            out.map((r) => String(r.id)),
            error,
          )
        }
        collect(chunk, written)
      }
      return result()
  }
}

/**
 * Sends chunk k+1 while the server still inserts chunk k, in one unit. A chunk sent behind a failed
 * one fails with "transaction aborted": awaiting in order reports the first failure, the cause.
 */
async function sendPipelined(
  plan: CreateManyPlan,
  send: (chunk: readonly Record<string, unknown>[]) => Promise<Written>,
  collect: (chunk: readonly unknown[], written: Written) => void,
): Promise<void> {
  let inFlight: { chunk: readonly unknown[]; written: Promise<Written> } | undefined
  for (const start of plan.starts) {
    const chunk = plan.chunkAt(start)
    if (!chunk) continue // a bad row: validate the rest, send nothing more
    const written = send(chunk)
    written.catch(() => undefined) // awaited below, in order
    // Let the driver write this chunk before the next one is validated and built.
    await new Promise((resolve) => setImmediate(resolve))
    if (inFlight) collect(inFlight.chunk, await inFlight.written)
    inFlight = { chunk, written }
  }
  const invalid = plan.invalid()
  if (invalid) throw invalid
  if (inFlight) collect(inFlight.chunk, await inFlight.written)
}
