// The module boundary of container/: build/ and runtime/ both import it, it imports neither, and
// runtime/ never reaches build/ (a provider is not a builder). The walk follows relative imports, static
// (`import … from`, `export … from`, `import '…'`) and dynamic (`import('…')`), transitively, so an edge
// through a third module counts too.
import assert from 'node:assert/strict'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/** Every .ts file under `dir`, tests included (a test importing build/ ties runtime/ to it as well). */
function tsFiles(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...tsFiles(p))
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p)
  }
  return out
}

const SPECIFIER = [
  /\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
  /\bimport\s*['"]([^'"]+)['"]/g,
  /\bimport\s*\(\s*['"`]([^'"`$]+)['"`]\s*\)/g,
]

/** The relative imports of a source text, as written. */
export function relativeImports(text: string): string[] {
  const found = new Set<string>()
  for (const re of SPECIFIER) for (const m of text.matchAll(re)) if (m[1]?.startsWith('.')) found.add(m[1])
  return [...found]
}

/** The file a relative specifier of `from` names: `./x.js` is `./x.ts` (or `./x/index.ts`) in source. */
function resolveImport(from: string, spec: string): string | undefined {
  const base = resolve(dirname(from), spec)
  for (const c of [base.replace(/\.js$/, '.ts'), base, `${base}.ts`, join(base, 'index.ts')]) {
    try {
      if (statSync(c).isFile()) return c
    } catch {
      // not this candidate
    }
  }
  return undefined
}

/** The top-level module (`build`, `runtime`, …) a file under src/ belongs to. */
function moduleOf(file: string): string {
  return relative(SRC, file).split('/')[0] ?? ''
}

/**
 * For every file under src/`from`, the shortest chain of relative imports that reaches a file of one of
 * the `forbidden` modules, as "a.ts → b.ts → build/x.ts".
 */
export function forbiddenChains(from: string, forbidden: readonly string[]): string[] {
  const imports = new Map<string, string[]>()
  const importsOf = (file: string): string[] => {
    let list = imports.get(file)
    if (!list) {
      list = relativeImports(readFileSync(file, 'utf8'))
        .map((s) => resolveImport(file, s))
        .filter((f): f is string => f?.startsWith(SRC) === true)
      imports.set(file, list)
    }
    return list
  }
  const chains: string[] = []
  for (const start of tsFiles(join(SRC, from))) {
    const seen = new Map<string, string | null>([[start, null]])
    const queue = [start]
    while (queue.length > 0) {
      const file = queue.shift() as string
      if (forbidden.includes(moduleOf(file))) {
        const chain: string[] = []
        for (let f: string | null | undefined = file; f; f = seen.get(f)) chain.unshift(relative(SRC, f))
        chains.push(chain.join(' → '))
        break
      }
      for (const next of importsOf(file)) {
        if (seen.has(next)) continue
        seen.set(next, file)
        queue.push(next)
      }
    }
  }
  return chains
}

test('import specifiers are found in static, re-export, side-effect and dynamic imports', () => {
  const text = [
    "import { a } from '../build/a.js'",
    "import type {\n  B,\n} from './b.js'",
    "export { c } from '../runtime/c.js'",
    "import './side.js'",
    "const d = await import('../build/d.js')",
    "const e = await import(\n  '../build/e.js'\n)",
    "import { f } from 'node:fs'",
  ].join('\n')
  assert.deepEqual(relativeImports(text).sort(), [
    '../build/a.js',
    '../build/d.js',
    '../build/e.js',
    '../runtime/c.js',
    './b.js',
    './side.js',
  ])
})

test('nothing in runtime/ imports build/, directly or through another module', () => {
  assert.deepEqual(forbiddenChains('runtime', ['build']), [])
})

test('container/ imports neither build/ nor runtime/', () => {
  assert.deepEqual(forbiddenChains('container', ['build', 'runtime']), [])
})
