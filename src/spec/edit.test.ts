import assert from 'node:assert/strict'
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { GrailError } from '../errors.js'
import type { StepToAdd } from './edit.js'
import { appendImageSteps, appendImageStepsToText } from './edit.js'
import { loadProject } from './index.js'

const REPO = join(fileURLToPath(import.meta.url), '..', '..', '..')
const FILE = '/p/grail.yaml'
const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'grail-edit-'))
  dirs.push(dir)
  return dir
}

const lines = (...ls: string[]) => `${ls.join('\n')}\n`

/**
 * The text inserted into `before` to give `after`; fails unless that is the only change. Where that is
 * ambiguous, the insertion is taken as late as it can be (the edit adds "\n" + lines at the end of a line).
 */
function inserted(before: string, after: string): string {
  let s = 0
  while (s < before.length && before[before.length - 1 - s] === after[after.length - 1 - s]) s++
  const p = before.length - s
  assert.equal(after.slice(0, p), before.slice(0, p), `more than an insertion changed:\n${after}`)
  return after.slice(p, after.length - s)
}

function stepsOf(text: string, image: string): unknown {
  return (parse(text) as { images: Record<string, { steps?: unknown }> }).images[image]?.steps
}

function thrown(fn: () => unknown): GrailError {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof GrailError, `expected a GrailError, got ${String(err)}`)
    return err
  }
  assert.fail('expected an error')
}

const SPEC = lines(
  '# yaml-language-server: $schema=../../schema/grail.schema.json',
  '# top of file',
  'project: hello # inline after a value',
  '',
  'images:',
  '  base:',
  "    base: { debian: { suite: 'bookworm' } }",
  '    steps:',
  '      - run: "echo base"',
  '  hello:',
  '    base: image:base',
  '    steps:',
  '      # before the first step',
  '      - run: busybox --install -s /usr/local/bin',
  '      # between steps',
  '      - env: { PORT: "8080" } # inline after a step',
  '      - copy:',
  '          from: [a.conf]',
  '          to: /etc/app/',
  '        # belongs to the copy above',
  '    # after the steps block',
  '',
  '  bare:',
  '    base: debian:bookworm # no steps',
  '',
  'services:',
  '  web: { image: hello, replicas: 3, port: 8080 } # a service',
)

const COPY: StepToAdd = { copy: { from: 'site/', to: '/srv/www/' } }
const RUN: StepToAdd = { run: 'echo hi' }

