/**
 * Editing grail.yaml in place: append build steps to one image and leave every other byte alone. The
 * Document API finds where the steps go; the edit itself is one text insertion, so comments, quoting,
 * key order and blank lines elsewhere survive exactly (re-stringifying the document would not keep them).
 */
import { readFile, realpath, stat } from 'node:fs/promises'
import { basename, extname } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import type { Document, Node, Pair, YAMLMap } from 'yaml'
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  stringify,
  Document as YamlDocument,
} from 'yaml'
import { GrailError, isErrno } from '../errors.js'
import { writeAtomic } from '../util/write-atomic.js'
import { displayFile } from './problems.js'
import { didYouMean, listAnd } from './suggest.js'
import { readYaml } from './yaml-source.js'

/**
 * One step exactly as it should appear in YAML: a mapping with one key naming its kind, such as
 * `{ copy: { from: 'site/', to: '/srv/www/' } }` or `{ copy: 'site/ /srv/www/' }` (see `StepInput`).
 * Give file modes as octal strings (`'0644'`): the loader reads a bare `644` or `420` as octal.
 */
export interface StepToAdd {
  [kind: string]: unknown
}

export interface AppendStepsOptions {
  /** written as `# <comment>` (one line per line) above the first added step */
  comment?: string
}

/** Where the new text goes, and what it is. */
interface Insertion {
  at: number
  text: string
}

interface Ctx {
  text: string
  doc: Document
  /** the document as plain data */
  raw: unknown
  lc: LineCounter
  shown: string
  image: string
  steps: readonly StepToAdd[]
  comment: string | undefined
  eol: string
  unit: number
}

const PARSE_OPTIONS = { merge: true, prettyErrors: true, uniqueKeys: true } as const
const TO_JS = { maxAliasCount: 1000 }

function column(text: string, offset: number): number {
  return offset - (text.lastIndexOf('\n', offset - 1) + 1)
}

/** Leading spaces of the line holding `offset`. */
function lineIndent(text: string, offset: number): number {
  const start = text.lastIndexOf('\n', offset - 1) + 1
  return /^ */.exec(text.slice(start))?.[0].length ?? 0
}

/** The end of the line holding `offset`, before its `\n` or `\r\n`. */
function endOfLine(text: string, offset: number): number {
  const nl = text.indexOf('\n', offset)
  if (nl === -1) return text.length
  return text[nl - 1] === '\r' ? nl - 1 : nl
}

/**
 * Where to add lines after a node ending at `end` (block values end after their newline): the end of its
 * last line, past comment lines indented deeper than `indent`, which belong to the node.
 */
function afterNode(text: string, end: number, indent: number): number {
  let at = text[end - 1] === '\n' ? end - (text[end - 2] === '\r' ? 2 : 1) : endOfLine(text, end)
  for (;;) {
    const next = text.indexOf('\n', at) + 1
    if (next === 0 || next >= text.length) return at
    const m = /^( *)#/.exec(text.slice(next, next + 200))
    if (!m || (m[1]?.length ?? 0) <= indent) return at
    at = endOfLine(text, next)
  }
}

function commentLines(ctx: Ctx, pad: string): string[] {
  if (ctx.comment === undefined) return []
  return ctx.comment.split(/\r?\n/).map((l) => `${pad}#${l.trim() === '' ? '' : ` ${l.trimEnd()}`}`)
}

/** `- step` lines at column `dash`, the comment first. */
function blockLines(ctx: Ctx, dash: number): string[] {
  const pad = ' '.repeat(dash)
  const items = stringify(ctx.steps, { indent: ctx.unit, lineWidth: 0 }).split('\n')
  return [...commentLines(ctx, pad), ...items.filter((l) => l !== '').map((l) => pad + l)]
}

/** `item, item` for a flow sequence; a comment needs a line break, so then the items start a new line. */
function flowItems(ctx: Ctx, indent: number): { lead: string; items: string } {
  const items = ctx.steps.map((s) => {
    const flow = new YamlDocument(s).toString({ collectionStyle: 'flow', lineWidth: 0 }).trim()
    // a multi-line string makes yaml break the collection over lines; JSON (also YAML) stays on one
    return flow.includes('\n') ? JSON.stringify(s) : flow
  })
  const pad = ' '.repeat(indent)
  const lead =
    ctx.comment === undefined ? ' ' : `${ctx.eol}${commentLines(ctx, pad).join(ctx.eol)}${ctx.eol}${pad}`
  return { lead, items: items.join(', ') }
}

