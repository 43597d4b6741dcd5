import { beforeAll, expect, it } from 'vitest'
import { describeEachEngine } from './harness/engines'
import { expectSqlState, type SqlRunner } from './harness/sql-runner'
import { seedTenant, type SeededTenant } from './support/seed'

// Bad rows are refused by the database itself, whatever client wrote them.

describeEachEngine('constraints', (engine) => {
  let t: SeededTenant
  const db = (): SqlRunner => engine().admin

  beforeAll(async () => {
    t = await seedTenant(db(), 'constraints')
  })

  it.each([
    ['a confidence of 1.5', `update contacts set extraction_confidence = 1.5 where id = $1`, 'contactId'],
    ['a negative confidence', `update uploads set extraction_confidence = -0.1 where id = $1`, 'uploadId'],
    [
      'an end date before the start',
      `update productions set start_date = '2026-05-02', end_date = '2026-05-01' where id = $1`,
      'productionId',
    ],
    ['an unknown production status', `update productions set status = 'greenlit' where id = $1`, 'productionId'],
    ['an unknown upload status', `update uploads set status = 'lost' where id = $1`, 'uploadId'],
    ['an unknown user role', `update users set role = 'root' where id = $1`, 'userId'],
    ['a malformed key hash', `update api_keys set key_hash = 'not-a-hash' where id = $1`, 'apiKeyId'],
    ['an upper-case key hash', `update api_keys set key_hash = upper(key_hash) where id = $1`, 'apiKeyId'],
    ['a negative upload size', `update uploads set size_bytes = -1 where id = $1`, 'uploadId'],
    ['a malformed checksum', `update uploads set checksum_sha256 = 'abc' where id = $1`, 'uploadId'],
    ['an e-mail without @', `update contacts set email = 'nobody' where id = $1`, 'contactId'],
    ['an empty contact name', `update contacts set name = '' where id = $1`, 'contactId'],
    ['a 1 MB contact name', `update contacts set name = repeat('x', 1048576) where id = $1`, 'contactId'],
    ['a department code with spaces', `update departments set code = 'A B' where id = $1`, 'departmentId'],
  ] as const)('refuses %s (check violation)', async (_label, statement, key) => {
    await expectSqlState(db().query(statement, [t[key]]), '23514')
  })

  it('refuses an upper-case or malformed organization slug', async () => {
    await expectSqlState(db().query(`insert into organizations (name, slug) values ('X', 'Bad Slug')`), '23514')
    await expectSqlState(db().query(`insert into organizations (name, slug) values ('X', '-bad-')`), '23514')
  })

  it('refuses a duplicate live e-mail in one organization, case-insensitively (citext)', async () => {
    await expectSqlState(
      db().query(`insert into users (organization_id, email, name) values ($1, $2, 'Twin')`, [
        t.organizationId,
        'PAT@Constraints.Example',
      ]),
      '23505',
    )
  })

  it('allows the same e-mail again once the first holder is soft-deleted, and in another organization', async () => {
    const other = await seedTenant(db(), 'constraints-other')
    await db().query(
      `insert into users (organization_id, email, name) values ($1, 'pat@constraints.example', 'Pat Elsewhere')`,
      [other.organizationId],
    )
    const [second] = await db().query<{ id: string }>(
      `insert into users (organization_id, email, name) values ($1, 'lee@constraints.example', 'Lee') returning id`,
      [t.organizationId],
    )
    await db().query(`update users set deleted_at = now() where id = $1`, [second?.id])
    await db().query(
      `insert into users (organization_id, email, name) values ($1, 'Lee@constraints.example', 'Lee Again')`,
      [t.organizationId],
    )
    await expectSqlState(db().query(`update users set deleted_at = null where id = $1`, [second?.id]), '23505')
  })

  it('refuses a duplicate live department code and production code per organization', async () => {
    await expectSqlState(
      db().query(`insert into departments (organization_id, name, code) values ($1, 'Camera 2', 'CAM')`, [
        t.organizationId,
      ]),
      '23505',
    )
    await expectSqlState(
      db().query(`insert into productions (organization_id, title, code) values ($1, 'Sequel', 'P1')`, [
        t.organizationId,
      ]),
      '23505',
    )
  })

  // UNIQUE (organization_id, key_hash) since 0015 (Citus refuses a UNIQUE without organization_id). An
  // issued key's hash covers the organization its plaintext names, so two organizations never share one.
  it('refuses a duplicate API key hash within an organization, not across organizations', async () => {
    const [key] = await db().query<{ key_hash: string }>('select key_hash from api_keys where id = $1', [t.apiKeyId])
    await expectSqlState(
      db().query(`insert into api_keys (organization_id, name, prefix, key_hash) values ($1, 'Copy', 'csk_copy', $2)`, [
        t.organizationId,
        key?.key_hash,
      ]),
      '23505',
    )
    const other = await seedTenant(db(), 'constraints-keys')
    const [copy] = await db().query<{ organization_id: string }>(
      `insert into api_keys (organization_id, name, prefix, key_hash) values ($1, 'Copy', 'csk_copy', $2) returning organization_id`,
      [other.organizationId, key?.key_hash],
    )
    expect(copy?.organization_id).toBe(other.organizationId)
  })

  it('refuses a tenant row without an organization (not null)', async () => {
    await expectSqlState(db().query(`insert into departments (name, code) values ('Grip', 'GRIP')`), '23502')
  })

  it('refuses an unknown audit action', async () => {
    await expectSqlState(
      db().query(
        `insert into audit_logs (organization_id, action, entity_type, entity_id) values ($1, 'rename', 'contacts', $2)`,
        [t.organizationId, t.contactId],
      ),
      '23514',
    )
  })

  it('keeps updated_at current on every update, and leaves created_at alone', async () => {
    const [before] = await db().query<{ created_at: Date; updated_at: Date }>(
      `update contacts set created_at = now() - interval '1 day', updated_at = now() - interval '1 day' where id = $1 returning created_at, updated_at`,
      [t.contactId],
    )
    const [after] = await db().query<{ created_at: Date; updated_at: Date }>(
      `update contacts set notes = 'call time 06:00' where id = $1 returning created_at, updated_at`,
      [t.contactId],
    )
    expect(new Date(after!.created_at).getTime()).toBe(new Date(before!.created_at).getTime())
    expect(new Date(after!.updated_at).getTime()).toBeGreaterThan(new Date(before!.updated_at).getTime())
  })

  it('generates UUID keys for raw SQL inserts that do not give one', async () => {
    const [row] = await db().query<{ id: string }>(
      `insert into departments (organization_id, name, code) values ($1, 'Sound', 'SND') returning id`,
      [t.organizationId],
    )
    expect(row?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
  })
})
