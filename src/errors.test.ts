import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { ERROR_CODES, GrailError, isErrorCode } from './errors.js'

const SRC = fileURLToPath(new URL('.', import.meta.url))
const DOCS = join(SRC, '..', 'docs', 'cli.md')

/** The codes of the "Error codes" section of docs/cli.md: its tables' first column, in order. */
function documentedCodes(): string[] {
  const text = readFileSync(DOCS, 'utf8')
  const start = text.indexOf('\n## Error codes\n')
  assert.ok(start >= 0, 'docs/cli.md has an "## Error codes" section')
  const rest = text.slice(start + 1)
  const end = rest.indexOf('\n## ', 1)
  const section = end < 0 ? rest : rest.slice(0, end)
  return [...section.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|/gm)].map((m) => m[1] as string)
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name)
    if (e.isDirectory()) return sourceFiles(path)
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [path] : []
  })
}

test('docs/cli.md lists exactly the codes of ERROR_CODES, each once', () => {
  const documented = documentedCodes()
  const dupes = documented.filter((c, i) => documented.indexOf(c) !== i)
  assert.deepEqual(dupes, [], 'codes listed twice in docs/cli.md')
  const known = new Set<string>(ERROR_CODES)
  assert.deepEqual(
    documented.filter((c) => !known.has(c)),
    [],
    'codes in docs/cli.md that ERROR_CODES (src/errors.ts) does not have',
  )
  const listed = new Set(documented)
  assert.deepEqual(
    ERROR_CODES.filter((c) => !listed.has(c)),
    [],
    'codes of ERROR_CODES missing from the "Error codes" table of docs/cli.md',
  )
  assert.equal(new Set(ERROR_CODES).size, ERROR_CODES.length, 'ERROR_CODES has no duplicates')
})

test('every code of ERROR_CODES is used somewhere in src/ (outside errors.ts)', () => {
  const text = sourceFiles(SRC)
    .filter((f) => f !== join(SRC, 'errors.ts'))
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n')
  assert.deepEqual(
    ERROR_CODES.filter((c) => !text.includes(`'${c}'`)),
    [],
    'codes no source file uses: remove them from ERROR_CODES and docs/cli.md',
  )
})

test('a GrailError takes only a known code; isErrorCode tells them apart', () => {
  // @ts-expect-error a typo in a code does not typecheck
  const typo = new GrailError('LOCK_INVALD', 'x')
  assert.equal(typo.code, 'LOCK_INVALD')
  assert.equal(isErrorCode('LOCK_INVALID'), true)
  assert.equal(isErrorCode('LOCK_INVALD'), false)
  assert.equal(isErrorCode(undefined), false)
})
