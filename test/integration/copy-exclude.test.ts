// `copy.exclude` through the real CLI: braces, character classes, `**` and dotfiles, checked by listing
// the entries of the layer the copy step wrote into the OCI store.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { listLayer } from '../../src/oci/tar/index.js'
import { busyboxProject, grail, parseJson, removeDir } from '../helpers/project.js'

interface BuildJson {
  images: Array<{ steps: Array<{ label: string; layer?: string }> }>
}

const spec = `project: excludes
images:
  app:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy:
          from: site/
          to: /srv/www
          exclude: ["*.{pem,key}", "logs/app[0-9].log", "**/tmp/**", ".env", "/drafts"]
      - cmd: [/bin/httpd, -f, -h, /srv/www]
`

const kept = [
  'srv/www/index.html',
  'srv/www/keys/README',
  'srv/www/server.crt',
  'srv/www/logs/appX.log',
  'srv/www/a/tmpfile',
  'srv/www/nested/drafts/x.html',
  'srv/www/.well-known/security.txt',
]
const excluded = [
  'srv/www/keys/server.pem',
  'srv/www/server.key',
  'srv/www/logs/app1.log',
  'srv/www/a/tmp/cache/blob',
  'srv/www/x/y/tmp/z',
  'srv/www/.env',
  'srv/www/conf/.env',
  'srv/www/drafts/y.html',
]

describe('copy.exclude globs (busybox rootfs base)', () => {
  let dir: string
  let entries: Map<string, unknown>
  before(async () => {
    const files: Record<string, string> = { 'grail.yaml': spec }
    for (const p of [...kept, ...excluded]) files[`site/${p.slice('srv/www/'.length)}`] = `${p}\n`
    dir = await busyboxProject(files)
    const out = parseJson<BuildJson>(await grail(['build', '--json'], { cwd: dir }))
    const layer = out.images[0]?.steps.find((s) => s.label.startsWith('copy'))?.layer
    assert.ok(layer, 'the copy step wrote a layer')
    entries = await listLayer(join(dir, '.grail/oci/blobs/sha256', layer.slice('sha256:'.length)))
  })
  after(() => removeDir(dir))

  test('files matching a brace, class, ** or dotfile pattern are not in the layer', () => {
    assert.deepEqual(
      excluded.filter((p) => entries.has(p)),
      [],
    )
  })

  test('every other file is in the layer', () => {
    assert.deepEqual(
      kept.filter((p) => !entries.has(p)),
      [],
    )
  })
})
