/**
 * A vitest setup file: a watchdog thread that kills this test process when it has made no progress for
 * `CALLSHEET_STALL_LIMIT_S` seconds (default 120) — a wedge, not slowness.
 *
 * Progress is either a timer firing on the main thread or a PGlite round trip completing. Both count
 * because PGlite runs each query synchronously in WebAssembly and continues between queries through
 * promise callbacks only: a file that keeps PGlite busy never reaches the timer phase, so a timer alone
 * would mistake a long run of healthy queries (thousands every few seconds on a busy machine) for a
 * wedge. A wedged PGlite (as PGlite 0.5's extension preload race once left one, spinning in `errfinish`)
 * completes no round trip and runs no timer: killed, the worker fails its file at once, with a message
 * saying what was seen, instead of holding the whole run until CI's own limit.
 */
import { Worker } from 'node:worker_threads'
import { PGlite } from '@electric-sql/pglite'

const LIMIT_S = Number(process.env.CALLSHEET_STALL_LIMIT_S ?? 120)
const started = globalThis as { __callsheetStallWatchdog?: boolean }

// The shared progress record: Int32 slots, times in milliseconds since EPOCH (fits 24 days).
const LAST_PROGRESS = 0 // the last timer tick or completed round trip
const ROUND_TRIPS = 1 // PGlite round trips completed in this process
const LAST_TIMER = 2 // the last timer tick on the main thread
const EPOCH = Date.now()

if (!started.__callsheetStallWatchdog && LIMIT_S > 0) {
  started.__callsheetStallWatchdog = true
  const progress = new Int32Array(new SharedArrayBuffer(3 * 4))
  setInterval(() => {
    const now = Date.now() - EPOCH
    Atomics.store(progress, LAST_PROGRESS, now)
    Atomics.store(progress, LAST_TIMER, now)
  }, 1000).unref()

  // Every PGlite query, transaction statement and COPY ends in this one synchronous call.
  const proto = PGlite.prototype as unknown as { execProtocolRawSync: (...args: unknown[]) => unknown }
  const original = proto.execProtocolRawSync
  proto.execProtocolRawSync = function (this: unknown, ...args: unknown[]) {
    const result = original.apply(this, args)
    Atomics.add(progress, ROUND_TRIPS, 1)
    Atomics.store(progress, LAST_PROGRESS, Date.now() - EPOCH)
    return result
  }

  const watchdog = new Worker(
    `
    const { workerData } = require('node:worker_threads')
    const { writeSync } = require('node:fs')
    const { progress, limit, file, epoch } = workerData
    // CPU time of the whole process since the last progress: the main thread is the only busy thread, so
    // one that spins shows ~1 s of CPU per second, one blocked on a synchronous wait shows ~0.
    let lastSeen = Atomics.load(progress, 0)
    let cpuAtProgress = process.cpuUsage()
    setInterval(() => {
      const last = Atomics.load(progress, 0)
      if (last !== lastSeen) {
        lastSeen = last
        cpuAtProgress = process.cpuUsage()
      }
      const now = Date.now() - epoch
      const stalledS = (now - last) / 1000
      if (stalledS < limit) return
      const cpu = process.cpuUsage(cpuAtProgress)
      const cpuS = (cpu.user + cpu.system) / 1e6
      const trips = Atomics.load(progress, 1)
      const timerS = ((now - Atomics.load(progress, 2)) / 1000).toFixed(0)
      const verdict =
        cpuS > stalledS * 0.05
          ? 'it is spinning without completing anything (a wedged PGlite?)'
          : 'it is blocked without using CPU (a synchronous wait?)'
      writeSync(2, '\\n[stall-watchdog] test process ' + process.pid + ' (' + file + ') made no progress for ' +
        stalledS.toFixed(0) + ' s: no PGlite round trip completed (' + trips + ' in all) and no timer ran (last ' +
        timerS + ' s ago); CPU used meanwhile: ' + cpuS.toFixed(1) + ' s, so ' + verdict +
        ' Killing it so the run fails now instead of hanging (CALLSHEET_STALL_LIMIT_S=' + limit + ').\\n')
      process.kill(process.pid, 'SIGKILL')
    }, 2000)
    `,
    { eval: true, workerData: { progress, limit: LIMIT_S, file: process.argv.slice(1).join(' '), epoch: EPOCH } },
  )
  watchdog.unref()
}
