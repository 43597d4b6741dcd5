import { and, eq, inArray, sql } from 'drizzle-orm'
import { z } from 'zod'
import { parseId } from '../support/ids'
import { InvalidStateError, NotFoundError, isCallsheetDbError } from '../errors'
import { extractionResultSchema, type IngestReport } from '../schema/extraction'
import type { Upload } from '../schema/types'
import { UPLOAD_STATUSES, uploads, type ExtractionResult, type UploadStatus } from '../schema/uploads'
import { uploadInsertSchema, uploadUpdateSchema } from '../schema/zod'
import type { TenantRuntime } from '../unit-of-work/tenant-runtime'
import { idFilter, oneOrMany, optionalIdFilter, type OneOrMany } from './filters'
import { SoftDeleteRepository } from './soft-delete-repository'
import { validate, storableText } from '../support/validate'

export type CreateUploadInput = z.input<typeof uploadInsertSchema>
export type UpdateUploadInput = z.input<typeof uploadUpdateSchema>
export interface UploadFilter {
  readonly productionId?: OneOrMany<string>
  readonly status?: OneOrMany<UploadStatus>
  readonly uploadedBy?: OneOrMany<string> | null
}
export type UploadSort = 'createdAt' | 'updatedAt' | 'fileName'

const filterSchema = z
  .object({ productionId: idFilter, status: oneOrMany(z.enum(UPLOAD_STATUSES)), uploadedBy: optionalIdFilter })
  .strict()

// Status moves only through the extraction pipeline: create/update may not set it directly.
const createSchema = uploadInsertSchema.omit({
  status: true,
  extractionResult: true,
  extractionConfidence: true,
  error: true,
  processedAt: true,
})
const updateSchema = uploadUpdateSchema
  .omit({ status: true, extractionResult: true, extractionConfidence: true, error: true, processedAt: true })
  .strict()

const completionSchema = z.object({ result: extractionResultSchema }).strict()
const failureSchema = z.object({ error: z.string().trim().min(1).max(10_000) }).strict()

/** Uploaded call sheets and their extraction status: pending → processing → completed | failed. */
export class UploadsRepository extends SoftDeleteRepository<
  Upload,
  Omit<CreateUploadInput, 'status' | 'extractionResult' | 'extractionConfidence' | 'error' | 'processedAt'>,
  Omit<UpdateUploadInput, 'status' | 'extractionResult' | 'extractionConfidence' | 'error' | 'processedAt'>,
  UploadFilter,
  UploadSort
> {
  /**
   * @param ingest the body of {@link ingestExtraction} inside its transaction; the client passes the
   * ingest use case (src/ingest/), which sits above the repositories it uses.
   */
  constructor(
    runtime: TenantRuntime,
    private readonly ingest: (
      runtime: TenantRuntime,
      uploadId: string,
      result: z.output<typeof extractionResultSchema>,
    ) => Promise<IngestReport>,
  ) {
    super(runtime, {
      entity: 'uploads',
      table: uploads,
      createSchema,
      updateSchema,
      filterSchema,
      filterColumns: { productionId: uploads.productionId, status: uploads.status, uploadedBy: uploads.uploadedBy },
      sortColumns: { createdAt: uploads.createdAt, updatedAt: uploads.updatedAt, fileName: uploads.fileName },
      defaultSort: 'createdAt',
    })
  }

  /**
   * pending → processing.
   * @throws InvalidStateError when the upload is not pending.
   * @throws NotFoundError when no live upload has this id for this tenant.
   */
  async markProcessing(id: string): Promise<Upload> {
    return this.transition(id, ['pending'], 'mark processing', { status: 'processing' })
  }

  /**
   * processing → completed, storing the extractor's result and its overall confidence.
   * @throws ValidationError when the result is malformed (nothing is written).
   * @throws InvalidStateError when the upload is not processing.
   */
  async completeExtraction(id: string, result: ExtractionResult): Promise<Upload> {
    const { result: parsed } = validate(completionSchema, { result }, 'extraction result')
    return this.transition(id, ['processing'], 'complete extraction', {
      status: 'completed',
      extractionResult: parsed,
      extractionConfidence: Math.round(parsed.confidence * 100) / 100,
      error: null,
      processedAt: sql`now()`,
    })
  }

  /**
   * pending | processing → failed, recording why.
   * @throws InvalidStateError when the upload already completed or failed.
   */
  async failExtraction(id: string, error: string): Promise<Upload> {
    const parsed = validate(failureSchema, { error }, 'extraction failure')
    return this.transition(id, ['pending', 'processing'], 'fail extraction', {
      status: 'failed',
      error: parsed.error,
      processedAt: sql`now()`,
    })
  }

  /**
   * Ingests the extractor's output for an upload, in one transaction: stores the raw result, creates
   * or reuses departments by code, batch-inserts the contacts linked to the upload, production and
   * department, merges duplicates by e-mail (or, without one, by name) within the production, and marks
   * the upload completed with the result's confidence. Ingesting the same result again creates nothing.
   *
   * A malformed result marks the upload failed with the validation error, inserts nothing, and throws.
   *
   * @example
   * ```ts
   * const report = await tenant.uploads.ingestExtraction(upload.id, extractorOutput)
   * ```
   * @throws ValidationError when the result is malformed (the upload is then marked failed).
   * @throws NotFoundError when no live upload has this id for this tenant.
   */
  async ingestExtraction(id: string, result: unknown): Promise<IngestReport> {
    const key = parseId(id)
    let parsed: z.output<typeof extractionResultSchema>
    try {
      parsed = validate(extractionResultSchema, result, 'extraction result')
    } catch (error) {
      if (!isCallsheetDbError(error, 'VALIDATION_FAILED')) throw error
      // The message quotes the input: keep only what text can store (no NUL, no lone surrogate).
      const reason = storableText(error.message.slice(0, 10_000))
      await this.markFailed(key, id, reason)
      throw error
    }
    return this.runtime.transaction((bound) => this.ingest(bound, key, parsed))
  }

  private async markFailed(key: string, id: string, reason: string): Promise<void> {
    await this.runtime.write({
      entity: 'uploads',
      operation: 'update',
      ids: [key],
      values: [],
      statement: async (db) =>
        (await db
          .update(uploads)
          .set({ status: 'failed', error: reason, processedAt: sql`now()` })
          .where(and(this.tenantScope(), eq(uploads.id, key), this.liveCondition()))
          .returning()) as Record<string, unknown>[],
      noRows: () => new NotFoundError('uploads', id),
    })
  }

  private async transition(
    id: string,
    from: readonly UploadStatus[],
    what: string,
    set: Record<string, unknown>,
  ): Promise<Upload> {
    const key = parseId(id)
    return this.runtime.writeUnit(async (bound) => {
      const [row] = await bound.write({
        entity: 'uploads',
        operation: 'update',
        ids: [key],
        values: [set],
        statement: async (db, [values]) =>
          (await db
            .update(uploads)
            .set(values as never)
            .where(
              and(this.tenantScope(), eq(uploads.id, key), this.liveCondition(), inArray(uploads.status, [...from])),
            )
            .returning()) as Record<string, unknown>[],
      })
      if (row) return row as Upload
      const [current] = await bound.read((db) =>
        db
          .select({ status: uploads.status })
          .from(uploads)
          .where(and(this.tenantScope(), eq(uploads.id, key), this.liveCondition())),
      )
      if (!current) throw new NotFoundError('uploads', id)
      throw new InvalidStateError(`cannot ${what}: upload ${id} is ${current.status}, expected ${from.join(' or ')}`)
    })
  }
}
