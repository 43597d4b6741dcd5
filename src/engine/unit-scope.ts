import { AsyncLocalStorage } from 'node:async_hooks'
import { InvalidStateError } from '../errors'

/**
 * A unit of work whose callback is running, as seen from the async context of everything that callback
 * starts: how a unit started from inside another unit of the same database is recognised.
 */
export interface OpenUnit {
  /** The database the unit runs on, and on PGlite the instance (one session, whoever opened it). */
  readonly owners: readonly object[]
  /** False once the unit has ended: work the callback left behind (a timer) may start units again. */
  open: boolean
  /** The innermost open unit of another database this one was started in, if any. */
  readonly outer: OpenUnit | undefined
  /** Its callback runs in a marked async context ({@link runInUnit}). */
  marked: boolean
}

// Node 20 propagates an AsyncLocalStorage store with a promise hook that runs for every promise of the
// process while the storage is enabled. Measured at c=16 on a loaded 2-core machine (medians of 8
// interleaved rounds): every unit marked, findById +9 % and +16 % Node CPU in two runs; transaction(fn)
// marked vs not, 1.00× and 0.96× (noise). So only units that run the app's code are marked, and the
// storage is disabled again whenever none of them is open: findById and findMany never enable it.
const openUnits = new AsyncLocalStorage<OpenUnit>()
let markedUnits = 0

const nestedUnit = () =>
  new InvalidStateError(
    'a unit of work was started inside another unit of the same database: inside tenant.transaction(fn) and ' +
      'tenant.read(fn), use the handle the callback receives (tx.contacts…), not the outer tenant client, ' +
      'another db.tenant(…) client, db.organizations or db.apiKeys.verify. It would need a second connection (on PGlite it ' +
      'would wait for the first forever) and would not see the transaction’s writes. Nothing was sent.',
  )

function innermostOpen(unit: OpenUnit | undefined): OpenUnit | undefined {
  let current = unit
  while (current !== undefined && !current.open) current = current.outer
  return current
}

/**
 * Marks a unit about to run on `owners`, or throws when one of them already has a unit open in this
 * async context (a nested unit): call {@link runInUnit} with the mark, {@link closeUnit} once it ends.
 * @throws InvalidStateError for a nested unit.
 */
export function openUnit(owners: readonly object[]): OpenUnit {
  return { owners, open: true, outer: refuseInsideUnit(owners), marked: false }
}

/**
 * Throws when called inside an open unit on one of `owners` (statements outside units too would wait for
 * a connection that unit holds); returns the innermost open unit otherwise.
 * @throws InvalidStateError inside a unit of the same database.
 */
export function refuseInsideUnit(owners: readonly object[]): OpenUnit | undefined {
  const outer = innermostOpen(openUnits.getStore())
  for (let unit = outer; unit !== undefined; unit = innermostOpen(unit.outer)) {
    for (const owner of unit.owners) if (owners.includes(owner)) throw nestedUnit()
  }
  return outer
}

/**
 * Runs a unit's callback so that every unit it starts (at once, or later while `unit` is open) is
 * checked against it. For callbacks that run the app's code; the library's own need no mark.
 */
export function runInUnit<A, R>(unit: OpenUnit, fn: (arg: A) => R, arg: A): R {
  if (!unit.marked) {
    unit.marked = true
    markedUnits++
  }
  return openUnits.run(unit, fn, arg)
}

/** The unit has ended (committed, rolled back or failed). Idempotent. */
export function closeUnit(unit: OpenUnit): void {
  if (!unit.open) return
  unit.open = false
  if (unit.marked && --markedUnits === 0) openUnits.disable()
}
