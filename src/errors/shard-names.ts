/**
 * Citus re-raises a worker's error on the coordinator without the constraint and table fields, and names
 * the shard (`contacts_102033`, `contacts_production_fk_102033`) where PostgreSQL names the table. The
 * library's typed errors say which constraint of which table, as on one server: this reads them from the
 * message and drops the shard suffix. Only for errors Citus relayed (its `where` says
 * "while executing command on <node>"), so a name that ends in digits on one server is never touched.
 */

/** The fields a relayed error lacks, recovered from its message; the message with table names, not shard names. */
export interface ShardlessNames {
  readonly message: string
  readonly constraint?: string
  readonly table?: string
}

const RELAYED = /while executing command on /
// PostgreSQL's messages for the four constraint violations (errmsg in ri_triggers.c, nbtinsert.c, execMain.c).
const CONSTRAINT_IN_MESSAGE = /(?:constraint|violates (?:unique|check|foreign key) constraint) "([^"]+)"/
const TABLE_IN_MESSAGE = /(?:on table|for relation|of relation) "([^"]+)"/
const SHARD_SUFFIX = /_\d{4,}$/

/** Whether `where` (the driver error's `where` field) says Citus relayed the error from a worker. */
export function relayedByCitus(where: unknown): boolean {
  return typeof where === 'string' && RELAYED.test(where)
}

/** The constraint and table of a Citus-relayed error, by their table names; see the file comment. */
export function shardlessNames(message: string): ShardlessNames {
  const constraint = CONSTRAINT_IN_MESSAGE.exec(message)?.[1]
  const table = TABLE_IN_MESSAGE.exec(message)?.[1]
  return {
    message: message.replace(/"([^"]+)"/g, (_quoted, name: string) => `"${name.replace(SHARD_SUFFIX, '')}"`),
    ...(constraint === undefined ? {} : { constraint: constraint.replace(SHARD_SUFFIX, '') }),
    ...(table === undefined ? {} : { table: table.replace(SHARD_SUFFIX, '') }),
  }
}
