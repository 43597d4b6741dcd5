import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { ESLint } from 'eslint'
import { describe, expect, it } from 'vitest'

// The architecture's defences are lint rules (eslint.config.js) and one file-size rule; each is attacked
// here with the code it exists to refuse, in a real file's place (the type-aware rules need a file the
// TypeScript project knows). docs/ARCHITECTURE.md explains the layers.
const root = join(import.meta.dirname, '..')
const eslint = new ESLint({ cwd: root })

async function ruleIds(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(root, file) })
  return (result?.messages ?? []).map((m) => m.ruleId ?? `parse: ${m.message}`)
}

describe('architecture: lint refuses what would break a layer or a promise', () => {
  it('an upward import (engine/ reaching client/) and a cycle', async () => {
    expect(
      await ruleIds(
        'src/engine/replica-gate.ts',
        "import type { ResolvedConfig } from '../client/config'\nexport type X = ResolvedConfig\n",
      ),
    ).toContain('import-x/no-restricted-paths')
    // support/ids.ts imports errors/; errors/ importing support/ids.ts back would close a cycle (and point up).
    const cyclic = await ruleIds(
      'src/errors/from-driver.ts',
      "import { parseId } from '../support/ids'\nexport const f = parseId\n",
    )
    expect(cyclic).toContain('import-x/no-restricted-paths')
    expect(cyclic).toContain('import-x/no-cycle')
  })

  it('the allowed direction passes (repositories/ importing support/)', async () => {
    expect(
      await ruleIds(
        'src/repositories/filters.ts',
        "import { parseId } from '../support/ids'\nexport const f = parseId\n",
      ),
    ).toEqual([])
  })

  it('tenant settings spelled outside the settings-statement builder', async () => {
    expect(
      await ruleIds(
        'src/repositories/filters.ts',
        "export const s = `select set_config('app.tenant_proof', $1, true)`\n",
      ),
    ).toContain('no-restricted-syntax')
    expect(
      await ruleIds(
        'src/client/tenant-client.ts',
        "export const s = 'select callsheet_enter_tenant($1, $2, $3, $4)'\n",
      ),
    ).toContain('no-restricted-syntax')
  })

  it('a driver imported outside engine/, and instanceof PGlite', async () => {
    expect(
      await ruleIds('src/repositories/filters.ts', "import postgres from 'postgres'\nexport const p = postgres\n"),
    ).toContain('@typescript-eslint/no-restricted-imports')
    expect(
      await ruleIds(
        'src/client/config.ts',
        "import { PGlite } from '@electric-sql/pglite'\nexport const is = (x: unknown): boolean => x instanceof PGlite\n",
      ),
    ).toContain('no-restricted-syntax')
  })

  it('a dropped promise (a query that may run outside its unit)', async () => {
    expect(
      await ruleIds(
        'src/repositories/filters.ts',
        'export function f(p: Promise<void>): void {\n  void 0\n  p.then(() => 1)\n}\n',
      ),
    ).toContain('@typescript-eslint/no-floating-promises')
  })
})

describe('architecture: no source file over 350 lines without its reason at the top', () => {
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? files(join(dir, e.name)) : /\.(ts|mjs)$/.test(e.name) ? [join(dir, e.name)] : [],
    )
  // test/ is left out: a suite is a list of cases, as long as the behaviour it covers.
  it.each(['src', 'tools', 'bench', 'scripts', 'examples'])('%s/', (dir) => {
    const long = files(join(root, dir))
      .map((file) => ({ file: relative(root, file), text: readFileSync(file, 'utf8') }))
      .filter(
        ({ text }) => text.split('\n').length > 350 && !/^\/\/ Over 350 lines because /m.test(text.slice(0, 2000)),
      )
      .map(({ file }) => file)
    expect(long).toEqual([])
  })
})

// import-x/no-cycle skips `import type`; a cycle of types still ties files together for a reader, so the
// whole graph (type imports included) is checked here too.
describe('architecture: the import graph of src/, type imports included', () => {
  const sources = new Map<string, string>()
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name)
      if (e.isDirectory()) walk(path)
      else if (e.name.endsWith('.ts')) sources.set(relative(root, path), readFileSync(path, 'utf8'))
    }
  }
  walk(join(root, 'src'))
  const resolve = (from: string, spec: string): string | undefined => {
    const base = join(from, '..', spec)
    return [`${base}.ts`, join(base, 'index.ts')].find((candidate) => sources.has(candidate))
  }
  const edges = new Map<string, string[]>()
  for (const [file, text] of sources) {
    const targets = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)].map((m) => resolve(file, m[1]!))
    edges.set(
      file,
      targets.filter((t): t is string => t !== undefined),
    )
  }
  // The layers are the lint's own zones (eslint.config.js), so this check and the lint cannot disagree.
  const forbidden = async (): Promise<Map<string, string[]>> => {
    const config = (await eslint.calculateConfigForFile(join(root, 'src/index.ts'))) as {
      rules: Record<string, [unknown, { zones: { target: string; from: string[] }[] }]>
    }
    const zones = config.rules['import-x/no-restricted-paths']![1].zones
    return new Map(
      zones.map((zone) => [zone.target.replace('./src/', ''), zone.from.map((f) => f.replace('./src/', ''))]),
    )
  }
  const folderOf = (file: string): string => file.split('/')[1] ?? ''

  it('has no upward arrow', async () => {
    const above = await forbidden()
    expect(above.size).toBeGreaterThan(10)
    const upward = [...edges].flatMap(([from, tos]) =>
      tos
        .filter((to) =>
          (above.get(folderOf(from)) ?? []).includes(folderOf(to) === 'index.ts' ? 'index.ts' : folderOf(to)),
        )
        .map((to) => `${from} → ${to}`),
    )
    expect(upward).toEqual([])
  })

  it('has no cycle', () => {
    // Tarjan's strongly connected components: any with more than one file is a cycle.
    let next = 0
    const index = new Map<string, number>()
    const low = new Map<string, number>()
    const stack: string[] = []
    const cycles: string[][] = []
    const visit = (v: string): void => {
      index.set(v, next)
      low.set(v, next++)
      stack.push(v)
      for (const w of edges.get(v) ?? []) {
        if (!index.has(w)) {
          visit(w)
          low.set(v, Math.min(low.get(v)!, low.get(w)!))
        } else if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
      }
      if (low.get(v) === index.get(v)) {
        const component: string[] = []
        let w: string | undefined
        do {
          w = stack.pop()!
          component.push(w)
        } while (w !== v)
        if (component.length > 1) cycles.push(component.sort())
      }
    }
    for (const v of edges.keys()) if (!index.has(v)) visit(v)
    expect(cycles).toEqual([])
  })
})
