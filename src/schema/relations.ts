import { relations } from 'drizzle-orm'
import { apiKeys } from './api-keys'
import { contacts } from './contacts'
import { departments } from './departments'
import { organizations } from './organizations'
import { productions } from './productions'
import { uploads } from './uploads'
import { users } from './users'

// Tenant -> tenant relations pair (organization_id, x_id) with (organization_id, id), as the foreign keys
// do: a `with:` join then matches on the distribution column too, and never crosses tenants.
export const organizationsRelations = relations(organizations, ({ many }) => ({
  users: many(users),
  departments: many(departments),
  productions: many(productions),
  apiKeys: many(apiKeys),
}))

export const usersRelations = relations(users, ({ one, many }) => ({
  organization: one(organizations, { fields: [users.organizationId], references: [organizations.id] }),
  productionsCreated: many(productions),
  uploads: many(uploads),
  apiKeysCreated: many(apiKeys),
}))

export const departmentsRelations = relations(departments, ({ one, many }) => ({
  organization: one(organizations, { fields: [departments.organizationId], references: [organizations.id] }),
  contacts: many(contacts),
}))

export const productionsRelations = relations(productions, ({ one, many }) => ({
  organization: one(organizations, { fields: [productions.organizationId], references: [organizations.id] }),
  createdByUser: one(users, {
    fields: [productions.organizationId, productions.createdBy],
    references: [users.organizationId, users.id],
  }),
  contacts: many(contacts),
  uploads: many(uploads),
}))

export const uploadsRelations = relations(uploads, ({ one, many }) => ({
  organization: one(organizations, { fields: [uploads.organizationId], references: [organizations.id] }),
  production: one(productions, {
    fields: [uploads.organizationId, uploads.productionId],
    references: [productions.organizationId, productions.id],
  }),
  uploadedByUser: one(users, {
    fields: [uploads.organizationId, uploads.uploadedBy],
    references: [users.organizationId, users.id],
  }),
  contacts: many(contacts),
}))

export const contactsRelations = relations(contacts, ({ one }) => ({
  organization: one(organizations, { fields: [contacts.organizationId], references: [organizations.id] }),
  production: one(productions, {
    fields: [contacts.organizationId, contacts.productionId],
    references: [productions.organizationId, productions.id],
  }),
  department: one(departments, {
    fields: [contacts.organizationId, contacts.departmentId],
    references: [departments.organizationId, departments.id],
  }),
  upload: one(uploads, {
    fields: [contacts.organizationId, contacts.uploadId],
    references: [uploads.organizationId, uploads.id],
  }),
}))

export const apiKeysRelations = relations(apiKeys, ({ one }) => ({
  organization: one(organizations, { fields: [apiKeys.organizationId], references: [organizations.id] }),
  createdByUser: one(users, {
    fields: [apiKeys.organizationId, apiKeys.createdBy],
    references: [users.organizationId, users.id],
  }),
}))