function where(ctx: Ctx, node: Node | null | undefined): string {
  const offset = node?.range?.[0]
  if (offset === undefined) return ctx.shown
  const { line, col } = ctx.lc.linePos(offset)
  return `${ctx.shown}:${line}:${col}`
}

function describe(node: unknown): string {
  if (isMap(node)) return 'a mapping'
  if (isSeq(node)) return 'a list'
  if (isScalar(node))
    return node.value === null ? 'an empty value' : `${typeof node.value} "${node.source ?? node.value}"`
  return 'something else'
}

function notEditable(ctx: Ctx, node: Node | null | undefined, path: string, why: string): GrailError {
  return new GrailError(
    'SPEC_NOT_EDITABLE',
    `${where(ctx, node)}: ${path} ${why}, so it cannot be edited safely`,
    {
      hint: `add the steps to ${path} by hand:\n${blockLines(ctx, 2).join('\n')}`,
    },
  )
}

function directPair(map: YAMLMap, key: string): Pair<Node, unknown> | undefined {
  return map.items.find((p) => isScalar(p.key) && String(p.key.value) === key) as
    | Pair<Node, unknown>
    | undefined
}

/** `<<: *defaults`; with `merge: true`, yaml gives the key the value `Symbol(<<)`, not the string. */
function isMergeKey(pair: Pair<unknown, unknown>): boolean {
  return isScalar(pair.key) && (typeof pair.key.value === 'symbol' || pair.key.value === '<<')
}

/** The file's indentation step, from the keys around the image; 2 when there is nothing to go by. */
function indentUnit(text: string, imagesKey: Node, images: YAMLMap, imageKey: Node, image: YAMLMap): number {
  const col = (n: Node | null | undefined) => (n?.range ? column(text, n.range[0]) : undefined)
  const firstKey = (m: YAMLMap) => (m.flow ? undefined : (m.items[0]?.key as Node | undefined))
  const pairs: Array<[number | undefined, number | undefined]> = [
    [col(imageKey), col(firstKey(image))],
    [col(imagesKey), images.flow ? undefined : col(imageKey)],
  ]
  for (const [outer, inner] of pairs) {
    if (outer !== undefined && inner !== undefined && inner > outer && inner - outer <= 8)
      return inner - outer
  }
  return 2
}

/** Whether block lists in this file sit at their key's column (`steps:\n- run: x`). */
function compactLists(text: string, images: YAMLMap): boolean {
  for (const p of images.items) {
    if (!isMap(p.value) || p.value.flow) continue
    const steps = directPair(p.value, 'steps')
    const seq = steps?.value
    if (steps && isSeq(seq) && !seq.flow && seq.range && steps.key.range) {
      return column(text, seq.range[0]) === column(text, steps.key.range[0])
    }
  }
  return false
}

/** A `steps` key, with the steps, added at the end of the image's mapping. */
function addStepsKey(ctx: Ctx, image: YAMLMap, compact: boolean): Insertion {
  const last = image.items[image.items.length - 1]
  const lastEnd = last && ((last.value as Node | null)?.range?.[1] ?? (last.key as Node | null)?.range?.[1])
  if (image.flow) {
    const indent = lineIndent(ctx.text, image.range?.[0] ?? 0) + ctx.unit
    const { lead, items } = flowItems(ctx, indent)
    if (lastEnd === undefined) return { at: (image.range?.[0] ?? 0) + 1, text: ` steps: [${lead}${items} ]` }
    return { at: lastEnd, text: `, steps: [${lead}${items} ]` }
  }
  // a block mapping has at least one pair (an empty one would be null, not a mapping)
  const keyCol = column(ctx.text, (last?.key as Node | undefined)?.range?.[0] ?? 0)
  const lines = [`${' '.repeat(keyCol)}steps:`, ...blockLines(ctx, keyCol + (compact ? 0 : ctx.unit))]
  return { at: afterNode(ctx.text, lastEnd ?? 0, keyCol), text: ctx.eol + lines.join(ctx.eol) }
}

