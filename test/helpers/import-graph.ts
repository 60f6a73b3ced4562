import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, join, relative, resolve } from 'node:path'
import ts from 'typescript'

/** The repository's root (this file is test/helpers/import-graph.ts). */
export const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '../..')

/** One import of a source file: static (`import`, `export … from`) or dynamic (`await import('…')`). */
export interface ImportEdge {
  /** absolute path of the importing file */
  from: string
  /** absolute path of the imported source file, or the bare specifier (`node:fs`, `better-sqlite3`) */
  to: string
  /** `import type` / `export type`: erased when compiled, so it loads nothing */
  typeOnly: boolean
  dynamic: boolean
}

const builtins = new Set(builtinModules)

/** `./x.js` of `dir` as the TypeScript file it names; a bare specifier as it is (`fs` as `node:fs`). */
function resolveSpecifier(fromFile: string, spec: string): string {
  if (!spec.startsWith('.')) return builtins.has(spec) ? `node:${spec}` : spec
  const base = resolve(dirname(fromFile), spec)
  for (const candidate of [base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts'), base]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate
  }
  return base.replace(/\.js$/, '.ts')
}

const cache = new Map<string, ImportEdge[]>()

/** Every import of a TypeScript file, read with the compiler's parser (comments and strings are not imports). */
export function importsOf(file: string): ImportEdge[] {
  const known = cache.get(file)
  if (known) return known
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true)
  const out: ImportEdge[] = []
  const add = (spec: string, typeOnly: boolean, dynamic: boolean) =>
    out.push({ from: file, to: resolveSpecifier(file, spec), typeOnly, dynamic })
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      add(node.moduleSpecifier.text, node.importClause?.isTypeOnly === true, false)
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier !== undefined &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      add(node.moduleSpecifier.text, node.isTypeOnly, false)
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] !== undefined
    ) {
      const arg = node.arguments[0]
      // a computed specifier cannot be checked: name it so a rule can refuse it
      add(
        ts.isStringLiteralLike(arg) ? arg.text : `<computed import in ${relative(ROOT, file)}>`,
        false,
        true,
      )
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  cache.set(file, out)
  return out
}

/** Every `.ts` file under `dir`, test files included unless `withTests` is false. */
export function sourceFiles(dir: string, opts: { withTests?: boolean } = {}): string[] {
  const out: string[] = []
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name)
      if (statSync(p).isDirectory()) walk(p)
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) {
        if (opts.withTests === false && name.endsWith('.test.ts')) continue
        out.push(p)
      }
    }
  }
  walk(dir)
  return out
}

/** A path relative to the repository (`src/plan/plan.ts`), for messages; a bare specifier as it is. */
export const shown = (p: string): string => (p.startsWith('/') ? relative(ROOT, p) : p)
