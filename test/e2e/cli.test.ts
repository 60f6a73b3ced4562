// The CLI as a script or a careless user meets it: --version, strict numbers, unknown instances, JSON
// errors of every kind, a reader that closes the pipe, paths that climb out of the image, the audit log,
// and status / logs / down while grail.yaml does not parse.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { freePort } from '../helpers/net.js'
import {
  GRAIL_BIN,
  REPO,
  busyboxProject,
  grail,
  parseJson,
  removeDir,
  tearDown,
  tempProject,
} from '../helpers/project.js'
import { httpdImages } from '../helpers/specs.js'

interface Status {
  instances: Array<{ id: string; health: string }>
}

const spec = (port: number, steps: string[] = []) => `project: cli
${httpdImages(steps)}services:
  web:
    image: web
    port: 8080
    publish: ${port}
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
`

/** The error object a `--json` command printed on stderr (one JSON object, nothing else). */
function jsonError(stderr: string): { code: string; message: string } {
  return (JSON.parse(stderr) as { error: { code: string; message: string } }).error
}

/** Runs grail with its stdout a pipe whose reader has gone away before anything is written. */
function withClosedStdout(args: string[], cwd: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [GRAIL_BIN, ...args], {
      cwd,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child.stdout.destroy()
    let stderr = ''
    child.stderr.on('data', (c) => {
      stderr += c
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }))
  })
}

describe('the grail CLI', () => {
  let dir: string
  let port: number
  let id: string

  before(async () => {
    port = await freePort()
    dir = await busyboxProject({
      'grail.yaml': spec(port),
      'site/index.html': 'hello\n',
    })
    const up = await grail(['up'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr + up.stdout)
    id = parseJson<Status>(await grail(['--json', 'status'], { cwd: dir })).instances[0]?.id ?? ''
  })
  after(async () => {
    await tearDown(dir)
  })

  test('grail --version prints the package version', async () => {
    const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }
    const res = await grail(['--version'])
    assert.equal(res.code, 0)
    assert.equal(res.stdout.trim(), pkg.version)
  })

  test('grail logs of an instance that does not exist exits 1 naming it', async () => {
    const res = await grail(['logs', 'nope'], { cwd: dir })
    assert.equal(res.code, 1)
    assert.match(res.stderr, /instance nope does not exist/)
  })

  test('numbers are whole numbers: logs -n abc and rollback web abc are refused', async () => {
    const tail = await grail(['logs', id, '-n', 'abc'], { cwd: dir })
    assert.equal(tail.code, 1)
    assert.match(tail.stderr, /-n, --tail <lines>.*"abc"/)
    const ok = await grail(['logs', id, '-n', '1'], { cwd: dir })
    assert.equal(ok.code, 0, ok.stderr)
    const rollback = await grail(['rollback', 'web', 'abc'], { cwd: dir })
    assert.equal(rollback.code, 1)
    assert.match(rollback.stderr, /release number.*"abc"/)
    assert.doesNotMatch(rollback.stderr, /NaN/)
  })

  test('pin and unpin print JSON with --json', async () => {
    const pinned = parseJson<{ name: string; version: number; pinned: boolean }>(
      await grail(['--json', 'pin', 'web@1'], { cwd: dir }),
    )
    assert.deepEqual([pinned.name, pinned.version, pinned.pinned], ['web', 1, true])
    const unpinned = parseJson<{ pinned: boolean }>(await grail(['--json', 'unpin', 'web@1'], { cwd: dir }))
    assert.equal(unpinned.pinned, false)
  })

  test('with --json, unknown commands, missing and bad arguments and user errors are JSON on stderr', async () => {
    const cases: Array<[string[], string]> = [
      [['--json', 'nope'], 'USAGE_UNKNOWN_COMMAND'],
      [['--json', 'logs'], 'USAGE_MISSING_ARGUMENT'],
      [['--json', 'logs', id, '-n', 'x'], 'USAGE_INVALID_ARGUMENT'],
      [['--json', 'status', '--nope'], 'USAGE_UNKNOWN_OPTION'],
      [['--json', 'logs', 'nope'], 'INSTANCE_NOT_FOUND'],
    ]
    for (const [args, code] of cases) {
      const res = await grail(args, { cwd: dir })
      assert.equal(res.code, 1, args.join(' '))
      assert.equal(jsonError(res.stderr).code, code, `${args.join(' ')}: ${res.stderr}`)
    }
  })

  test('grail status with its reader gone (| head -1) finishes without EPIPE', async () => {
    for (const args of [['status'], ['events'], ['--help']]) {
      const res = await withClosedStdout(args, dir)
      assert.equal(res.code, 0, `${args.join(' ')}: ${res.stderr}`)
      assert.doesNotMatch(res.stderr, /EPIPE/)
    }
  })

  test('grail events reads the audit log, with --since and --json', async () => {
    const all = parseJson<Array<{ kind: string; subject: string; at: string }>>(
      await grail(['--json', 'events'], { cwd: dir }),
    )
    const kinds = all.map((e) => e.kind)
    assert.ok(kinds.includes('image.built') && kinds.includes('release.active'), kinds.join(', '))
    assert.deepEqual(
      [...all].sort((a, b) => a.at.localeCompare(b.at)),
      all,
      'oldest first',
    )
    const recent = parseJson<unknown[]>(await grail(['--json', 'events', '--since', '1h'], { cwd: dir }))
    assert.equal(recent.length, all.length)
    const future = parseJson<unknown[]>(
      await grail(['--json', 'events', '--since', '2999-01-01'], { cwd: dir }),
    )
    assert.deepEqual(future, [])
    const human = await grail(['events'], { cwd: dir })
    assert.equal(human.code, 0)
    assert.match(human.stdout, /^AT\s+KIND\s+SUBJECT\s+ACTOR/)
    assert.match(human.stdout, /release\.active\s+web#1/)
    const bad = await grail(['events', '--since', 'yesterday-ish'], { cwd: dir })
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /--since "yesterday-ish" is neither a duration nor a date/)
  })

  test('status, logs and down work from state while grail.yaml has a YAML error', async () => {
    const good = await readFile(join(dir, 'grail.yaml'), 'utf8')
    await writeFile(join(dir, 'grail.yaml'), `${good}  oops: [\n`)
    try {
      const plan = await grail(['plan'], { cwd: dir })
      assert.equal(plan.code, 1, 'what needs the spec still refuses it')
      const status = await grail(['--json', 'status'], { cwd: dir })
      assert.equal(status.code, 0, status.stderr)
      assert.equal((JSON.parse(status.stdout) as Status).instances[0]?.id, id)
      assert.match(
        JSON.parse(status.stderr).warning.message,
        /grail\.yaml: 1 problem; working from the state/,
      )
      const human = await grail(['status'], { cwd: dir })
      assert.equal(human.code, 0, human.stderr)
      assert.match(human.stderr, /^warning: grail\.yaml: 1 problem/)
      const logs = await grail(['logs', id], { cwd: dir })
      assert.equal(logs.code, 0, logs.stderr)
      const down = await grail(['down'], { cwd: dir })
      assert.equal(down.code, 0, down.stderr)
      assert.match(down.stdout, /destroyed 1 instance/)
      await assert.rejects(fetch(`http://127.0.0.1:${port}/index.html`), 'the proxy is gone too')
    } finally {
      await writeFile(join(dir, 'grail.yaml'), good)
    }
  })
})

