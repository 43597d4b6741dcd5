import { expectTypeOf, test } from 'vitest'
import type {
  CreatedApiKey,
  Database,
  DatabaseHook,
  EntityName,
  LibraryEntityName,
  Page,
  TenantClient,
  WriteOperation,
} from '../src'
import { createTenantClient } from '../src'
import type { AuditAction, AuditLog, Contact, Organization } from '../src/schema'
import type { AUDITED_ENTITY_TYPES } from '../src/schema'

declare const db: Database
declare const tenant: TenantClient

test('a tenant client cannot be made without an organization id', () => {
  // @ts-expect-error the organization id is required
  createTenantClient()
  // @ts-expect-error the organization id is required
  db.tenant()
  expectTypeOf(createTenantClient).parameter(0).toEqualTypeOf<string>()
})

test('write inputs are typed from the schema', () => {
  // @ts-expect-error name is required
  void tenant.contacts.create({ productionId: 'x' })
  // @ts-expect-error no such column
  void tenant.contacts.create({ productionId: 'x', name: 'Jon', nickname: 'J' })
  // @ts-expect-error confidence is a number
  void tenant.contacts.create({ productionId: 'x', name: 'Jon', extractionConfidence: 'high' })
  // @ts-expect-error the tenant comes from the client, never from input
  void tenant.departments.create({ name: 'Camera', code: 'CAM', organizationId: 'other' })
  // @ts-expect-error status is not free text
  void tenant.productions.update('id', { status: 'greenlit' })
  expectTypeOf(tenant.contacts.create).returns.resolves.toEqualTypeOf<Contact>()
})

test('findMany orders only by allow-listed columns and filters only filterable ones', () => {
  void tenant.contacts.findMany({ orderBy: 'name', where: { productionId: 'x' } })
  // @ts-expect-error not a sortable column
  void tenant.contacts.findMany({ orderBy: 'email' })
  // @ts-expect-error not a filterable column
  void tenant.contacts.findMany({ where: { notes: 'x' } })
  // @ts-expect-error deleted takes exclude | include | only
  void tenant.contacts.findMany({ deleted: 'all' })
})

test('API key creation returns the plaintext; reads do not', () => {
  expectTypeOf(tenant.apiKeys.create).returns.resolves.toEqualTypeOf<CreatedApiKey>()
  expectTypeOf<CreatedApiKey['plaintext']>().toEqualTypeOf<string>()
  type Found = Awaited<ReturnType<typeof tenant.apiKeys.findById>>
  expectTypeOf<NonNullable<Found>>().not.toHaveProperty('plaintext')
})

test('search hits carry a score', () => {
  type Hit = Awaited<ReturnType<typeof tenant.contacts.search>>[number]
  expectTypeOf<Hit['score']>().toEqualTypeOf<number>()
})

test('a repository without soft delete has no softDelete or restore to call', () => {
  // @ts-expect-error API keys are revoked, never soft-deleted
  void tenant.apiKeys.softDelete('id')
  // @ts-expect-error nothing to restore either
  void tenant.apiKeys.restore('id')
  expectTypeOf(tenant.apiKeys).not.toHaveProperty('softDelete')
  expectTypeOf(tenant.contacts.softDelete).returns.resolves.toEqualTypeOf<Contact>()
  expectTypeOf(tenant.contacts.restore).returns.resolves.toEqualTypeOf<Contact>()
})

test('reads of API keys take no deleted filter: keys are revoked, never soft-deleted', () => {
  // @ts-expect-error only 'exclude' (the default) exists for them
  void tenant.apiKeys.findMany({ deleted: 'include' })
  // @ts-expect-error nor 'only'
  void tenant.apiKeys.findById('id', { deleted: 'only' })
  void tenant.apiKeys.findMany({ deleted: 'exclude' })
  void tenant.contacts.findMany({ deleted: 'include' })
})

test('API keys have no createMany: each key is issued one create at a time', () => {
  // @ts-expect-error each plaintext must reach its owner
  void tenant.apiKeys.createMany([])
  expectTypeOf(tenant.apiKeys).not.toHaveProperty('createMany')
  expectTypeOf(tenant.contacts).toHaveProperty('createMany')
})

test('hooks name entities and operations with the audit trail’s words', () => {
  expectTypeOf<LibraryEntityName>().toEqualTypeOf<(typeof AUDITED_ENTITY_TYPES)[number]>()
  // App tables (tenant.table(t)) are entities too, named by their table.
  expectTypeOf<'call_times'>().toExtend<EntityName>()
  expectTypeOf<WriteOperation>().toEqualTypeOf<AuditAction>()
  const hook: DatabaseHook = {
    name: 'typed',
    beforeWrite: (ctx) => {
      expectTypeOf(ctx.entity).toEqualTypeOf<EntityName>()
      // @ts-expect-error 'create' is 'insert', as in audit_logs.action
      if (ctx.operation === 'create') return
    },
  }
  void hook
})

test('findMany wherever a page comes back', () => {
  expectTypeOf(db.organizations.findMany).returns.resolves.toEqualTypeOf<Page<Organization>>()
  expectTypeOf(tenant.auditLogs.findMany).returns.resolves.toEqualTypeOf<Page<AuditLog>>()
  // @ts-expect-error renamed to findMany
  void db.organizations.list()
  // @ts-expect-error renamed to findMany
  void tenant.auditLogs.list({ from: new Date() })
})
