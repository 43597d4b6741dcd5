import postgres from 'postgres'

/** A postgres.js client the CLI opened (one connection). */
export type CliSql = postgres.Sql

/** Thrown when the CLI cannot reach a database: reported as one line, exit code 1. */
class CliConnectionError extends Error {}

/** The URL with its password replaced by `***`, for messages and check names. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@')
  }
}

/** True for the URL shapes postgres.js accepts. */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url)
}

/** The most useful one-line message of an error (postgres.js may throw an AggregateError with no message). */
export function errorText(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    const inner = [...new Set(error.errors.map((e: unknown) => errorText(e)))]
    return error.message ? `${error.message}: ${inner.join('; ')}` : inner.join('; ')
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    const message = error.message || (typeof code === 'string' ? code : error.name)
    return error.cause instanceof Error && error.cause.message !== message
      ? `${message} (${errorText(error.cause)})`
      : message
  }
  return String(error)
}

/**
 * Opens one connection to `url` and checks it answers. The caller ends it.
 * @throws CliConnectionError naming the (redacted) URL when the server cannot be reached or refuses us.
 */
export async function connect(url: string, options: { connectTimeoutSeconds?: number } = {}): Promise<CliSql> {
  let sql: CliSql
  try {
    sql = postgres(url, {
      max: 1,
      onnotice: () => {},
      connect_timeout: options.connectTimeoutSeconds ?? 10,
      idle_timeout: 0,
      // The CLI is short-lived: no need for prepared statements, and it works through PgBouncer too.
      prepare: false,
    })
  } catch (error) {
    throw new CliConnectionError(`cannot connect to ${redactUrl(url)}: ${errorText(error)}`)
  }
  try {
    await sql`select 1`
  } catch (error) {
    await sql.end({ timeout: 1 }).catch(() => undefined)
    throw new CliConnectionError(`cannot connect to ${redactUrl(url)}: ${errorText(error)}`)
  }
  return sql
}

/** Opens a connection, runs `fn`, and always closes it. */
export async function withConnection<T>(url: string, fn: (sql: CliSql) => Promise<T>): Promise<T> {
  const sql = await connect(url)
  try {
    return await fn(sql)
  } finally {
    await sql.end({ timeout: 5 }).catch(() => undefined)
  }
}