describe('appendImageStepsToText', () => {
  it('adds the steps after the last one, and changes nothing else', () => {
    const out = appendImageStepsToText(SPEC, FILE, 'hello', [COPY, RUN], { comment: 'added by grail' })
    assert.equal(
      inserted(SPEC, out),
      lines(
        '',
        '      # added by grail',
        '      - copy:',
        '          from: site/',
        '          to: /srv/www/',
        '      - run: echo hi',
      ).slice(0, -1),
    )
    // inside hello: after the copy's own comment, before the one that closes the block
    assert.ok(out.includes('# belongs to the copy above\n      # added by grail\n'))
    assert.ok(out.includes('      - run: echo hi\n    # after the steps block\n'))
    assert.deepEqual(stepsOf(out, 'hello'), [
      { run: 'busybox --install -s /usr/local/bin' },
      { env: { PORT: '8080' } },
      { copy: { from: ['a.conf'], to: '/etc/app/' } },
      COPY,
      RUN,
    ])
    const before = parse(SPEC) as Record<string, unknown>
    const now = parse(out) as Record<string, unknown>
    assert.deepEqual(now.services, before.services)
    assert.deepEqual(stepsOf(out, 'base'), stepsOf(SPEC, 'base'))
  })

  it('gives an image without steps a steps list', () => {
    const out = appendImageStepsToText(SPEC, FILE, 'bare', [RUN], { comment: 'first' })
    assert.equal(
      inserted(SPEC, out),
      lines('', '    steps:', '      # first', '      - run: echo hi').slice(0, -1),
    )
    assert.deepEqual(stepsOf(out, 'bare'), [RUN])
    assert.deepEqual(stepsOf(out, 'hello'), stepsOf(SPEC, 'hello'))
  })

  it('fills in a steps key left empty', () => {
    const text = lines('images:', '  a:', '    base: x', '    steps: # to do', 'services: {}')
    const out = appendImageStepsToText(text, FILE, 'a', [RUN])
    assert.equal(inserted(text, out), '\n      - run: echo hi')
    assert.deepEqual(stepsOf(out, 'a'), [RUN])
  })

  it('appends to flow-style lists, on one line or with a comment on its own', () => {
    const text = lines(
      'images:',
      '  a:',
      '    base: x',
      '    steps: [ {run: a}, {expose: 8080} ] # flow',
      'x: 1',
    )
    const out = appendImageStepsToText(text, FILE, 'a', [COPY, RUN])
    inserted(text, out)
    assert.deepEqual(stepsOf(out, 'a'), [{ run: 'a' }, { expose: 8080 }, COPY, RUN])
    assert.match(out, /^ {4}steps: \[ \{run: a\}, \{expose: 8080\}, .* \] # flow$/m)

    const commented = appendImageStepsToText(text, FILE, 'a', [COPY], { comment: 'new' })
    inserted(text, commented)
    assert.match(commented, /\n {6}# new\n/)
    assert.deepEqual(stepsOf(commented, 'a'), [{ run: 'a' }, { expose: 8080 }, COPY])

    const empty = lines('images:', '  a: { base: x, steps: [] }')
    assert.deepEqual(stepsOf(appendImageStepsToText(empty, FILE, 'a', [RUN]), 'a'), [RUN])
    const noSteps = lines('images:', '  a: { base: x }')
    const added = appendImageStepsToText(noSteps, FILE, 'a', [RUN, COPY], { comment: 'c' })
    inserted(noSteps, added)
    assert.deepEqual(stepsOf(added, 'a'), [RUN, COPY])
  })

  it('writes strings that need care so that they read back the same', () => {
    const tricky: StepToAdd[] = [
      { run: 'set -e\nmake\nmake install\n' },
      { env: { PORT: '8080', FLAG: 'true', EMPTY: '', HASH: 'a #b' } },
      { label: { 'x: y': '- z' } },
    ]
    for (const text of [SPEC, lines('images:', '  a: { base: x, steps: [{run: a}] }')]) {
      const image = text === SPEC ? 'hello' : 'a'
      const out = appendImageStepsToText(text, FILE, image, tricky)
      inserted(text, out)
      assert.deepEqual((stepsOf(out, image) as unknown[]).slice(-3), tricky)
    }
  })

  it('follows the file: its indentation, compact lists, CRLF and a missing final newline', () => {
    const four = 'images:\n    a:\n        base: x\n'
    assert.equal(
      inserted(four, appendImageStepsToText(four, FILE, 'a', [COPY])),
      '\n        steps:\n            - copy:\n                  from: site/\n                  to: /srv/www/',
    )
    const compact = lines('images:', '  a:', '    steps:', '    - run: a', '  b:', '    base: x')
    assert.equal(
      inserted(compact, appendImageStepsToText(compact, FILE, 'b', [RUN])),
      '\n    steps:\n    - run: echo hi',
    )
    const crlf = 'images:\r\n  a:\r\n    steps:\r\n      - run: a\r\nservices: {}\r\n'
    const out = appendImageStepsToText(crlf, FILE, 'a', [RUN], { comment: 'c' })
    assert.equal(inserted(crlf, out), '\r\n      # c\r\n      - run: echo hi')
    const noEol = 'images:\n  a:\n    steps:\n      - run: a'
    assert.equal(appendImageStepsToText(noEol, FILE, 'a', [RUN]), `${noEol}\n      - run: echo hi`)
  })

  it('returns the text unchanged when there is nothing to add', () => {
    assert.equal(appendImageStepsToText(SPEC, FILE, 'hello', []), SPEC)
  })

  it('refuses a spec that is not YAML, and shows the steps to add by hand', () => {
    const err = thrown(() =>
      appendImageStepsToText('export default {}', '/p/grail.config.ts', 'hello', [COPY]),
    )
    assert.equal(err.code, 'SPEC_NOT_EDITABLE')
    assert.match(err.message, /grail\.config\.ts.*images\.hello\.steps/)
    assert.match(err.hint ?? '', /by hand/)
    assert.ok(err.hint?.includes('{"copy":{"from":"site/","to":"/srv/www/"}}'))
  })

  it('refuses steps behind an alias or a merge key', () => {
    const text = lines('common: &c [ {run: a} ]', 'images:', '  a:', '    base: x', '    steps: *c')
    const err = thrown(() => appendImageStepsToText(text, FILE, 'a', [RUN]))
    assert.equal(err.code, 'SPEC_NOT_EDITABLE')
    assert.match(err.message, /images\.a\.steps is a YAML alias/)
    assert.match(err.hint ?? '', /- run: echo hi/)
    const merged = lines('x: &x { base: b, steps: [ {run: a} ] }', 'images:', '  a:', '    <<: *x')
    assert.equal(thrown(() => appendImageStepsToText(merged, FILE, 'a', [RUN])).code, 'SPEC_NOT_EDITABLE')
  })

  it('names the images there are when the image is unknown', () => {
    const err = thrown(() => appendImageStepsToText(SPEC, FILE, 'helo', [RUN]))
    assert.equal(err.code, 'UNKNOWN_IMAGE')
    assert.match(err.message, /grail\.yaml: no image "helo"/)
    assert.match(err.hint ?? '', /did you mean "hello"\? \(the images are "base", "hello" and "bare"\)/)
    for (const text of ['project: x\n', '', 'images: [a]\n']) {
      const e = thrown(() => appendImageStepsToText(text, FILE, 'hello', [RUN]))
      assert.equal(e.code, 'UNKNOWN_IMAGE')
      assert.match(e.message, /grail\.yaml.*no image "hello"/)
      assert.match(e.hint ?? '', /images\.hello/)
    }
  })

  it('refuses steps that are not a list, naming the key and its line', () => {
    for (const value of ['{ run: a }', 'run a', '~']) {
      const text = lines('images:', '  hello:', '    base: x', `    steps: ${value}`)
      const err = thrown(() => appendImageStepsToText(text, FILE, 'hello', [RUN]))
      assert.equal(err.code, 'SPEC_INVALID')
      assert.match(err.message, /grail\.yaml:4:\d+: images\.hello\.steps is .*not a list of steps/)
      assert.match(err.hint ?? '', /list/)
    }
    const err = thrown(() => appendImageStepsToText(lines('images:', '  hello: x'), FILE, 'hello', [RUN]))
    assert.equal(err.code, 'SPEC_INVALID')
    assert.match(err.message, /images\.hello is .*not a mapping/)
  })

  it('reports YAML syntax errors with line and column', () => {
    const text = lines('images:', '  hello:', '    steps:', '      - run: a', '     bad: [')
    const err = thrown(() => appendImageStepsToText(text, FILE, 'hello', [RUN]))
    assert.equal(err.code, 'SPEC_INVALID')
    assert.match(err.message, /^\/p\/grail\.yaml:\d+:\d+ {2}YAML: .*images\.hello\.steps/)
    assert.ok(err.details.length > 0)
    assert.ok(err.hint)
    const alias = thrown(() => appendImageStepsToText('images:\n  a: *nope\n', FILE, 'a', [RUN]))
    assert.equal(alias.code, 'SPEC_INVALID')
    assert.match(alias.message, /Unresolved alias/)
  })
})

describe('appendImageSteps', () => {
  for (const example of ['hello', 'counter']) {
    it(`edits examples/${example} so that the loader still accepts it`, async () => {
      const dir = join(await tempDir(), example)
      await cp(join(REPO, 'examples', example), dir, { recursive: true })
      const file = join(dir, 'grail.yaml')
      await writeFile(join(dir, 'site', 'extra.txt'), 'extra\n')
      const original = await readFile(file, 'utf8')
      const before = await loadProject(dir, { env: {} })
      const out = await appendImageSteps(
        file,
        example,
        [{ copy: 'site/ /srv/extra/' }, { copy: { from: 'site/extra.txt', to: '/srv/www/', mode: '0640' } }],
        { comment: 'added by a test' },
      )
      assert.equal(await readFile(file, 'utf8'), out)
      assert.ok(
        inserted(original, out).startsWith('\n      # added by a test\n      - copy: site/ /srv/extra/\n'),
      )
      const project = await loadProject(dir, { env: {} })
      const steps = project.images[example]?.steps ?? []
      assert.equal(steps.length, (before.images[example]?.steps.length ?? 0) + 2)
      assert.deepEqual(steps.slice(-2), [
        { kind: 'copy', from: ['site/'], to: '/srv/extra/', exclude: [] },
        { kind: 'copy', from: ['site/extra.txt'], to: '/srv/www/', exclude: [], mode: 0o640 },
      ])
      assert.deepEqual(project.services, before.services)
    })
  }

  it('replaces the file atomically, keeping its mode and leaving no temp file', async () => {
    const dir = await tempDir()
    const file = join(dir, 'grail.yaml')
    await writeFile(file, SPEC, { mode: 0o640 })
    const out = await appendImageSteps(file, 'hello', [RUN])
    assert.equal(await readFile(file, 'utf8'), out)
    assert.equal((await stat(file)).mode & 0o777, 0o640)
    assert.deepEqual(await readdir(dir), ['grail.yaml'])
  })

  it('leaves the file alone when the edit is refused', async () => {
    const dir = await tempDir()
    const file = join(dir, 'grail.yaml')
    await writeFile(file, SPEC)
    await assert.rejects(appendImageSteps(file, 'nope', [RUN]), { code: 'UNKNOWN_IMAGE' })
    assert.equal(await readFile(file, 'utf8'), SPEC)
    assert.deepEqual(await readdir(dir), ['grail.yaml'])
    await assert.rejects(appendImageSteps(join(dir, 'missing.yaml'), 'hello', [RUN]), { code: 'NO_SPEC' })
  })
})
