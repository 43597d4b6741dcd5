import type { apiKeys } from './api-keys'
import type { auditLogs } from './audit-logs'
import type { contacts } from './contacts'
import type { departments } from './departments'
import type { organizations } from './organizations'
import type { productions } from './productions'
import type { uploads } from './uploads'
import type { users } from './users'

export type Organization = typeof organizations.$inferSelect
export type NewOrganization = typeof organizations.$inferInsert
export type User = typeof users.$inferSelect
export type NewUser = typeof users.$inferInsert
export type Department = typeof departments.$inferSelect
export type NewDepartment = typeof departments.$inferInsert
export type Production = typeof productions.$inferSelect
export type NewProduction = typeof productions.$inferInsert
export type Contact = typeof contacts.$inferSelect
export type NewContact = typeof contacts.$inferInsert
export type Upload = typeof uploads.$inferSelect
export type NewUpload = typeof uploads.$inferInsert
export type ApiKey = typeof apiKeys.$inferSelect
export type NewApiKey = typeof apiKeys.$inferInsert
export type AuditLog = typeof auditLogs.$inferSelect
