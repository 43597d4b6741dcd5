/**
 * The rules a catalog must keep for Citus to distribute it by `organization_id`, with `organizations`
 * (and `callsheet_private.tenant_keys`) as reference tables. Each mirrors something Citus refuses or gets
 * wrong; `source` says where that was seen: `findings` is docs/citus-findings.md (a real Citus 13.2
 * cluster, which wins), `CITUS.md #n` a row of the readiness review (`../shared/CITUS.md`, read from
 * Citus's source), `shape probe` a statement run for issue 16 on a Citus 13.2 cluster (`tools/citus-cluster.ts`)
 * to check this rule, with the error it gave.
 */
export const DISTRIBUTION_RULES = {
  R0: {
    rule: 'every table is classified: a reference table, or distributed by organization_id',
    citus:
      'a table neither distributed nor reference stays a local table on the coordinator: shards cannot join it, and FKs between it and Citus tables are refused',
    source:
      'CITUS.md §4; findings: callsheet_private.tenant_keys "does not exist" on the workers until it is a reference table',
  },
  R1: {
    rule: 'organization_id is uuid NOT NULL',
    citus:
      'a nullable column is accepted, then every row without one fails: 22004 "cannot perform an INSERT with NULL in the partition column"; colocated tables need the same column type',
    source: 'shape probe on Citus 13.2 (2026-12-03, issue 16); CITUS.md §4',
  },
  R2: {
    rule: 'every PRIMARY KEY, UNIQUE and EXCLUDE index of a distributed table has organization_id among its key columns (with = when EXCLUDE)',
    citus:
      '0A000 cannot create constraint: "Distributed relations cannot have UNIQUE, EXCLUDE, or PRIMARY KEY constraints that do not include the partition column (with an equality operator if EXCLUDE)". Citus accepts organization_id in INCLUDE only, but the key is then unique per shard, not per table: refused here too',
    source:
      'findings: users_pkey, audit_logs_pkey refused; shape probe on Citus 13.2: gist exclusion and lower(email) unique refused, INCLUDE accepted; CITUS.md #1, #3, #4',
  },
  R3: {
    rule: 'a foreign key goes distributed → distributed pairing organization_id at the same position, or to a reference table; never reference → distributed, never to an unclassified table',
    citus:
      '0A000 "foreign keys from reference tables and local tables to distributed tables are not supported"; 42P16 "referenced table … must be a distributed table or a reference table"; 0A000 "Foreign keys are supported in two cases, either in between two colocated tables including partition column in the same ordinal in the both tables or from distributed to reference tables"',
    source: 'findings: composite FKs and organizations; shape probe on Citus 13.2 (misaligned FK); CITUS.md #6, #7',
  },
  R4: {
    rule: 'a foreign key that includes organization_id has no ON DELETE SET NULL/SET DEFAULT and no ON UPDATE SET NULL/SET DEFAULT/CASCADE',
    citus:
      '0A000 cannot create foreign key constraint: "SET NULL or SET DEFAULT is not supported in ON DELETE operation when distribution key is included in the foreign key constraint" (likewise SET NULL, SET DEFAULT or CASCADE ON UPDATE)',
    source: 'shape probe on Citus 13.2 (2026-12-03); CITUS.md #7 (EnsureSupportedFKeyOnDistKey)',
  },
  R5: {
    rule: 'no policy has a subquery in USING or WITH CHECK',
    citus: '0A000 cannot create policy: "Subqueries are not supported in policies on distributed tables"',
    source: 'findings: create_reference_table(organizations) refused; CITUS.md #8',
  },
  R6: {
    rule: 'no trigger function reads TG_TABLE_NAME, TG_RELNAME or TG_RELID',
    citus:
      'triggers fire on the shards, where the table is the shard (organizations_102…): the function takes the wrong branch or records shard names',
    source:
      'findings: "record "new" has no field "organization_id"" on the organizations shard, audit rows with entity_type users_102010; CITUS.md #13, #14a',
  },
  R7: {
    rule: 'a trigger function reads its transition tables only in plain SELECT … INTO statements (checked on its source: see transitionTableMisuse)',
    citus:
      'XX000 "executor could not find named tuplestore new_rows": an INSERT … SELECT (or other distributed statement) over a transition table fails on the shards',
    source:
      'findings: every insert, update and delete of users failed; shape probe on Citus 13.2: SELECT … INTO from new_rows then INSERT … SELECT FROM unnest(…) into a colocated table works, also for a multi-shard insert; CITUS.md #14c, §2 item 10',
  },
} as const

/** The code of a distribution rule (`R0`–`R7`). */
export type DistributionRule = keyof typeof DISTRIBUTION_RULES

/** One way the catalog is not distributable: which rule, on which table, which object, and what is wrong. */
export interface DistributionViolation {
  readonly rule: DistributionRule
  /** The table the object belongs to: `users`, or schema-qualified outside public (`callsheet_private.tenant_keys`). */
  readonly table: string
  /** The index, constraint, policy or trigger at fault; the table itself for R0/R1. */
  readonly object: string
  /** What is wrong, in words. */
  readonly detail: string
}

/** A violation as one line: `R2 users.users_pkey: … (Citus: …)`. */
export function describeViolation(violation: DistributionViolation): string {
  const where = violation.object === violation.table ? violation.table : `${violation.table}.${violation.object}`
  return `${violation.rule} ${where}: ${violation.detail} (Citus: ${DISTRIBUTION_RULES[violation.rule].citus})`
}
