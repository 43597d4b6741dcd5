/** What migrate() reports: progress events while it runs, and what it did when it returns. */

/**
 * A step of migrate(), in order: `locked` (the migration lock is held; at once on PGlite), `adopting`
 * (copying an older version's records), `applying` (the pending migrations, in `migrations`),
 * `applied`, `partitions` (audit partitions, runtime login, key), `app-applying` and `app-applied`
 * (with `appMigrationsFolder`), `done`.
 */
export type MigratePhase =
  'locked' | 'adopting' | 'applying' | 'applied' | 'partitions' | 'app-applying' | 'app-applied' | 'done'

/** One event passed to `MigrateOptions.onProgress`. */
export interface MigrateProgress {
  readonly phase: MigratePhase
  /** Milliseconds since migrate() was called. */
  readonly elapsedMs: number
  /** `applying`, `applied`, `app-applying`, `app-applied`: the tags of the migrations concerned. */
  readonly migrations?: readonly string[]
}

/** What {@link migrate} did. */
export interface MigrateReport {
  /** The tags of this package's migrations this run applied, in order (empty when it was up to date). */
  readonly applied: readonly string[]
  /** The same for the app's migrations (`appMigrationsFolder`); empty without one. */
  readonly appApplied: readonly string[]
  /** How long the run took, in milliseconds. */
  readonly durationMs: number
  /**
   * What works but not as it should, with what to do about it; empty when nothing. Today one case: the
   * migrating role is not a superuser, so pg_trgm's `similarity_op` could not be declared LEAKPROOF, and
   * tenant fuzzy search cannot use its trigram index under row-level security (it reads every row of the
   * tenant: measured ≈ 35× slower at 200,000 contacts).
   */
  readonly warnings: readonly string[]
}

/** Tracks the current phase and reports it; a throwing callback is ignored (it must not break a run). */
export class Progress {
  phase: MigratePhase = 'locked'
  /** The migrations of the last event that named some (for a lock-timeout message). */
  migrations: readonly string[] = []
  readonly started = performance.now()
  constructor(private readonly onProgress: ((event: MigrateProgress) => void) | undefined) {}

  elapsed(): number {
    return Math.round(performance.now() - this.started)
  }

  report(phase: MigratePhase, migrations?: readonly string[]): void {
    this.phase = phase
    if (migrations !== undefined) this.migrations = migrations
    if (this.onProgress === undefined) return
    try {
      this.onProgress({ phase, elapsedMs: this.elapsed(), ...(migrations === undefined ? {} : { migrations }) })
    } catch {
      // A progress callback only observes.
    }
  }
}
