/**
 * A read of exactly one statement whose text was built once (issue 20: no query building per call). A
 * unit of work given one runs it without Drizzle: on a server, BEGIN READ ONLY, the settings, the
 * statement and COMMIT go out in one packet (postgres/postgres-unit.ts). Inside a unit a callback holds,
 * {@link UnitStatements.read} runs it on that unit's connection.
 */

/** One statement, its parameters, and how its rows (array mode, parsed as for Drizzle) become the result. */
export interface PreparedRead<T> {
  readonly text: string
  readonly params: readonly unknown[]
  map(rows: readonly (readonly unknown[])[]): T
}

/** Runs prepared reads on the connection of the unit a callback runs in. */
export interface UnitStatements {
  read<T>(read: PreparedRead<T>): Promise<T>
}

/** What a unit of work runs: a callback over the unit's Drizzle handle, or one prepared read. */
export type UnitWork<T, Db> = ((db: Db, statements: UnitStatements) => Promise<T>) | PreparedRead<T>
