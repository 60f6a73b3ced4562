// The CLI reaches providers only through the engine (src/engine/environment.ts and the runtime factory):
// no file of src/cli imports a module of src/runtime/ itself, statically or with `await import(...)`,
// except the interface's types (src/runtime/types.ts), type-only. Read with the TypeScript parser, so
// comments and strings do not count and `import type` / `typeof import()` are told from code.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { test } from 'node:test'
import ts from 'typescript'

const SRC = resolve(import.meta.dirname, '..')

interface ModuleImport {
  /** the specifier as written */
  spec: string
  /** true when no value is imported: `import type`, `export type`, `import('x').T`, `typeof import('x')` */
  typeOnly: boolean
  line: number
}

/** Every import of a source text: declarations, re-exports, `import()` calls and import types. */
function importsOf(file: string, text: string): ModuleImport[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS)
  const found: ModuleImport[] = []
  const add = (lit: ts.Node, typeOnly: boolean) => {
    if (!ts.isStringLiteralLike(lit)) return
    const line = sf.getLineAndCharacterOfPosition(lit.getStart(sf)).line + 1
    found.push({ spec: lit.text, typeOnly, line })
  }
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause
      const named = clause?.namedBindings
      const allTypes =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined &&
            named !== undefined &&
            ts.isNamedImports(named) &&
            named.elements.length > 0 &&
            named.elements.every((e) => e.isTypeOnly)))
      add(node.moduleSpecifier, allTypes)
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      add(node.moduleSpecifier, node.isTypeOnly)
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments
      if (arg) add(arg, false)
    } else if (ts.isImportTypeNode(node)) {
      const arg = node.argument
      if (ts.isLiteralTypeNode(arg)) add(arg.literal, true)
    }
    ts.forEachChild(node, visit)
  }
  visit(sf)
  return found
}

/**
 * The imports of `text` (a file at `file`) that break the boundary: a module under src/runtime/ other
 * than runtime/types.js, or runtime/types.js for a value. Each as `file:line: specifier`.
 */
function providerImports(file: string, text: string): string[] {
  const runtime = join(SRC, 'runtime')
  const out: string[] = []
  for (const imp of importsOf(file, text)) {
    if (!imp.spec.startsWith('.')) continue
    const target = resolve(dirname(file), imp.spec)
    if (target !== runtime && !target.startsWith(`${runtime}/`)) continue
    const isTypes = relative(runtime, target).replace(/\.(js|ts)$/, '') === 'types'
    if (isTypes && imp.typeOnly) continue
    out.push(`${relative(SRC, file)}:${imp.line}: ${imp.spec}${isTypes ? ' (a value import)' : ''}`)
  }
  return out
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name)
    if (e.isDirectory()) return sourceFiles(path)
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [path] : []
  })
}

test('no file of src/cli imports a provider module (only the types of src/runtime/types.ts)', () => {
  const files = sourceFiles(join(SRC, 'cli'))
  assert.ok(files.length > 10, `found only ${files.length} files under src/cli`)
  const bad = files.flatMap((f) => providerImports(f, readFileSync(f, 'utf8')))
  assert.deepEqual(bad, [], `src/cli must open environments through src/engine/:\n${bad.join('\n')}`)
})

test('the check sees every form of import into src/runtime/ and lets only type imports of its types through', () => {
  const file = join(SRC, 'cli', 'commands', 'example.ts')
  const lines = [
    "import { isInstanceId } from '../../runtime/local/layout.js'",
    "import { createLocalProvider } from '../../runtime/index.js'",
    "export { PROVIDERS } from '../../runtime/factory.js'",
    "const { createProvider } = await import('../../runtime/factory.js')",
    "import { GRACE } from '../../runtime/types.js'",
    "import type { RuntimeProvider } from '../../runtime/types.js'",
    "import { type InstanceHandle } from '../../runtime/types.js'",
    "type H = import('../../runtime/types.js').InstanceHandle",
    "export type { Scope } from '../../runtime/types.js'",
    "import { out } from '../render.js'",
    "// import { x } from '../../runtime/local/runc.js'",
    'const s = "import(\'../../runtime/index.js\')"',
  ]
  assert.deepEqual(providerImports(file, lines.join('\n')), [
    'cli/commands/example.ts:1: ../../runtime/local/layout.js',
    'cli/commands/example.ts:2: ../../runtime/index.js',
    'cli/commands/example.ts:3: ../../runtime/factory.js',
    'cli/commands/example.ts:4: ../../runtime/factory.js',
    'cli/commands/example.ts:5: ../../runtime/types.js (a value import)',
  ])
})
