import { sql, type SQL } from 'drizzle-orm'
import { REPLICA_GATE_CALL, type ReplicaGate } from './replica-gate'

/** The transaction-local settings of a unit of work, in the order of the settings statement's parameters. */
export interface UnitSettings {
  readonly role: string
  readonly organizationId: string
  readonly actorId: string
  readonly apiKeyId: string
  readonly requestId: string
  readonly ip: string
  /** `app.tenant_proof` for `organizationId` (see tenant-proof.ts); '' with no tenant. */
  readonly proof: string
}

/** Which form of the settings statement: what the unit is for and where it runs. */
export interface SettingsVariant {
  /**
   * `'tenant'`: tenant work (`callsheet_enter_tenant`: refuses a bad proof, a missing or deleted
   * organization, a foreign actor or key). `'organization'`: an organization's own administration
   * (`callsheet_enter_organization`, migration 0014: the proof only; the organization need not exist or
   * be live). Never `'organization'` for tenant work, so a deleted organization's tenant units still fail.
   * @default 'tenant'
   */
  readonly enter?: 'tenant' | 'organization'
  /**
   * Sets `statement_timeout` from `$7`. PGlite has no statement timeout (no signals in WebAssembly): it
   * sends `$7` unused (`$7::text`), so that the numbering stays.
   * @default true
   */
  readonly statementTimeout?: boolean
  /** A read on a replica: also passes the read-your-writes gate (`$9`, `$10`) and returns `replayed`. */
  readonly replicaGate?: boolean
  /**
   * Only `app.api_key_id` and the tenant: for a unit that applied its settings without a tenant and then
   * enters the one it found (API key verification). Through {@link settingsSql} only: it uses `$2`, `$3`,
   * `$4` and `$8`, and a server may refuse parameters a statement does not use (their types are unknown).
   */
  readonly tenantOnly?: boolean
}

/** A settings statement with its parameters, for a raw driver call (`unsafe`, PGlite `query`). */
export interface SettingsStatement {
  readonly text: string
  readonly params: (string | number)[]
}

// One statement sets everything, transaction-locally (never session SET: it would leak through
// PgBouncer transaction pooling). The text is constant per variant, so it is prepared once per connection.
// statement_timeout is set here too, transaction-locally: PgBouncer (1.18) refuses it as a startup
// parameter, and a unit must not depend on what the last user of a pooled server connection set.
// search_path is pinned with pg_temp last, so that no temp table (one left on a pooled connection, or
// a session-level SET search_path) can shadow the library's tables; the statement itself names its
// functions' schemas. The enter function (migrations 0012, 0014) comes last: it sets the tenant and its
// proof, and refuses the unit (bad proof, deleted organization, foreign actor) before any row is read.
const HEAD =
  "select pg_catalog.set_config('role', $1, true), pg_catalog.set_config('search_path', 'pg_catalog, public, pg_temp', true), " +
  "pg_catalog.set_config('app.actor_id', $3, true), pg_catalog.set_config('app.api_key_id', $4, true), " +
  "pg_catalog.set_config('app.request_id', $5, true), pg_catalog.set_config('app.ip', $6, true), "
const STATEMENT_TIMEOUT = "pg_catalog.set_config('statement_timeout', $7, true), "
const NO_STATEMENT_TIMEOUT = '$7::text, '
const ENTER_TENANT = 'public.callsheet_enter_tenant($2, $8, $3, $4)'
const ENTER_ORGANIZATION = 'public.callsheet_enter_organization($2, $8, $3, $4)'
const TENANT_ONLY = `select pg_catalog.set_config('app.api_key_id', $4, true), ${ENTER_TENANT}`

// Every text built once, at load: a unit only picks one.
const TEXTS = new Map<string, string>()
for (const enter of ['tenant', 'organization'] as const) {
  for (const statementTimeout of [true, false]) {
    for (const replicaGate of [true, false]) {
      TEXTS.set(
        key(enter, statementTimeout, replicaGate),
        HEAD +
          (statementTimeout ? STATEMENT_TIMEOUT : NO_STATEMENT_TIMEOUT) +
          (replicaGate ? `${REPLICA_GATE_CALL}, ` : '') +
          (enter === 'organization' ? ENTER_ORGANIZATION : ENTER_TENANT),
      )
    }
  }
}

function key(enter: 'tenant' | 'organization', statementTimeout: boolean, replicaGate: boolean): string {
  return `${enter}.${statementTimeout}.${replicaGate}`
}

/**
 * The settings statement's text for `variant`: `$1` role, `$2` organization, `$3` actor, `$4` API key,
 * `$5` request id, `$6` IP, `$7` statement timeout (ms, text), `$8` tenant proof; with the replica gate
 * `$9` the position to wait for and `$10` how long (ms). Parameters: {@link settingsParams}.
 */
export function settingsStatementText(variant: SettingsVariant = {}): string {
  if (variant.tenantOnly) return TENANT_ONLY
  return TEXTS.get(
    key(variant.enter ?? 'tenant', variant.statementTimeout ?? true, variant.replicaGate ?? false),
  ) as string
}

/** The parameters of {@link settingsStatementText}, in its numbering. */
export function settingsParams(
  s: UnitSettings,
  statementTimeoutMs: number,
  gate?: Pick<ReplicaGate, 'waitFor' | 'waitMs'>,
): (string | number)[] {
  const params: (string | number)[] = [
    s.role,
    s.organizationId,
    s.actorId,
    s.apiKeyId,
    s.requestId,
    s.ip,
    String(statementTimeoutMs),
    s.proof,
  ]
  if (gate) params.push(gate.waitFor, gate.waitMs)
  return params
}

/** How {@link settingsStatement} and {@link settingsSql} pick the variant. */
export interface SettingsStatementOptions {
  /** See {@link SettingsVariant.enter}. @default 'tenant' */
  readonly enter?: 'tenant' | 'organization'
  /** Sets `statement_timeout` to this; without it, the PGlite form (the timeout is left as it is). */
  readonly statementTimeoutMs?: number
  /** A replica read: the position to wait for and how long. */
  readonly gate?: Pick<ReplicaGate, 'waitFor' | 'waitMs'>
}

/**
 * The settings statement for `settings`, text and parameters (for tests, benchmarks and tools that drive
 * a connection themselves: what they send is what the engines send).
 */
export function settingsStatement(settings: UnitSettings, options: SettingsStatementOptions = {}): SettingsStatement {
  const { enter, statementTimeoutMs, gate } = options
  return {
    text: settingsStatementText({
      ...(enter ? { enter } : {}),
      statementTimeout: statementTimeoutMs !== undefined,
      replicaGate: gate !== undefined,
    }),
    params: settingsParams(settings, statementTimeoutMs ?? 0, gate),
  }
}

/**
 * The settings statement as a Drizzle query, for code that holds a unit's Drizzle handle. Each `$n` becomes
 * a bound parameter; parameters the variant does not use are not sent (so `tenantOnly` works here).
 */
export function settingsSql(
  settings: UnitSettings,
  options: SettingsStatementOptions & { readonly tenantOnly?: boolean } = {},
): SQL {
  const { tenantOnly, ...rest } = options
  const { text, params } = settingsStatement(settings, rest)
  const parts = (tenantOnly ? settingsStatementText({ tenantOnly }) : text).split(/\$(\d+)/)
  return sql.join(parts.map((part, i) => (i % 2 === 0 ? sql.raw(part) : sql.param(params[Number(part) - 1]))))
}
