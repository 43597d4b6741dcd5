import { setFlagsFromString } from 'node:v8'

/**
 * V8's tiering budget for WebAssembly while test databases run (its default: 1,800,000). PGlite is one
 * large module; with the default, the functions a test heats up are recompiled by TurboFan on V8's
 * background threads, and the main thread waits for that work at its next new instance (measured on
 * 2 cores, Node 20: a test database opened while another is in use took 1.0–1.2 s instead of ≈ 0.3 s,
 * the first statements after start ≈ 0.35–0.6 s instead of ≈ 0.15 s). A test database's work is short:
 * Liftoff's code serves it, and no measured workload ran slower without the tier-up (BENCHMARKS.md,
 * "test-database").
 */
const TEST_WASM_TIERING_BUDGET = 100_000_000

const OFF = /^(0|off|false|no|default)$/i
// A tiering choice of the user's own (command line or NODE_OPTIONS) is never overridden.
const OWN_CHOICE = /^--(no-)?wasm[-_](tiering[-_]budget|dynamic[-_]tiering|tier[-_]up)\b/

/**
 * Whether {@link tuneWasmTiering} changes V8's setting in a process with this environment and these
 * Node options: not when `CALLSHEET_DB_TEST_WASM_TIERING` is `off` (or `0`, `false`, `no`, `default`),
 * nor when the process was started with a tiering option of its own.
 */
export function wasmTieringTunable(env: NodeJS.ProcessEnv, execArgv: readonly string[]): boolean {
  if (OFF.test(env.CALLSHEET_DB_TEST_WASM_TIERING ?? '')) return false
  const options = [...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)]
  return !options.some((option) => OWN_CHOICE.test(option))
}

let tuned: boolean | undefined

/**
 * Raises V8's WebAssembly tiering budget to {@link TEST_WASM_TIERING_BUDGET} for this process, once,
 * before its first PGlite is compiled (see {@link wasmTieringTunable} for when it does not). Only
 * `@callsheet/db/testing` calls it, when a test database or its template is first made. Returns whether
 * the budget is raised.
 */
export function tuneWasmTiering(): boolean {
  if (tuned === undefined) {
    tuned = wasmTieringTunable(process.env, process.execArgv)
    if (tuned) {
      try {
        setFlagsFromString(`--wasm-tiering-budget=${TEST_WASM_TIERING_BUDGET}`)
      } catch {
        // A runtime without V8's flags (not Node): nothing to tune.
        tuned = false
      }
    }
  }
  return tuned
}
