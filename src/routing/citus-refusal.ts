import { InvalidConfigurationError, toLibraryError } from '../errors'
import { CITUS_INSTALLED_SQL } from '../distribution/cluster-checks'
import type { Engine } from '../engine/engine'

// Per primary engine: learnt once, by the first read-your-writes read on a replica.
const known = new WeakMap<Engine, boolean | Promise<boolean>>()

/**
 * Refuses a read-your-writes read on a replica of a Citus database: the WAL-position gate would wait
 * for the coordinator's position, which says nothing about the shards on the workers. One probe of the
 * primary per engine; a failed probe is asked again by the next read.
 * @throws InvalidConfigurationError on a Citus database.
 */
export async function refuseReadYourWritesOnCitus(primary: Engine): Promise<void> {
  let citus = known.get(primary)
  if (citus === undefined) {
    citus = primary.probe<{ citus: boolean }>(CITUS_INSTALLED_SQL).then(
      (rows) => {
        const found = rows[0]?.citus === true
        known.set(primary, found)
        return found
      },
      (error: unknown) => {
        known.delete(primary)
        throw toLibraryError(error)
      },
    )
    known.set(primary, citus)
  }
  if (await citus)
    throw new InvalidConfigurationError(
      "read-your-writes reads on replicas are not available on a Citus database: the coordinator's WAL position " +
        "says nothing about the rows on the workers. Use consistency 'primary' (or 'eventual'), or no replicas",
    )
}
