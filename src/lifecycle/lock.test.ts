// grail.lock as a file: what it reads (version 1 and 2; refuses newer formats and non-locks, naming the
// file and key) and what it writes (the same bytes for the same images, whatever the machine).
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { GrailError } from '../errors.js'
import { parseYamlSpec } from '../spec/load.js'
import type { ImageSpec } from '../spec/types.js'
import { imageSpecDigest, parseLock, serialiseLock } from './lock.js'
import type { LockedImage } from './lock.js'

const d = (c: string) => `sha256:${c.repeat(64)}`
const FILE = '/work/app/grail.lock'

const entry: LockedImage = {
  digest: d('a'),
  spec: d('b'),
  parent: null,
  layers: [d('c'), d('e')],
  packages: ['base-files=12.4+deb12u15:amd64', 'busybox=1:1.35.0-4+deb12u1+b1:amd64'],
}

const v1 = `{
  "lockVersion": 1,
  "project": "hello",
  "images": {
    "hello": {
      "version": 3,
      "digest": "${d('a')}",
      "spec": "${d('b')}",
      "parent": null,
      "layers": ["${d('c')}", "${d('e')}"],
      "packages": ["base-files=12.4+deb12u15:amd64", "busybox=1:1.35.0-4+deb12u1+b1:amd64"]
    }
  }
}
`

function rejects(text: string, code: string, message: RegExp): void {
  assert.throws(
    () => parseLock(text, FILE),
    (err: unknown) => {
      assert.ok(err instanceof GrailError)
      assert.equal(err.code, code)
      assert.match(err.message, message)
      assert.ok(err.hint)
      return true
    },
  )
}

describe('parseLock', () => {
  test('reads a version-1 lock and drops its version numbers: only the digest identifies an image', () => {
    const lock = parseLock(v1, FILE)
    assert.equal(lock.lockVersion, 1)
    assert.deepEqual(lock.images.hello, entry)
    assert.equal('version' in (lock.images.hello ?? {}), false)
  })

  test('a version-1 lock written again is the version-2 lock: no version, the same digests', () => {
    const lock = parseLock(v1, FILE)
    const text = serialiseLock(lock.project, lock.images)
    assert.doesNotMatch(text, /"version"/)
    assert.match(text, /^{\n {2}"lockVersion": 2,\n/)
    assert.deepEqual(parseLock(text, FILE).images, lock.images)
  })

  test('refuses a lock of a newer format, naming the file and the version', () => {
    rejects(
      JSON.stringify({ lockVersion: 3, project: 'hello', images: {} }),
      'LOCK_TOO_NEW',
      /^\/work\/app\/grail\.lock has lockVersion 3, a format newer than this Grail reads \(1 to 2\)$/,
    )
  })

  test('refuses what is not a lock, naming the file and the key', () => {
    rejects(
      '{"lockVersion": 2, "project": "x", "images": {',
      'LOCK_INVALID',
      /grail\.lock:1:47: not valid JSON/,
    )
    // a line and column where V8 gives a position (a missing comma, here before "project")
    rejects('{\n  "lockVersion": 2\n  "project": "x"\n}\n', 'LOCK_INVALID', /grail\.lock:3:3: not valid JSON/)
    rejects('[]', 'LOCK_INVALID', /not a lock/)
    rejects('{"project": "x", "images": {}}', 'LOCK_INVALID', /unknown lock format \(lockVersion undefined\)/)
    rejects('{"lockVersion": 0, "project": "x", "images": {}}', 'LOCK_INVALID', /lockVersion 0/)
    rejects('{"lockVersion": "2", "project": "x", "images": {}}', 'LOCK_INVALID', /lockVersion "2"/)
    rejects('{"lockVersion": 2, "project": "x"}', 'LOCK_INVALID', /images is missing/)
    const broken = (patch: Partial<Record<keyof LockedImage, unknown>>) =>
      JSON.stringify({ lockVersion: 2, project: 'x', images: { web: { ...entry, ...patch } } })
    rejects(broken({ digest: 'sha256:nope' }), 'LOCK_INVALID', /images\.web\.digest is not a sha256 digest/)
    rejects(broken({ spec: 7 }), 'LOCK_INVALID', /images\.web\.spec is not a sha256 digest/)
    rejects(broken({ parent: 'v1' }), 'LOCK_INVALID', /images\.web\.parent is neither null/)
    rejects(broken({ layers: [d('c'), 1] }), 'LOCK_INVALID', /images\.web\.layers is not a list of digests/)
    rejects(broken({ packages: 'busybox' }), 'LOCK_INVALID', /images\.web\.packages is not a list/)
  })
})

describe('serialiseLock', () => {
  test('the same images give the same bytes, whatever order they were found in', () => {
    const other: LockedImage = { ...entry, digest: d('f') }
    const a = serialiseLock('hello', { web: entry, api: other, Zed: other })
    const shuffled = Object.fromEntries(
      Object.entries({ Zed: other, web: entry, api: other }).map(([k, v]) => [
        k,
        {
          packages: [...v.packages].reverse(),
          layers: v.layers,
          parent: v.parent,
          spec: v.spec,
          digest: v.digest,
        },
      ]),
    )
    assert.equal(serialiseLock('hello', shuffled), a)
    assert.deepEqual(Object.keys(parseLock(a, FILE).images), ['Zed', 'api', 'web'])
    assert.ok(a.endsWith('}\n') && !a.endsWith('\n\n'), 'one final newline')
    assert.doesNotMatch(a, /\/work|\btmp\b|"version"|\d{4}-\d\d-\d\dT/, 'no path, counter or time')
  })
})

describe('imageSpecDigest', () => {
  const spec = `project: hello
images:
  hello:
    base: { rootfs: ./base/rootfs.tar }
    context: ./app
    steps:
      - copy: site/ /srv/www
      - cmd: [/bin/sh]
`
  const digestAt = (file: string) => {
    const project = parseYamlSpec(spec, file, { env: {} })
    return imageSpecDigest(project, project.images.hello as ImageSpec)
  }

  test('does not depend on where the project is checked out', () => {
    assert.equal(digestAt('/home/alice/src/hello/grail.yaml'), digestAt('/builds/runner-7/hello/grail.yaml'))
  })

  test('changes with the definition', () => {
    const project = parseYamlSpec(spec.replace('/srv/www', '/srv/web'), '/a/grail.yaml', { env: {} })
    assert.notEqual(imageSpecDigest(project, project.images.hello as ImageSpec), digestAt('/a/grail.yaml'))
  })
})