/** The insertion that appends the steps, or a `GrailError` saying why the file cannot take them. */
function planInsertion(ctx: Ctx): Insertion {
  const { doc, text, shown, image: name } = ctx
  const root = doc.contents
  const imagesPair = isMap(root) ? directPair(root, 'images') : undefined
  const images = imagesPair?.value
  if (isAlias(images)) throw notEditable(ctx, images, 'images', 'is a YAML alias')
  if (!imagesPair || !isMap(images)) {
    const found = imagesPair
      ? `images is ${describe(images)}, not a mapping of images`
      : 'there is no images key'
    throw new GrailError('UNKNOWN_IMAGE', `${where(ctx, images as Node)}: no image "${name}": ${found}`, {
      hint: `there are no images; add images.${name} with a base first (see docs/spec.md)`,
    })
  }
  const imagePair = directPair(images, name)
  if (!imagePair) {
    const names = Object.keys((ctx.raw as { images: Record<string, unknown> }).images ?? {})
    if (names.includes(name)) throw notEditable(ctx, images, `images.${name}`, 'comes from a merge key (<<)')
    const dym = didYouMean(name, names)
    const known = names.length === 0 ? 'there are no images yet' : `the images are ${listAnd(names)}`
    throw new GrailError('UNKNOWN_IMAGE', `${shown}: no image "${name}" under images`, {
      hint: dym ? `${dym} (${known})` : known,
    })
  }
  const image = imagePair.value as Node | null
  if (isAlias(image)) throw notEditable(ctx, image, `images.${name}`, 'is a YAML alias')
  if (!isMap(image)) {
    throw new GrailError(
      'SPEC_INVALID',
      `${where(ctx, image ?? imagePair.key)}: images.${name} is ${describe(image)}, not a mapping`,
      {
        hint: `an image is a mapping with base and steps, e.g. images.${name}: { base: debian:bookworm }`,
      },
    )
  }
  ctx.unit = indentUnit(text, imagesPair.key, images, imagePair.key, image)
  const compact = compactLists(text, images)
  const stepsPair = directPair(image, 'steps')
  if (!stepsPair) {
    if (image.items.some(isMergeKey)) throw notEditable(ctx, image, `images.${name}`, 'uses a merge key (<<)')
    return addStepsKey(ctx, image, compact)
  }
  const path = `images.${name}.steps`
  const steps = stepsPair.value as Node | null
  if (isAlias(steps)) throw notEditable(ctx, steps, path, 'is a YAML alias')
  if (isSeq(steps) && steps.range) {
    const last = steps.items[steps.items.length - 1] as Node | undefined
    if (steps.flow) {
      const { lead, items } = flowItems(ctx, lineIndent(text, steps.range[0]) + ctx.unit)
      if (last?.range) return { at: last.range[1], text: `,${lead}${items}` }
      const open = steps.range[0] + 1
      return { at: open, text: `${lead}${items}${text[open] === ' ' ? '' : ' '}` }
    }
    const dash = column(text, steps.range[0])
    return {
      at: afterNode(text, last?.range?.[1] ?? steps.range[1], dash),
      text: ctx.eol + blockLines(ctx, dash).join(ctx.eol),
    }
  }
  // `steps:` with nothing after it (an unfinished list): the items go on the next lines
  if (isScalar(steps) && steps.value === null && steps.source === '' && !image.flow && stepsPair.key.range) {
    const keyCol = column(text, stepsPair.key.range[0])
    const lines = blockLines(ctx, keyCol + (compact ? 0 : ctx.unit))
    return { at: endOfLine(text, stepsPair.key.range[1]), text: ctx.eol + lines.join(ctx.eol) }
  }
  throw new GrailError(
    'SPEC_INVALID',
    `${where(ctx, steps ?? stepsPair.key)}: ${path} is ${describe(steps)}, not a list of steps`,
    {
      hint: `write ${path} as a list, one "- " item per step (or steps: [] for none)`,
    },
  )
}

/** The original spec with the steps appended, as plain data: what the edited text must parse to. */
function expected(ctx: Ctx): unknown {
  const raw = structuredClone(ctx.raw) as { images: Record<string, { steps?: unknown[] }> }
  const target = raw.images[ctx.image] as { steps?: unknown[] }
  target.steps = [...(target.steps ?? []), ...(JSON.parse(JSON.stringify(ctx.steps)) as unknown[])]
  return raw
}

