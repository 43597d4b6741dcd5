import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const CHILD = fileURLToPath(new URL('./fixtures/stall-watchdog-child.ts', import.meta.url))
const LIMIT_S = 4

interface Outcome {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the child with a short stall limit and collects how it ended. */
function runChild(mode: string, seconds: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, mode, String(seconds)], {
      env: { ...process.env, CALLSHEET_STALL_LIMIT_S: String(LIMIT_S) },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
}

// The watchdog judges progress, not speed: these outcomes are decided by what the child does, not by how
// fast the machine runs it (a busy machine only makes each query slower, and still completes it).
describe('stall watchdog (test harness)', () => {
  it('lets a process live that keeps completing PGlite queries without ever reaching the timer phase', async () => {
    const outcome = await runChild('pglite', LIMIT_S * 3)
    expect(outcome.stderr).not.toContain('[stall-watchdog]')
    expect(outcome.signal).toBeNull()
    expect(outcome.code, outcome.stderr).toBe(0)
    expect(outcome.stdout).toMatch(/alive after \d+ queries/)
  }, 180_000)

  it('kills a process that spins without completing anything, and says it spins', async () => {
    const outcome = await runChild('spin', 600)
    expect(outcome.signal).toBe('SIGKILL')
    expect(outcome.stderr).toContain('[stall-watchdog]')
    expect(outcome.stderr).toContain('made no progress')
    expect(outcome.stderr).toContain('spinning')
    expect(outcome.stdout).not.toContain('alive')
  }, 180_000)

  it('kills a process blocked on a synchronous wait, and says it is blocked', async () => {
    const outcome = await runChild('block', 600)
    expect(outcome.signal).toBe('SIGKILL')
    expect(outcome.stderr).toContain('[stall-watchdog]')
    expect(outcome.stderr).toContain('blocked without using CPU')
    expect(outcome.stdout).not.toContain('alive')
  }, 180_000)
})
