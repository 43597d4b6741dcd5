import { text, uuid } from 'drizzle-orm/pg-core'
import { expectTypeOf, it } from 'vitest'
import { contacts, tenantReference, tenantTable } from '../src/schema'

// The extra-config callback's `t` is typed in every tenantTable call of a program, not only the first
// (a constraint on the columns' type once made it `never` from the second call on).
it('types the columns of every table, and refuses the ones every tenant table has', () => {
  const first = tenantTable('first_things', { contactId: uuid('contact_id').notNull() }, (t) => [
    ...tenantReference(t.contactId, contacts),
  ])
  const second = tenantTable(
    'second_things',
    { contactId: uuid('contact_id').notNull(), note: text('note') },
    (t) => [...tenantReference(t.contactId, contacts, { onDelete: 'cascade' })],
    { softDelete: false },
  )
  const third = tenantTable('third_things', { firstId: uuid('first_id').notNull() }, (t) => [
    ...tenantReference(t.firstId, first),
  ])
  expectTypeOf<(typeof second.$inferSelect)['note']>().toEqualTypeOf<string | null>()
  expectTypeOf(third.$inferSelect.firstId).toEqualTypeOf<string>()
  expectTypeOf(first).toHaveProperty('deletedAt')
  expectTypeOf(second).not.toHaveProperty('deletedAt')
  // @ts-expect-error -- id is one every tenant table has
  tenantTable('reserved_things', { id: uuid('id') })
  // @ts-expect-error -- so is organizationId
  tenantTable('reserved_things', { organizationId: uuid('org') }, undefined, { softDelete: false })
})
