import { describe, expect, it } from 'vitest'
import { wasmTieringTunable } from '../src/testing/wasm-tiering'

// When @callsheet/db/testing raises V8's WebAssembly tiering budget (issue 19): by default, never over
// the user's own choice. Its effect is measured in bench/ (test-database), not timed here.
describe('@callsheet/db/testing: V8 WebAssembly tiering for test databases', () => {
  it('raises the budget by default', () => {
    expect(wasmTieringTunable({}, [])).toBe(true)
    expect(wasmTieringTunable({ NODE_OPTIONS: '--max-old-space-size=4096' }, ['--enable-source-maps'])).toBe(true)
  })

  it('leaves it alone when CALLSHEET_DB_TEST_WASM_TIERING turns it off', () => {
    for (const value of ['off', 'OFF', '0', 'false', 'no', 'default']) {
      expect(wasmTieringTunable({ CALLSHEET_DB_TEST_WASM_TIERING: value }, [])).toBe(false)
    }
    expect(wasmTieringTunable({ CALLSHEET_DB_TEST_WASM_TIERING: 'on' }, [])).toBe(true)
  })

  it('never overrides a tiering option given to node or in NODE_OPTIONS', () => {
    for (const option of [
      '--wasm-tiering-budget=5',
      '--wasm_tiering_budget=5',
      '--no-wasm-dynamic-tiering',
      '--wasm-dynamic-tiering',
      '--no-wasm-tier-up',
    ]) {
      expect(wasmTieringTunable({}, [option])).toBe(false)
      expect(wasmTieringTunable({ NODE_OPTIONS: `--inspect ${option}` }, [])).toBe(false)
    }
  })
})
