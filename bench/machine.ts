/** Where a benchmark ran: the host, Node, and the PostgreSQL server with the settings that move the figures. */
import { arch, cpus, loadavg, release, totalmem, type } from 'node:os'
import postgres from 'postgres'
import type { PostgresServer } from '../tools/postgres-server'

/** The machine and server a run measured. */
export interface MachineInfo {
  cpuModel: string
  cpuCount: number
  totalMemoryBytes: number
  os: string
  node: string
  /** 1/5/15-minute load averages when the run started */
  loadAverage: [number, number, number]
  postgresVersion: string
  serverSource: string
  /** settings that change write/read throughput, as `SHOW` prints them */
  serverSettings: Record<string, string>
  /** streaming replicas attached to the primary (they replay every write on the same cores) */
  streamingReplicas: number
}

const SETTINGS = [
  'fsync',
  'synchronous_commit',
  'full_page_writes',
  'wal_level',
  'shared_buffers',
  'max_wal_size',
  'work_mem',
  'maintenance_work_mem',
]

/** Collects {@link MachineInfo}; `url` is any database on the server (settings are read from it). */
export async function describeMachine(server: PostgresServer, url: string): Promise<MachineInfo> {
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  try {
    const [version] = await sql<{ version: string }[]>`select version()`
    const settings = await sql<{ name: string; setting: string }[]>`
      select name, current_setting(name) as setting from pg_settings where name = any(${SETTINGS}) order by name`
    const [replicas] = await sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_replication where state = 'streaming'`
    const [one, five, fifteen] = loadavg()
    return {
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
      cpuCount: cpus().length,
      totalMemoryBytes: totalmem(),
      os: `${type()} ${release()} ${arch()}`,
      node: process.version,
      loadAverage: [one ?? 0, five ?? 0, fifteen ?? 0],
      postgresVersion: version?.version ?? 'unknown',
      serverSource: server.description,
      serverSettings: Object.fromEntries(settings.map((s) => [s.name, s.setting])),
      streamingReplicas: replicas?.n ?? 0,
    }
  } finally {
    await sql.end({ timeout: 5 })
  }
}

/** The machine as markdown bullet lines. */
export function formatMachineMarkdown(info: MachineInfo): string[] {
  const gib = (info.totalMemoryBytes / 1024 ** 3).toFixed(1)
  const settings = Object.entries(info.serverSettings)
    .map(([name, value]) => `${name}=${value}`)
    .join(', ')
  return [
    `- Machine: ${info.cpuCount} × ${info.cpuModel}, ${gib} GiB RAM, ${info.os}; load average at start ` +
      `${info.loadAverage.map((l) => l.toFixed(2)).join(' / ')} (1/5/15 min)`,
    `- Node ${info.node}`,
    `- PostgreSQL: ${info.postgresVersion}`,
    `- Server: ${info.serverSource}; ${info.streamingReplicas} streaming replica(s) attached (replaying on the same cores)`,
    `- Server settings: ${settings}`,
  ]
}
