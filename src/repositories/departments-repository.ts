import { z } from 'zod'
import { departments } from '../schema/departments'
import type { Department } from '../schema/types'
import { departmentInsertSchema, departmentUpdateSchema } from '../schema/zod'
import type { TenantRuntime } from '../unit-of-work/tenant-runtime'
import { textFilter, type OneOrMany } from './filters'
import { SoftDeleteRepository } from './soft-delete-repository'
import { naturalKey } from './create-many/natural-key'

export type CreateDepartmentInput = z.input<typeof departmentInsertSchema>
export type UpdateDepartmentInput = z.input<typeof departmentUpdateSchema>
export interface DepartmentFilter {
  readonly code?: OneOrMany<string>
  readonly name?: OneOrMany<string>
}
export type DepartmentSort = 'sortOrder' | 'name' | 'code' | 'createdAt'

const filterSchema = z.object({ code: textFilter(50), name: textFilter(200) }).strict()

// Read from the schema once, not per repository (a tenant client, and so its repositories, is made per request).
const DEPARTMENTS_NATURAL_KEY = naturalKey(departments, 'departments_code_live_key', (row) => String(row.code))

/** Departments of the tenant (Camera, Grip, …). */
export class DepartmentsRepository extends SoftDeleteRepository<
  Department,
  CreateDepartmentInput,
  UpdateDepartmentInput,
  DepartmentFilter,
  DepartmentSort
> {
  constructor(runtime: TenantRuntime) {
    super(runtime, {
      entity: 'departments',
      table: departments,
      createSchema: departmentInsertSchema,
      updateSchema: departmentUpdateSchema,
      filterSchema,
      filterColumns: { code: departments.code, name: departments.name },
      sortColumns: {
        sortOrder: departments.sortOrder,
        name: departments.name,
        code: departments.code,
        createdAt: departments.createdAt,
      },
      defaultSort: 'sortOrder',
      naturalKey: DEPARTMENTS_NATURAL_KEY,
    })
  }
}