/** The document as plain data; an alias to a missing anchor only shows up here, as a ReferenceError. */
function plainData(doc: Document, shown: string, image: string): unknown {
  try {
    return doc.toJS(TO_JS)
  } catch (err) {
    if (!(err instanceof ReferenceError)) throw err
    throw new GrailError('SPEC_INVALID', `${shown}: ${err.message} (while adding to images.${image}.steps)`, {
      hint: 'define each anchor (&name) before its aliases (*name)',
      cause: err,
    })
  }
}

/**
 * Pure core of `appendImageSteps`: `text` (the YAML spec at `file`, which names it in errors) with `steps`
 * appended to `images.<image>.steps`, and nothing else changed: the result is `text` with the new lines
 * inserted. Throws `GrailError`s: SPEC_NOT_EDITABLE (not a YAML file, or the steps live behind an alias or
 * merge key), UNKNOWN_IMAGE, SPEC_INVALID (YAML syntax errors, or `images.<image>.steps` not a list).
 */
export function appendImageStepsToText(
  text: string,
  file: string,
  image: string,
  steps: readonly StepToAdd[],
  opts: AppendStepsOptions = {},
): string {
  const shown = displayFile(file)
  const ext = extname(file)
  if (ext !== '.yaml' && ext !== '.yml') {
    const lines = [
      ...(opts.comment === undefined ? [] : [`// ${opts.comment}`]),
      ...steps.map((s) => `${JSON.stringify(s)},`),
    ]
    throw new GrailError(
      'SPEC_NOT_EDITABLE',
      `${shown}: only YAML specs can be edited, cannot add to images.${image}.steps`,
      {
        hint: `add the steps to images.${image}.steps in ${basename(file)} by hand:\n${lines.map((l) => `  ${l}`).join('\n')}`,
      },
    )
  }
  const lc = new LineCounter()
  const doc = parseDocument(text, { ...PARSE_OPTIONS, lineCounter: lc })
  if (doc.errors.length > 0) {
    const errors = readYaml(text).errors
    const problems = errors.map((e) => `${shown}:${e.line}:${e.column}  ${e.message}`)
    const first = errors[0]
    throw new GrailError(
      'SPEC_INVALID',
      `${problems[0] ?? `${shown}: YAML syntax error`} (while adding to images.${image}.steps)`,
      {
        details: problems,
        hint: first?.hint ?? 'fix the YAML syntax, then add the steps again',
      },
    )
  }
  if (steps.length === 0) return text
  const eol = text.includes('\r\n') ? '\r\n' : '\n'
  const raw = plainData(doc, shown, image)
  const ctx: Ctx = { text, doc, raw, lc, shown, image, steps, comment: opts.comment, eol, unit: 2 }
  const { at, text: added } = planInsertion(ctx)
  const result = text.slice(0, at) + added + text.slice(at)
  const check = parseDocument(result, PARSE_OPTIONS)
  if (check.errors.length > 0 || !isDeepStrictEqual(check.toJS(TO_JS), expected(ctx))) {
    throw new Error(
      `adding steps to images.${image}.steps of ${shown} gave YAML that does not read back as intended; this is a bug\n${added}`,
    )
  }
  return result
}

/**
 * Appends `steps` to `images.<image>.steps` of the YAML spec at `file`, keeping comments and layout (a
 * `# <comment>` line goes above the first added step when `comment` is given), and returns the new text,
 * already written: to a temp file in the same directory, then renamed over the spec (through a symlink
 * to its target, with the file's mode kept), so a crash leaves the old spec or the new one. Nothing is
 * written when `steps` is empty. Throws the `GrailError`s of `appendImageStepsToText`, and NO_SPEC when
 * the file does not exist.
 */
export async function appendImageSteps(
  file: string,
  image: string,
  steps: readonly StepToAdd[],
  opts: AppendStepsOptions = {},
): Promise<string> {
  let target: string
  let text: string
  try {
    target = await realpath(file)
    text = await readFile(target, 'utf8')
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err
    throw new GrailError('NO_SPEC', `${displayFile(file)} does not exist`, {
      hint: 'pass the path of an existing grail.yaml',
    })
  }
  const result = appendImageStepsToText(text, file, image, steps, opts)
  if (result === text) return result
  const { mode } = await stat(target)
  await writeAtomic(target, result, { mode: mode & 0o7777 })
  return result
}
