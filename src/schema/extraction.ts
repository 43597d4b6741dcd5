import { z } from 'zod'
import type { Upload } from './types'

const confidence = z.number().min(0).max(1)
const text = (max: number) => z.string().trim().max(max)

/** One contact as the extractor reports it. */
export const extractedContactSchema = z
  .object({
    name: text(200).pipe(z.string().min(1, 'name must not be blank')),
    email: text(320)
      .regex(/^[^@\s]+@[^@\s]+$/, 'must be an e-mail address')
      .nullish(),
    phone: text(50).nullish(),
    role: text(200).nullish(),
    department: text(200).nullish(),
    confidence: z
      .object({
        name: confidence,
        email: confidence,
        phone: confidence,
        role: confidence,
        department: confidence,
      })
      .partial()
      .strict()
      .optional(),
  })
  .strict()

/** The extractor's whole output for one upload. */
export const extractionResultSchema = z
  .object({
    contacts: z.array(extractedContactSchema).max(10_000),
    confidence,
    extractor: z
      .object({ name: z.string().min(1).max(100), version: z.string().max(50).optional() })
      .strict()
      .optional(),
    warnings: z.array(z.string().max(1000)).max(100).optional(),
  })
  .strict()

/** What `uploads.ingestExtraction` did. */
export interface IngestReport {
  /** The upload, now `completed`, with the raw result and its confidence stored. */
  readonly upload: Upload
  /** Contacts created from this result. */
  readonly contactsCreated: number
  /** Existing live contacts of the production (same e-mail, or same name without e-mail) that were completed with new fields. */
  readonly contactsUpdated: number
  /** Existing contacts matched and left as they were. */
  readonly contactsUnchanged: number
  /** Rows of the result merged into another row of the same result (same e-mail or, without one, same name). */
  readonly duplicatesMerged: number
  /** Departments created because no live department had the code. */
  readonly departmentsCreated: number
}
