import { MemoryFS, type PGlite } from '@electric-sql/pglite'

/**
 * A PGlite data directory held as files in memory, to start many PGlite instances from without
 * `loadDataDir`: PGlite 0.5 reads a `loadDataDir` tarball through a Blob stream and concatenates its
 * chunks (≈ 0.3 s for the ~40 MB of a migrated database, measured), where writing the same files
 * straight into the new instance's in-memory filesystem takes ≈ 40 ms.
 */
export interface DataDirSnapshot {
  /** Directories under the data directory, parents first (paths relative to it, `/`-separated). */
  readonly dirs: readonly string[]
  readonly files: readonly SnapshotFile[]
}

/** One file of a {@link DataDirSnapshot}. */
interface SnapshotFile {
  readonly path: string
  /** The file's bytes without its trailing zero bytes (a WAL segment is 16 MB of mostly zeros). */
  readonly data: Uint8Array
  /** The file's full size: `data` padded with zeros up to it. */
  readonly size: number
}

// Where PGlite 0.5 keeps PGDATA in its Emscripten filesystem (`PGlite.paths.PGDATA`, not typed).
const PGDATA = '/pglite/data'
// A running server's lock file: never copied (a copy would claim a server that is not running).
const SKIPPED = new Set(['postmaster.pid'])
// A regular file (S_IFREG), read-write for its owner only, as PostgreSQL keeps its data files.
const FILE_MODE = 0o100600

/** The few Emscripten FS calls used here (PGlite types `Module.FS` through @types/emscripten, not a dependency). */
interface EmscriptenFs {
  readdir(path: string): string[]
  stat(path: string): { mode: number }
  isDir(mode: number): boolean
  readFile(path: string): Uint8Array
  mkdirTree(path: string, mode?: number): void
  mkdir(path: string, mode?: number): FsNode
  lookupPath(path: string): { node: FsNode }
  writeFile(path: string, data: Uint8Array, options?: { canOwn?: boolean }): void
  chmod(path: string, mode: number): void
}

/** An Emscripten filesystem node: for MEMFS, a directory creates its files through `node_ops.mknod`. */
interface FsNode {
  node_ops?: { mknod?: (parent: FsNode, name: string, mode: number, dev: number) => FsNode }
  contents?: unknown
  usedBytes?: number
}

const fsOf = (pg: PGlite): EmscriptenFs => pg.Module.FS

/**
 * Closes `pg` (a clean shutdown: the copies start without crash recovery) and returns its data directory.
 * Only for an in-memory PGlite: the files are read from its Emscripten filesystem, which outlives close().
 *
 * @throws Error when the instance has no data directory where PGlite 0.5 keeps it.
 */
export async function closeIntoSnapshot(pg: PGlite): Promise<DataDirSnapshot> {
  const fs = fsOf(pg)
  await pg.close()
  const dirs: string[] = []
  const files: SnapshotFile[] = []
  const walk = (relative: string): void => {
    for (const name of fs.readdir(relative === '' ? PGDATA : `${PGDATA}/${relative}`)) {
      if (name === '.' || name === '..' || SKIPPED.has(name)) continue
      const path = relative === '' ? name : `${relative}/${name}`
      if (fs.isDir(fs.stat(`${PGDATA}/${path}`).mode)) {
        dirs.push(path)
        walk(path)
      } else {
        const bytes = fs.readFile(`${PGDATA}/${path}`)
        let end = bytes.length
        while (end > 0 && bytes[end - 1] === 0) end--
        files.push({ path, data: bytes.slice(0, end), size: bytes.length })
      }
    }
  }
  walk('')
  if (!files.some((f) => f.path === 'PG_VERSION')) throw new Error(`no PostgreSQL data directory at ${PGDATA}`)
  return { dirs, files }
}

/**
 * PGlite's in-memory filesystem, filled from a {@link DataDirSnapshot} before PostgreSQL starts (PGlite
 * then finds a data directory and starts on it instead of running initdb). Each instance gets its own
 * copy of every file: the snapshot is never written to.
 *
 * @example
 * ```ts
 * const pg = await createPglite({ fs: new SnapshotFilesystem(snapshot) })
 * ```
 */
export class SnapshotFilesystem extends MemoryFS {
  readonly #snapshot: DataDirSnapshot
  constructor(snapshot: DataDirSnapshot) {
    super()
    this.#snapshot = snapshot
  }

