/**
 * The YAML examples of the docs, extracted and classified the way test/e2e/docs-examples.test.ts checks
 * them (the convention is documented in docs/development.md, "YAML examples in the docs"):
 *
 * - every ```yaml / ```yml fence in README.md and docs/*.md, and every examples/<name>/grail.yaml;
 * - a fence whose line before is `<!-- not a grail spec -->` is skipped, on purpose and by name;
 * - a block with a top-level `project` is a full spec: validated by Grail's loader as written;
 * - a block whose top-level keys are all spec sections (`images`, `services`, `environments`, `policies`)
 *   is a part, and a block that is a list of one-key mappings is an image's step list: each is embedded
 *   into a minimal spec (see `embedPart`) and validated; problems point at lines of the block itself;
 * - anything else is an error: mark it or make it a spec.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { SpecInvalidError, formatProblem, projectFromRaw } from '../../src/spec/index.js'
import type { SpecProblem } from '../../src/spec/index.js'
import type { YamlSource } from '../../src/spec/yaml-source.js'
import { readYaml } from '../../src/spec/yaml-source.js'

export const NOT_A_SPEC_MARKER = '<!-- not a grail spec -->'
const SECTIONS = ['images', 'services', 'environments', 'policies']

export interface YamlBlock {
  /** repo-relative file */
  file: string
  /** 1-based line of the block's first YAML line in `file` */
  line: number
  text: string
  marked: boolean
}

/** Every ```yaml block of a markdown file, with the line its content starts on. */
export function yamlBlocks(repo: string, file: string): YamlBlock[] {
  const lines = readFileSync(join(repo, file), 'utf8').split('\n')
  const out: YamlBlock[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*(\S*)/.exec(lines[i] as string)
    if (!open) continue
    const fence = open[2] as string
    let end = i + 1
    while (end < lines.length && !(lines[end] as string).trim().startsWith(fence)) end++
    const lang = (open[3] as string).toLowerCase()
    if (lang === 'yaml' || lang === 'yml') {
      out.push({
        file,
        line: i + 2,
        text: lines.slice(i + 1, end).join('\n'),
        marked: (lines[i - 1] ?? '').trim() === NOT_A_SPEC_MARKER,
      })
    }
    i = end
  }
  return out
}

/** README.md, docs/*.md and examples/<name>/grail.yaml, as blocks (a whole file is one block at line 1). */
export function allYamlExamples(repo: string): YamlBlock[] {
  const docs = readdirSync(join(repo, 'docs'))
    .filter((n) => n.endsWith('.md'))
    .sort()
    .map((n) => `docs/${n}`)
  const blocks = ['README.md', ...docs].flatMap((f) => yamlBlocks(repo, f))
  for (const name of readdirSync(join(repo, 'examples')).sort()) {
    const file = `examples/${name}/grail.yaml`
    let text: string
    try {
      text = readFileSync(join(repo, file), 'utf8')
    } catch {
      continue
    }
    blocks.push({ file, line: 1, text, marked: false })
  }
  return blocks
}

export type Kind = 'spec' | 'part' | 'steps' | 'unknown'

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

/** What a block is: a full spec, a part of one, an image's step list, or none of these. */
export function kindOf(raw: unknown): Kind {
  if (isObj(raw) && 'project' in raw) return 'spec'
  if (isObj(raw) && Object.keys(raw).length > 0 && Object.keys(raw).every((k) => SECTIONS.includes(k)))
    return 'part'
  if (Array.isArray(raw) && raw.length > 0 && raw.every((s) => isObj(s) && Object.keys(s).length === 1))
    return 'steps'
  return 'unknown'
}

/**
 * A part made whole, mechanically: `project: docs-example`; a step list becomes the steps of image
 * `example`; a service without `image` gets `image: <its own name>`; every image a service names that
 * the part does not define is added empty (`{}`: scratch, no steps); a service an environment overrides
 * that the part does not define is added as `{image: example, port: 8080}`. Nothing of the part itself
 * is changed, so every problem found is the part's own.
 */
export function embedPart(raw: unknown, kind: 'part' | 'steps'): Obj {
  const part: Obj = kind === 'steps' ? { images: { example: { steps: raw } } } : structuredClone(raw as Obj)
  const spec: Obj = { project: 'docs-example', ...part }
  const images: Obj = isObj(spec.images) ? spec.images : {}
  const services: Obj = isObj(spec.services) ? spec.services : {}
  for (const env of Object.values(isObj(spec.environments) ? spec.environments : {})) {
    if (!isObj(env) || !isObj(env.services)) continue
    for (const name of Object.keys(env.services))
      if (!(name in services)) services[name] = { image: 'example', port: 8080 }
  }
  for (const [name, svc] of Object.entries(services)) {
    if (!isObj(svc)) continue
    if (svc.image === undefined) svc.image = name
    if (typeof svc.image === 'string' && !(svc.image in images)) images[svc.image] = {}
  }
  if (Object.keys(images).length > 0) spec.images = images
  if (Object.keys(services).length > 0) spec.services = services
  return spec
}

/** A YAML source whose line numbers are those of the block in its file (paths under the block's root). */
function blockSource(block: YamlBlock, prefix: number): YamlSource {
  const src = readYaml(block.text)
  return {
    ...src,
    locate(path, at) {
      const p = src.locate(path.slice(prefix), at)
      return { line: p.line + block.line - 1, column: p.column }
    },
  }
}

export interface Checked {
  block: YamlBlock
  kind: Kind
  /** the raw value of a full spec (deploy candidates) */
  raw?: unknown
  problems: string[]
}

/** Validates one block with Grail's own loader; problems are `file:line:col  path: message` lines. */
export function checkBlock(block: YamlBlock, repo: string): Checked {
  const src = readYaml(block.text)
  if (src.errors.length > 0)
    return {
      block,
      kind: 'unknown',
      problems: src.errors.map((e) => `${block.file}:${e.line + block.line - 1}: ${e.message}`),
    }
  const raw = src.raw
  const kind = kindOf(raw)
  if (kind === 'unknown')
    return {
      block,
      kind,
      problems: [
        `${block.file}:${block.line}: a yaml block that is neither a grail spec, a part of one (only ${SECTIONS.join(', ')}), nor a step list; put ${NOT_A_SPEC_MARKER} on the line before its fence if it is not meant to be one`,
      ],
    }
  const value = kind === 'spec' ? raw : embedPart(raw, kind)
  try {
    projectFromRaw(value, join(repo, block.file), {
      cwd: repo,
      env: {},
      source: blockSource(block, kind === 'steps' ? 3 : 0),
    })
    return { block, kind, ...(kind === 'spec' ? { raw } : {}), problems: [] }
  } catch (err) {
    if (!(err instanceof SpecInvalidError)) throw err
    return {
      block,
      kind,
      problems: err.problems.map((p: SpecProblem) => formatProblem({ ...p, file: block.file })),
    }
  }
}
