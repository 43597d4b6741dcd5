import type { PGlite, Transaction } from '@electric-sql/pglite'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { APP_ROLE } from '../../schema/columns'
import { schema } from '../drizzle-setup'
import type { Db } from '../engine'

/**
 * The role PGlite's `$primary` runs as: what a server's runtime login is (see `createRuntimeLogin`), a
 * NOINHERIT member of the app role with no privilege of its own. Not a login: PGlite has one session.
 */
const PGLITE_RUNTIME_ROLE = 'callsheet_runtime'

// Created on first use, as the server's runtime login is at deploy time (PGlite's session is a superuser).
const ENSURE_ROLE = `do $$ begin
  if not exists (select 1 from pg_catalog.pg_roles where rolname = '${PGLITE_RUNTIME_ROLE}') then
    create role ${PGLITE_RUNTIME_ROLE} nologin noinherit in role ${APP_ROLE};
  end if;
end $$`

/**
 * `$primary` on PGlite: drizzle whose every statement (and transaction) runs as {@link PGLITE_RUNTIME_ROLE}
 * (`SET LOCAL ROLE` in its own transaction), so that it sees what `$primary` sees on a server connected
 * as the runtime login — no library table (permission denied), whatever PGlite's superuser could — rather
 * than every tenant's rows.
 */
export function pgliteRuntimeLoginView(pg: PGlite): Db {
  let ensured: Promise<unknown> | undefined
  const ensure = () => {
    ensured ??= pg.exec(ENSURE_ROLE).catch((error: unknown) => {
      ensured = undefined // not migrated yet (no app role): the next statement tries again
      throw error
    })
    return ensured
  }
  const asRuntime = async <T>(fn: (tx: Transaction) => Promise<T>): Promise<T> => {
    await ensure()
    return pg.transaction(async (tx) => {
      await tx.query(`set local role ${PGLITE_RUNTIME_ROLE}`)
      return fn(tx)
    })
  }
  const client = {
    query: (text: string, params?: unknown[], options?: object) => asRuntime((tx) => tx.query(text, params, options)),
    transaction: <T>(fn: (tx: Transaction) => Promise<T>) => asRuntime(fn),
  }
  return drizzlePglite(client as unknown as PGlite, { schema })
}
