import { defineConfig } from 'tsup'

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    schema: 'src/schema/index.ts',
    testing: 'src/testing/index.ts',
    cli: 'src/cli/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  // import.meta.url locates the shipped drizzle/ folder; shims make it work in the CJS build too.
  shims: true,
  target: 'node20',
  splitting: true,
  treeshake: true,
})