  override async initialSyncFs(): Promise<void> {
    await super.initialSyncFs()
    if (this.pg === undefined) throw new Error('SnapshotFilesystem used before PGlite initialised it')
    const fs = fsOf(this.pg)
    fs.mkdirTree(PGDATA, 0o700)
    const dirs = new Map<string, FsNode>([['', fs.lookupPath(PGDATA).node]])
    for (const dir of this.#snapshot.dirs) dirs.set(dir, fs.mkdir(`${PGDATA}/${dir}`, 0o700))
    for (const file of this.#snapshot.files) {
      // A copy of the stored bytes, zeros after them up to the file's size (a slice when none were cut).
      const bytes = file.data.length === file.size ? file.data.slice() : new Uint8Array(file.size)
      if (bytes.length !== file.data.length) bytes.set(file.data)
      const slash = file.path.lastIndexOf('/')
      const parent = dirs.get(slash < 0 ? '' : file.path.slice(0, slash))
      const mknod = parent?.node_ops?.mknod
      if (parent && mknod) {
        // Straight into the directory (MEMFS, which PGlite's in-memory filesystem is): the path lookups and
        // checks of writeFile and chmod for each of ≈ 1,000 files took ≈ 50 ms of a ≈ 250 ms start.
        const node = mknod(parent, file.path.slice(slash + 1), FILE_MODE, 0)
        node.contents = bytes
        node.usedBytes = bytes.length
      } else {
        // canOwn: the filesystem keeps this fresh buffer instead of copying it again.
        fs.writeFile(`${PGDATA}/${file.path}`, bytes, { canOwn: true })
        fs.chmod(`${PGDATA}/${file.path}`, 0o600)
      }
    }
  }
}

const MAGIC = 'CSDBSNP1'

/**
 * The snapshot as one buffer, labelled with `key` (what it was made from): a header (magic, JSON index
 * length, JSON index) and the files' bytes one after the other.
 */
export function encodeSnapshot(snapshot: DataDirSnapshot, key: string, meta: Record<string, string> = {}): Buffer {
  const index = JSON.stringify({
    key,
    meta,
    dirs: snapshot.dirs,
    files: snapshot.files.map((f) => [f.path, f.size, f.data.length]),
  })
  const indexBytes = Buffer.from(index, 'utf8')
  const head = Buffer.alloc(MAGIC.length + 4)
  head.write(MAGIC, 0, 'latin1')
  head.writeUInt32LE(indexBytes.length, MAGIC.length)
  return Buffer.concat([head, indexBytes, ...snapshot.files.map((f) => f.data)])
}

/**
 * The snapshot in `buffer` if it is one made from `key` and whole; `undefined` otherwise (another key,
 * another format, truncated): the caller then makes a new one.
 */
export function decodeSnapshot(
  buffer: Uint8Array,
  key: string,
): { snapshot: DataDirSnapshot; meta: Record<string, string> } | undefined {
  const bytes = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength)
  if (bytes.length < MAGIC.length + 4 || bytes.toString('latin1', 0, MAGIC.length) !== MAGIC) return undefined
  const indexLength = bytes.readUInt32LE(MAGIC.length)
  let offset = MAGIC.length + 4 + indexLength
  if (offset > bytes.length) return undefined
  let index: unknown
  try {
    index = JSON.parse(bytes.toString('utf8', MAGIC.length + 4, offset))
  } catch {
    return undefined
  }
  if (!isIndex(index) || index.key !== key) return undefined
  const files: SnapshotFile[] = []
  for (const [path, size, stored] of index.files) {
    if (offset + stored > bytes.length || stored > size) return undefined
    files.push({ path, size, data: bytes.subarray(offset, offset + stored) })
    offset += stored
  }
  if (offset !== bytes.length) return undefined
  return { snapshot: { dirs: index.dirs, files }, meta: index.meta }
}

interface SnapshotIndex {
  key: string
  meta: Record<string, string>
  dirs: string[]
  files: [string, number, number][]
}

// Relative, without `..`: a cache file cannot place a file outside the data directory.
const isRelativePath = (path: unknown): path is string =>
  typeof path === 'string' && path !== '' && !path.startsWith('/') && !path.split('/').includes('..')

function isIndex(value: unknown): value is SnapshotIndex {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Partial<SnapshotIndex>
  return (
    typeof v.key === 'string' &&
    typeof v.meta === 'object' &&
    v.meta !== null &&
    Array.isArray(v.dirs) &&
    v.dirs.every(isRelativePath) &&
    Array.isArray(v.files) &&
    v.files.every(
      (f) =>
        Array.isArray(f) &&
        isRelativePath(f[0]) &&
        Number.isSafeInteger(f[1]) &&
        Number.isSafeInteger(f[2]) &&
        f[2] >= 0,
    )
  )
}
