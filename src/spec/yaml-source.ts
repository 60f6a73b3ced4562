/**
 * Reading grail.yaml: the YAML document with a line counter, so that any key path can be mapped back to
 * `line:column`, and YAML syntax errors reported with theirs.
 */
import type { Document, LineCounter, Node, Pair } from 'yaml'
import { LineCounter as Counter, isAlias, isMap, isPair, isScalar, isSeq, parseDocument, visit } from 'yaml'
import type { PointAt } from './problems.js'

/** A parsed YAML spec: its plain value, syntax errors, and a way back from key paths to positions. */
export interface YamlSource {
  raw: unknown
  errors: Array<{ line: number; column: number; message: string; hint?: string }>
  locate(path: readonly PropertyKey[], at: PointAt): { line: number; column: number }
}

const SYNTAX_HINTS: Record<string, string> = {
  TAB_AS_INDENT: 'indent with spaces, not tabs',
  DUPLICATE_KEY: 'each key may appear only once in a mapping',
  BAD_INDENT: 'check the indentation: nested keys need more spaces than their parent',
  BLOCK_AS_IMPLICIT_KEY:
    'put a nested mapping on its own, indented lines (or quote the value if it contains ": ")',
  MULTIPLE_DOCS: 'a spec is one YAML document; remove the extra "---"',
}

/** `mode: 0644` / `mode: 644`: YAML 1.2 reads these as decimal, but every chmod user means octal. */
function readModesAsOctal(doc: Document): void {
  visit(doc, {
    Pair(_, pair) {
      const v = pair.value
      if (!isScalar(pair.key) || pair.key.value !== 'mode' || !isScalar(v) || typeof v.value !== 'number')
        return
      const src = (v as { source?: string }).source ?? ''
      if (/^0?[0-7]{1,4}$/.test(src)) v.value = Number.parseInt(src, 8)
    },
  })
}

function findPair(
  doc: Document,
  node: unknown,
  seg: PropertyKey,
  depth = 0,
): Pair<unknown, unknown> | undefined {
  if (!isMap(node) || depth > 10) return undefined
  const direct = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg))
  if (direct) return direct as Pair<unknown, unknown>
  // merge keys (`<<: *defaults`): the key lives in the anchored mapping
  for (const p of node.items) {
    if (!isScalar(p.key) || p.key.value !== '<<') continue
    const sources = isSeq(p.value) ? p.value.items : [p.value]
    for (const s of sources) {
      const found = findPair(doc, isAlias(s) ? s.resolve(doc) : s, seg, depth + 1)
      if (found) return found
    }
  }
  return undefined
}

function makeLocate(doc: Document, lc: LineCounter): YamlSource['locate'] {
  const pos = (offset: number) => {
    const { line, col } = lc.linePos(offset)
    return { line, column: col }
  }
  return (path, at) => {
    let node: unknown = doc.contents
    let key: Node | undefined
    for (const seg of path) {
      if (isAlias(node)) node = node.resolve(doc)
      const pair = findPair(doc, node, seg)
      if (pair) {
        key = pair.key as Node
        node = pair.value
      } else if (isSeq(node) && typeof seg === 'number' && node.items[seg] !== undefined) {
        key = undefined
        node = node.items[seg]
      } else {
        // not in the file (a default, or a key that is missing): point at the deepest thing that is
        return pos((key ?? (node as Node | null))?.range?.[0] ?? 0)
      }
    }
    const valueNode = isPair(node) ? undefined : (node as Node | null)
    const emptyValue = !valueNode || (isScalar(valueNode) && valueNode.value === null)
    const target = at === 'key' || emptyValue ? (key ?? valueNode) : valueNode
    return pos(target?.range?.[0] ?? 0)
  }
}

/** Parses YAML text; syntax errors come back with their positions instead of being thrown. */
export function readYaml(text: string): YamlSource {
  const lc = new Counter()
  const doc = parseDocument(text, { lineCounter: lc, merge: true, prettyErrors: true, uniqueKeys: true })
  const errors = doc.errors.map((e) => {
    const at = e.linePos?.[0] ?? { line: 1, col: 1 }
    const message = (e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')
    const hint = SYNTAX_HINTS[e.code]
    return { line: at.line, column: at.col, message: `YAML: ${message}`, ...(hint ? { hint } : {}) }
  })
  if (errors.length === 0) readModesAsOctal(doc)
  const raw = errors.length === 0 ? doc.toJS({ maxAliasCount: 1000 }) : undefined
  return { raw, errors, locate: makeLocate(doc, lc) }
}
