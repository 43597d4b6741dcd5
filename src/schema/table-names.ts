import { getTableName } from 'drizzle-orm'
import { apiKeys } from './api-keys'
import { auditLogs } from './audit-logs'
import { contacts } from './contacts'
import { departments } from './departments'
import { organizations } from './organizations'
import { productions } from './productions'
import { uploads } from './uploads'
import { users } from './users'

/** SQL names of the tables that carry tenant rows: RLS is enabled and forced on each, with the tenant policy. */
export const TENANT_TABLE_NAMES: readonly string[] = [
  users,
  departments,
  productions,
  contacts,
  uploads,
  apiKeys,
  auditLogs,
].map((table) => getTableName(table))

/** SQL names of every table of the library: `organizations`, then the tenant tables. */
export const LIBRARY_TABLE_NAMES: readonly string[] = [getTableName(organizations), ...TENANT_TABLE_NAMES]
