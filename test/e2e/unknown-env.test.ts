// An environment the spec does not declare is the same error in every command that takes one, before
// anything is read, built or changed; one the spec dropped but state still runs can still be looked at
// and taken down.
import assert from 'node:assert/strict'
import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { freePort } from '../helpers/net.js'
import { busyboxProject, grail, removeDir, tearDown } from '../helpers/project.js'
import { httpdImages } from '../helpers/specs.js'

const spec = (envs: string[], port: number) => `project: envs
${httpdImages()}services:
  web:
    image: web
    port: 8080
    publish: ${port}
    healthcheck: { http: /index.html, interval: 200ms }
environments:
${envs.map((e) => `  ${e}: { provider: local }\n`).join('')}`

const COMMANDS: string[][] = [
  ['status', 'nosuch'],
  ['plan', 'nosuch'],
  ['apply', 'nosuch'],
  ['up', 'nosuch'],
  ['drift', 'nosuch'],
  ['down', 'nosuch'],
  ['recycle', 'nosuch'],
  ['verify', 'nosuch'],
  ['rollback', 'web', '--env', 'nosuch'],
  ['hotfix', 'web-r1-abcdef', '--env', 'nosuch', '--ttl', '10m', '--reason', 'x', '--', 'true'],
  ['capture', 'web-r1-abcdef', '--env', 'nosuch'],
  ['promote', 'web', '--from', 'nosuch', '--to', 'staging'],
  ['promote', 'web', '--from', 'staging', '--to', 'nosuch'],
]

describe('an unknown environment', () => {
  let dir: string
  before(async () => {
    dir = await busyboxProject({ 'grail.yaml': spec(['staging', 'prod'], 1), 'site/index.html': 'hi\n' })
  })
  after(async () => removeDir(dir))

  for (const argv of COMMANDS) {
    test(`grail ${argv.join(' ')} is an error naming it and the declared environments`, async () => {
      for (const json of [false, true]) {
        const res = await grail(json ? ['--json', ...argv] : argv, { cwd: dir })
        assert.equal(res.code, 1, `${argv.join(' ')}\n${res.stdout}\n${res.stderr}`)
        assert.match(res.stderr, /no environment named \\?"nosuch\\?"/)
        assert.match(res.stderr, /environments this spec declares: staging, prod/)
        if (!json) assert.match(res.stderr, /UNKNOWN_ENVIRONMENT|no environment named/)
      }
    })
  }

  test('nothing was built or recorded by any of them', async () => {
    const images = await grail(['--json', 'images'], { cwd: dir })
    assert.equal(images.code, 0, images.stderr)
    assert.deepEqual(JSON.parse(images.stdout), [])
  })
})

describe('an environment the spec dropped while it still runs', () => {
  let dir: string
  let port: number
  before(async () => {
    port = await freePort()
    dir = await busyboxProject({ 'grail.yaml': spec(['staging', 'old'], port), 'site/index.html': 'hi\n' })
  })
  after(async () => tearDown(dir, ['old']))

  test('status and down still reach it; plan does not', async () => {
    const up = await grail(['up', 'old'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr)
    await writeFile(join(dir, 'grail.yaml'), spec(['staging'], port))
    const plan = await grail(['plan', 'old'], { cwd: dir })
    assert.equal(plan.code, 1)
    assert.match(plan.stderr, /no environment named "old"/)
    assert.match(plan.stderr, /environments this spec declares: staging; state also has old/)
    const status = await grail(['status', 'old'], { cwd: dir })
    assert.equal(status.code, 0, status.stderr)
    assert.match(status.stdout, /web-r1-/)
    const down = await grail(['down', 'old'], { cwd: dir })
    assert.equal(down.code, 0, down.stderr)
    assert.match(down.stdout, /old: destroyed 1 instance/)
  })
})

// `docker` is a provider the spec language names but this Grail does not have yet; `nosuch` is none at all:
// both are the same error, naming the key, the value and the providers there are, and nothing runs.
describe('an environment whose provider this Grail does not have', () => {
  let dir: string
  before(async () => {
    const yaml = spec(['staging'], 1).replace(
      /\n$/,
      '\n  prod: { provider: docker, endpoint: "unix:///run/docker.sock" }\n  odd: { provider: nosuch }\n',
    )
    dir = await busyboxProject({ 'grail.yaml': yaml, 'site/index.html': 'hi\n' })
  })
  after(async () => removeDir(dir))

  for (const [env, provider] of [
    ['prod', 'docker'],
    ['odd', 'nosuch'],
  ] as const) {
    for (const argv of [
      ['plan', env],
      ['up', env],
      ['apply', env],
      ['status', env],
      ['drift', env],
      ['down', env],
      ['recycle', env],
      ['rollback', 'web', '--env', env],
      ['promote', 'web', '--from', 'staging', '--to', env],
    ]) {
      test(`grail ${argv.join(' ')} (provider ${provider}) is an error naming the key, the value and the providers there are`, async () => {
        for (const json of [false, true]) {
          const res = await grail(json ? ['--json', ...argv] : argv, { cwd: dir })
          assert.equal(res.code, 1, `${argv.join(' ')}\n${res.stdout}\n${res.stderr}`)
          assert.match(
            res.stderr,
            new RegExp(
              `grail\\.yaml: environments\\.${env}\\.provider is \\\\?"${provider}\\\\?", a provider this Grail does not have`,
            ),
          )
          assert.match(res.stderr, /providers this Grail has: local[;"]/)
          if (!json) assert.match(res.stderr, /PROVIDER_UNAVAILABLE|a provider this Grail does not have/)
        }
      })
    }
  }

  test('nothing was built or deployed, and the local environment still works', async () => {
    const images = await grail(['--json', 'images'], { cwd: dir })
    assert.equal(images.code, 0, images.stderr)
    assert.deepEqual(JSON.parse(images.stdout), [])
    const events = await grail(['--json', 'events'], { cwd: dir })
    assert.equal(events.code, 0, events.stderr)
    const kinds = (JSON.parse(events.stdout) as Array<{ kind: string }>).map((e) => e.kind)
    assert.ok(
      kinds.every((k) => typeof k === 'string'),
      events.stdout,
    )
    assert.deepEqual(
      kinds.filter((k) => /^(release|instance|rollout|image|environment|promote)\./.test(k)),
      [],
      kinds.join(', '),
    )
    assert.deepEqual(await instanceDirs(dir), [])
    // staging is planned as usual: it only says its image needs a build
    const plan = await grail(['plan', 'staging'], { cwd: dir })
    assert.doesNotMatch(plan.stderr, /provider/)
    assert.match(plan.stderr, /needs image web, which has not been built/)
  })
})

/** The instance bundles of the project's Grail home (none when the directory was never made). */
async function instanceDirs(dir: string): Promise<string[]> {
  try {
    return await readdir(join(dir, '.grail', 'instances'))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}
