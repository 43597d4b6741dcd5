import { UniqueViolationError } from '../errors'

/**
 * The error a plain INSERT would raise on `<table>_pkey`, for inserts that use
 * `ON CONFLICT (organization_id, id) DO NOTHING` (a batch of `createMany`, a `create` with a caller-given id)
 * and found that the id is already a row of this organization in a way they do not accept.
 */
export function primaryKeyViolation(table: string, detail: string): UniqueViolationError {
  const constraint = `${table}_pkey`
  return new UniqueViolationError(`duplicate key value violates unique constraint "${constraint}"`, {
    constraint,
    table,
    detail,
    sqlState: '23505',
  })
}
