// Typechecks every ```ts block of README.md and docs/*.md against the library's source, so the examples
// users copy keep compiling as the API changes. Each block becomes the body of an async function (its
// imports are hoisted), with the free names examples lean on (tenant, orgId, req, …) declared below.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '..')
const out = join(root, 'node_modules', '.readme-examples')
const files = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
]

// Names the examples use without defining them. A block that defines one shadows it.
const PREAMBLE = `import type * as Lib from '@callsheet/db'
import type * as Schema from '@callsheet/db/schema'
declare const tenant: Lib.TenantClient
declare const db: Lib.Database
declare const primary: string
declare const orgId: string
declare const someId: string
declare const productionId: string
declare const requestId: string
declare const user: { id: string }
declare const contact: Schema.Contact
declare const upload: Schema.Upload
declare const rows: Lib.CreateContactInput[]
declare const extractorOutput: unknown
declare const req: { ip: string; cookies: Record<string, string>; headers: Record<string, string | undefined> }
declare const res: { cookie(name: string, value: string | undefined): void }
declare const reply: { code(status: number): { send(body?: unknown): unknown } }
declare const queue: { publish(events: readonly Lib.ChangeEvent[]): Promise<void> }
declare const log: { warn(fields: Record<string, unknown>): void }
declare const bar: { update(fraction: number): void }
declare const myService: (tenant: Lib.TenantClient) => { getContact(id: string): Promise<unknown> }
declare const getContactHandler: (...args: unknown[]) => Promise<unknown>
declare const actorId: string
`
// Values a block may use without importing them (added when it does not import them itself).
const AUTO_IMPORTS = {
  '@callsheet/db': ['createDatabase', 'createTenantClient', 'isCallsheetDbError', 'migrate'],
  '@callsheet/db/testing': ['createTestDatabase', 'seedTenant', 'expectTenantIsolation'],
}

rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })
const generated = []
for (const file of files) {
  const text = readFileSync(join(root, file), 'utf8')
  const blocks = [...text.matchAll(/^```ts\n([\s\S]*?)^```/gm)]
  blocks.forEach((match, i) => {
    const line = text.slice(0, match.index).split('\n').length + 1
    const lines = match[1].split('\n')
    // A block that starts with `// db/<name>.ts` is also that module, for the blocks that import it.
    const module = /^\/\/ (db\/[a-z-]+\.ts)$/.exec(lines[0] ?? '')?.[1]
    if (module !== undefined) {
      mkdirSync(join(out, 'db'), { recursive: true })
      writeFileSync(join(out, module), `// ${file}:${line}\n${match[1]}`)
    }
    const imports = lines.filter((l) => /^import /.test(l))
    // A block showing a module's exports becomes a function body: the declarations stay, unexported.
    const body = lines.filter((l) => !/^import /.test(l)).map((l) => l.replace(/^export (default )?/, ''))
    const imported = imports.join('\n')
    for (const [from, names] of Object.entries(AUTO_IMPORTS)) {
      const missing = names.filter((n) => new RegExp(`\\b${n}\\b`).test(body.join('\n')) && !imported.includes(n))
      if (missing.length > 0) imports.push(`import { ${missing.join(', ')} } from '${from}'`)
    }
    // Test-runner globals (jest examples use them without importing), typed as vitest's.
    const runner = ['beforeAll', 'afterAll', 'beforeEach', 'afterEach', 'describe', 'test', 'it', 'expect'].filter(
      (n) => !new RegExp(`\\b${n}\\b`).test(imported) && new RegExp(`\\b${n}\\(`).test(body.join('\n')),
    )
    if (runner.length > 0) {
      imports.push(`import type * as Runner from 'vitest'`)
      body.unshift(...runner.map((n) => `const ${n} = undefined as unknown as typeof Runner.${n}`))
    }
    const name = `${file.replace(/[^a-z0-9]+/gi, '_')}_${i + 1}.ts`
    writeFileSync(
      join(out, name),
      `// ${file}:${line}\n${imports.join('\n')}\n${PREAMBLE}\nexport async function example() {\n${body.join('\n')}\n}\n`,
    )
    generated.push(`${name} (${file}:${line})`)
  })
}
writeFileSync(
  join(out, 'tsconfig.json'),
  JSON.stringify({
    extends: join(root, 'tsconfig.json'),
    compilerOptions: {
      noEmit: true,
      noUnusedLocals: false,
      noUnusedParameters: false,
      baseUrl: root,
      paths: {
        '@callsheet/db': ['src/index.ts'],
        '@callsheet/db/schema': ['src/schema/index.ts'],
        '@callsheet/db/testing': ['src/testing/index.ts'],
      },
    },
    include: ['./*.ts'],
  }),
)
try {
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(out, 'tsconfig.json')], {
    stdio: 'inherit',
    cwd: root,
  })
} catch {
  console.error(`\nREADME/docs examples do not compile (generated files in ${out}; each starts with its source line).`)
  process.exit(1)
}
console.log(`${generated.length} examples from ${files.join(', ')} typecheck against the source.`)