describe('the grail CLI without a deployment', () => {
  const dirs: string[] = []
  after(async () => {
    for (const d of dirs) await removeDir(d)
  })

  test('a copy destination that climbs out of the image is refused when the spec is read', async () => {
    for (const step of ['copy: site/ /../../../tmp/x', 'copy: { from: site/, to: /srv/../../x }']) {
      const dir = await tempProject({ 'grail.yaml': spec(1, [step]), 'site/index.html': 'x\n' })
      dirs.push(dir)
      const res = await grail(['build'], { cwd: dir })
      assert.equal(res.code, 1, res.stderr)
      assert.match(res.stderr, /images\.web\.steps\[1\].*climbs out with "\.\."/)
      assert.match(res.stderr, /hint: write the path without "\.\.", e\.g\. "\/(tmp\/)?x"/)
    }
  })

  test('a mistyped command or option is one line and a "did you mean", not the whole help', async () => {
    const cases: Array<[string[], RegExp, RegExp]> = [
      [['stauts'], /^error: unknown command 'stauts'$/, /^hint: did you mean status\? see `grail --help`$/],
      [
        ['status', '--jsn'],
        /^error: unknown option '--jsn'$/,
        /^hint: did you mean --json\? see `grail status --help`$/,
      ],
      [['-C', '/tmp', 'state', 'rset'], /^error: unknown command 'rset'$/, /^hint: did you mean reset\?/],
    ]
    for (const [args, error, hint] of cases) {
      const res = await grail(args)
      assert.equal(res.code, 1, args.join(' '))
      assert.equal(res.stdout, '', args.join(' '))
      const lines = res.stderr.trimEnd().split('\n')
      assert.equal(lines.length, 2, `${args.join(' ')}: ${res.stderr}`)
      assert.match(lines[0] as string, error)
      assert.match(lines[1] as string, hint)
    }
    // nothing to suggest: still one line and where the usage is
    const res = await grail(['frobnicate'])
    assert.equal(res.code, 1)
    assert.deepEqual(res.stderr.trimEnd().split('\n'), [
      "error: unknown command 'frobnicate'",
      'hint: see `grail --help`',
    ])
  })

  test('with --json, a mistyped command or option is one JSON object whose hint has the suggestion', async () => {
    for (const [args, code, message, suggestion] of [
      [['--json', 'stauts'], 'USAGE_UNKNOWN_COMMAND', "unknown command 'stauts'", 'did you mean status?'],
      [
        ['--json', 'status', '--jsn'],
        'USAGE_UNKNOWN_OPTION',
        "unknown option '--jsn'",
        'did you mean --json?',
      ],
    ] as const) {
      const res = await grail([...args])
      assert.equal(res.code, 1, args.join(' '))
      assert.equal(res.stderr.trimEnd().split('\n').length, 1, res.stderr)
      const err = JSON.parse(res.stderr) as { error: { code: string; message: string; hint: string } }
      assert.equal(err.error.code, code)
      assert.equal(err.error.message, message)
      assert.match(err.error.hint, new RegExp(`^${suggestion.replace(/[?]/g, '\\?')}`))
    }
  })

  test('with --json, an internal error is JSON on stderr too', async () => {
    const dir = await tempProject({ 'grail.yaml': spec(1), 'site/index.html': 'x\n' })
    dirs.push(dir)
    // a directory where Grail keeps a file: not the user's mistake to name, so reported as a bug
    await mkdir(join(dir, '.grail', 'spec-cache.json'), { recursive: true })
    const res = await grail(['--json', 'plan'], { cwd: dir })
    assert.equal(res.code, 3, res.stderr)
    const err = JSON.parse(res.stderr) as { error: { code: string; message: string; stack: string } }
    assert.equal(err.error.code, 'INTERNAL')
    assert.match(err.error.message, /EISDIR/)
    assert.match(err.error.stack, /\n\s+at /)
  })
})
