/**
 * A vitest setup file: a watchdog thread that kills this test process when its main thread has not run
 * for `CALLSHEET_STALL_LIMIT_S` seconds (default 120). PGlite runs PostgreSQL on the main thread in
 * WebAssembly: a wedged instance (as PGlite 0.5's extension preload race once left one) blocks it for
 * good, and no vitest timeout can fire. Killed, the worker fails its file at once, with this message,
 * instead of holding the whole run until CI's own limit.
 */
import { Worker } from 'node:worker_threads'

const LIMIT_S = Number(process.env.CALLSHEET_STALL_LIMIT_S ?? 120)
const started = globalThis as { __callsheetStallWatchdog?: boolean }

if (!started.__callsheetStallWatchdog && LIMIT_S > 0) {
  started.__callsheetStallWatchdog = true
  const beat = new Int32Array(new SharedArrayBuffer(4))
  const now = () => Math.floor(Date.now() / 1000)
  Atomics.store(beat, 0, now())
  setInterval(() => Atomics.store(beat, 0, now()), 1000).unref()
  const watchdog = new Worker(
    `
    const { workerData } = require('node:worker_threads')
    const { writeSync } = require('node:fs')
    const { beat, limit, file } = workerData
    setInterval(() => {
      const stalled = Math.floor(Date.now() / 1000) - Atomics.load(beat, 0)
      if (stalled < limit) return
      writeSync(2, '\\n[stall-watchdog] the main thread of test process ' + process.pid + ' (' + file + ') has not run for ' + stalled +
        ' s (a wedged PGlite?): killing this test process so the run fails now instead of hanging\\n')
      process.kill(process.pid, 'SIGKILL')
    }, 5000)
    `,
    { eval: true, workerData: { beat, limit: LIMIT_S, file: process.argv.slice(1).join(' ') } },
  )
  watchdog.unref()
}
