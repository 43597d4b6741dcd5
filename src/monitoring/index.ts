export { createMonitoring } from './create-monitoring'
export {
  type ConnectionStats,
  type IndexUsage,
  type Monitoring,
  type PoolStats,
  type ReplicaLag,
  type SlowQueriesOptions,
  type SlowQuery,
  type TableSize,
} from './monitoring'
