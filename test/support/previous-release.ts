import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'

// The "previous release" of test/n-minus-1.test.ts: the library as compat/previous-release.json names it (a
// tag once 0.1.0 is tagged; until then a pinned commit of main), built from git with the repository's own
// node_modules — no network, no npm install — and cached by commit in node_modules/.cache, so only the
// first run after the ref moves pays for the build.

const exec = promisify(execFile)
const root = resolve(import.meta.dirname, '..', '..')
const cacheRoot = join(root, 'node_modules', '.cache', 'callsheet-previous-release')

/** compat/previous-release.json. */
interface PreviousReleaseFile {
  /** A tag or commit this checkout has. */
  readonly ref: string
  /** The version it stands for (`0.1.0-unreleased` while 0.1.0 is untagged). */
  readonly version: string
  readonly note: string
}

/** The previous release, built. */
export interface PreviousRelease extends PreviousReleaseFile {
  /** The commit `ref` resolves to. */
  readonly commit: string
  /** Its build: `dist/index.js`, `dist/schema.js` (ESM, no types), its `drizzle/` and `package.json`. */
  readonly dir: string
  /** Whether this call built it (false: the cache had it). */
  readonly built: boolean
}

function readPreviousReleaseFile(): PreviousReleaseFile {
  return JSON.parse(readFileSync(join(root, 'compat', 'previous-release.json'), 'utf8')) as PreviousReleaseFile
}

async function git(args: string[]): Promise<string> {
  const { stdout } = await exec('git', args, { cwd: root, maxBuffer: 256 * 1024 * 1024 })
  return stdout.trim()
}

/**
 * Builds (or finds in the cache) the library at compat/previous-release.json's ref.
 * @throws Error naming the ref when this checkout does not have it (a shallow clone: fetch it).
 */
export async function previousRelease(): Promise<PreviousRelease> {
  const file = readPreviousReleaseFile()
  // A pinned commit already built needs no git (a source tree without .git, with this node_modules).
  if (/^[0-9a-f]{40}$/.test(file.ref) && existsSync(join(cacheRoot, file.ref, 'complete')))
    return { ...file, commit: file.ref, dir: join(cacheRoot, file.ref), built: false }
  let commit: string
  try {
    commit = await git(['rev-parse', '--verify', '--quiet', `${file.ref}^{commit}`])
  } catch {
    throw new Error(
      `compat/previous-release.json names ${file.ref}, which this checkout does not have (a shallow clone, or no ` +
        `.git?): the N-1 test builds it from git. Fetch it (git fetch --tags, or a clone with full history).`,
    )
  }
  const dir = join(cacheRoot, commit)
  if (existsSync(join(dir, 'complete'))) return { ...file, commit, dir, built: false }

  mkdirSync(cacheRoot, { recursive: true })
  // Built beside the cache entry and renamed into place: a concurrent or interrupted build never leaves a
  // half-built entry behind, and two runs building at once both end with the same files.
  const stage = mkdtempSync(join(cacheRoot, `.build-${commit.slice(0, 12)}-`))
  try {
    const tar = join(stage, 'source.tar')
    await git(['archive', '--format=tar', '-o', tar, commit, 'src', 'drizzle', 'package.json', 'tsup.config.ts'])
    await exec('tar', ['-xf', tar, '-C', stage])
    rmSync(tar)
    // That commit's own tsup.config.ts (its entries), run with this checkout's tsup from node_modules (the
    // stage lies inside it, so every import resolves there); JS only: a node consumer needs no types.
    const script = `const { build } = await import('tsup')
await build({ dts: false, sourcemap: false, format: ['esm'], silent: true })`
    await exec(process.execPath, ['--input-type=module', '-e', script], { cwd: stage, maxBuffer: 64 * 1024 * 1024 })
    if (!existsSync(join(stage, 'dist', 'index.js'))) throw new Error(`the build of ${commit} has no dist/index.js`)
    rmSync(join(stage, 'src'), { recursive: true })
    writeFileSync(join(stage, 'complete'), `${file.ref}\n`)
    try {
      renameSync(stage, dir)
    } catch (error) {
      // Another run put the same commit's build in place first.
      if (!existsSync(join(dir, 'complete'))) throw error
      rmSync(stage, { recursive: true, force: true })
    }
    return { ...file, commit, dir, built: true }
  } catch (error) {
    rmSync(stage, { recursive: true, force: true })
    throw error
  }
}

/** Imports one entry of the built previous release (`index` or `schema`). */
export async function importPrevious<T>(release: PreviousRelease, entry: 'index' | 'schema'): Promise<T> {
  return (await import(pathToFileURL(join(release.dir, 'dist', `${entry}.js`)).href)) as T
}
