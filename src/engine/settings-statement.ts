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
   * (`callsheet_enter_organization`, migrations 0014, 0016: the proof only; the organization need not exist or
   * be live). Never `'organization'` for tenant work, so a deleted organization's tenant units still fail.
   * @default 'tenant'
   */
  readonly enter?: 'tenant' | 'organization'
  /**
   * Sets `statement_timeout` from `$8`. PGlite has no statement timeout (no signals in WebAssembly): its
   * form passes NULL (the enter function then leaves the setting alone) and sends no `$8`.
   * @default true
   */
  readonly statementTimeout?: boolean
  /** A read on a replica: also passes the read-your-writes gate (`$9`, `$10`) and returns `replayed`. */
  readonly replicaGate?: boolean
  /**
   * A unit on the primary target: refuses (SQLSTATE CS005, migration 0017) a server in recovery, and for
   * `'write'` also a read-only transaction (a primary being demoted), before any query of the unit runs.
   * Not for replica reads, nor PGlite (never a standby).
   */
  readonly primary?: 'read' | 'write'
  /**
   * The tenant and the audit context, without role, search path or timeout: for a unit that applied its
   * settings without a tenant and then enters the one it found (API key verification). Through
   * {@link settingsSql} only: it uses `$2`–`$7`, and a server may refuse parameters a statement does not use
   * (their types are unknown).
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
// The enter function (migration 0016) does the work: it SET LOCALs the tenant, its proof, the audit
// context (actor, API key, request, IP) and statement_timeout, after `SET LOCAL citus.propagate_set_commands
// = 'local'`, so that on Citus every setting reaches the worker connections (set_config() never does:
// a policy on a shard would see no tenant, silently). Then it refuses the unit (bad proof, deleted
// organization, foreign actor) before any row is read.
// statement_timeout is set per unit: PgBouncer (1.18) refuses it as a startup parameter, and a unit must
// not depend on what the last user of a pooled server connection set.
// role and search_path stay set_config() here: SET ROLE is refused inside a SECURITY DEFINER function
// (and Citus opens worker connections as the current role anyway); the path must outlive the enter
// function, whose own SET clause would undo a SET LOCAL of it, and only the coordinator resolves names.
// search_path is pinned with pg_temp last, so that no temp table (one left on a pooled connection, or a
// session-level SET search_path) can shadow the library's tables; the statement names its functions'
// schemas. Select-list items run left to right: the role is switched before the enter function runs.
const HEAD =
  "select pg_catalog.set_config('role', $1, true), pg_catalog.set_config('search_path', 'pg_catalog, public, pg_temp', true), "
const CONTEXT = '$2, $3, $4, $5, $6, $7'
const WITH_TIMEOUT = `(${CONTEXT}, $8)`
const WITHOUT_TIMEOUT = `(${CONTEXT}, null)`
const TENANT_ONLY = `select public.callsheet_enter_tenant${WITHOUT_TIMEOUT}`
const PRIMARY_CHECK = {
  none: '',
  read: 'public.callsheet_require_primary(false), ',
  write: 'public.callsheet_require_primary(true), ',
}
type PrimaryCheck = keyof typeof PRIMARY_CHECK

// Every text built once, at load: a unit only picks one.
const TEXTS = new Map<string, string>()
for (const enter of ['tenant', 'organization'] as const) {
  for (const statementTimeout of [true, false]) {
    for (const replicaGate of [true, false]) {
      for (const primary of ['none', 'read', 'write'] as const) {
        TEXTS.set(
          key(enter, statementTimeout, replicaGate, primary),
          HEAD +
            PRIMARY_CHECK[primary] +
            (replicaGate ? `${REPLICA_GATE_CALL}, ` : '') +
            `public.callsheet_enter_${enter}` +
            (statementTimeout ? WITH_TIMEOUT : WITHOUT_TIMEOUT),
        )
      }
    }
  }
}

function key(
  enter: 'tenant' | 'organization',
  statementTimeout: boolean,
  replicaGate: boolean,
  primary: PrimaryCheck,
): string {
  return `${enter}.${statementTimeout}.${replicaGate}.${primary}`
}

/**
 * The settings statement's text for `variant`: `$1` role, `$2` organization, `$3` tenant proof, `$4` actor,
 * `$5` API key, `$6` request id, `$7` IP, `$8` statement timeout (ms, text; not in the PGlite form); with
 * the replica gate `$9` the position to wait for and `$10` how long (ms). Parameters: {@link settingsParams}.
 */
export function settingsStatementText(variant: SettingsVariant = {}): string {
  if (variant.tenantOnly) return TENANT_ONLY
  return TEXTS.get(
    key(
      variant.enter ?? 'tenant',
      variant.statementTimeout ?? true,
      variant.replicaGate ?? false,
      variant.primary ?? 'none',
    ),
  ) as string
}

/**
 * The parameters of {@link settingsStatementText}, in its numbering. Without `statementTimeoutMs` (the
 * PGlite form) there is no `$8`, and so no replica gate either.
 */
export function settingsParams(
  s: UnitSettings,
  statementTimeoutMs: number | undefined,
  gate?: Pick<ReplicaGate, 'waitFor' | 'waitMs'>,
): (string | number)[] {
  const params: (string | number)[] = [s.role, s.organizationId, s.proof, s.actorId, s.apiKeyId, s.requestId, s.ip]
  if (statementTimeoutMs === undefined) {
    if (gate) throw new Error('the replica gate ($9, $10) needs the statement timeout ($8)')
    return params
  }
  params.push(String(statementTimeoutMs))
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
    params: settingsParams(settings, statementTimeoutMs, gate),
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
