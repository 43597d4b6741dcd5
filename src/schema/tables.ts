// The tables drizzle-kit manages (see drizzle.config.ts). audit_logs is created by a custom migration.
export { apiKeys } from './api-keys'
export { contacts } from './contacts'
export { departments } from './departments'
export { organizations } from './organizations'
export { productions } from './productions'
export { uploads } from './uploads'
export { users } from './users'
