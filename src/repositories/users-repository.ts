import { z } from 'zod'
import type { User } from '../schema/types'
import { users } from '../schema/users'
import { USER_ROLES, type UserRole } from '../schema/users'
import { userInsertSchema, userUpdateSchema } from '../schema/zod'
import type { TenantRuntime } from '../unit-of-work/tenant-runtime'
import { oneOrMany, textFilter, type OneOrMany } from './filters'
import { SoftDeleteRepository } from './soft-delete-repository'
import { naturalKey } from './create-many/natural-key'

/** A new user of the current organization. */
export type CreateUserInput = z.input<typeof userInsertSchema>
/** Changes to a user. */
export type UpdateUserInput = z.input<typeof userUpdateSchema>
/** Filters of `users.findMany` / `users.count`. */
export interface UserFilter {
  readonly role?: OneOrMany<UserRole>
  readonly isActive?: boolean
  readonly email?: OneOrMany<string>
}
/** Columns `users.findMany` can order by. */
export type UserSort = 'createdAt' | 'updatedAt' | 'name' | 'email'

const filterSchema = z
  .object({ role: oneOrMany(z.enum(USER_ROLES)), isActive: z.boolean().optional(), email: textFilter(320) })
  .strict()

// Read from the schema once, not per repository (a tenant client, and so its repositories, is made per request).
const USERS_NATURAL_KEY = naturalKey(users, 'users_email_live_key', (row) => String(row.email).toLowerCase())

/** Users of the tenant. */
export class UsersRepository extends SoftDeleteRepository<
  User,
  CreateUserInput,
  UpdateUserInput,
  UserFilter,
  UserSort
> {
  constructor(runtime: TenantRuntime) {
    super(runtime, {
      entity: 'users',
      table: users,
      createSchema: userInsertSchema,
      updateSchema: userUpdateSchema,
      filterSchema,
      filterColumns: { role: users.role, isActive: users.isActive, email: users.email },
      sortColumns: { createdAt: users.createdAt, updatedAt: users.updatedAt, name: users.name, email: users.email },
      defaultSort: 'createdAt',
      naturalKey: USERS_NATURAL_KEY,
    })
  }
}
