// Every YAML example of README.md, docs/*.md and examples/*/grail.yaml is what it claims to be
// (docs/development.md, "YAML examples in the docs"): each spec or part of one validates with Grail's own
// loader (a failure names the file and line), anything else is marked `<!-- not a grail spec -->`, and
// every full spec with services deploys with `grail up` and passes its health gates.
//
// What the deploy changes, mechanically, in a copy (the validated original stays as written):
// - a Debian base becomes the test's busybox rootfs (`{rootfs: ./rootfs.tar}`, with /usr/local/bin):
//   no mirror traffic, seconds instead of minutes; an image whose base is a host path the repository
//   does not ship (a vendor/ layout or tarball) is left out, with the services that run it, by name;
// - `run` steps with `network: true` are left out: the test machine has no outbound network;
// - each service's `port` becomes its port plus one, so the instance gets another PORT than the one the
//   example's text names: an app must listen where PORT says (docs/spec.md, Services), as it must with
//   `network: host`, where PORT is a free host port;
// - `publish` goes to a free port on 127.0.0.1 (tests never bind a public address or a fixed port);
// - only the environments with the local provider are kept, and `local` (or the only one) is deployed.
// A docs block's build context is a copy of examples/hello/site as site/ (its examples serve `site/`);
// an example's is a copy of its directory.
import assert from 'node:assert/strict'
import { cp, mkdtemp, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, describe, test } from 'node:test'
import { stringify } from 'yaml'
import { makeBusyboxRootfs } from '../helpers/busybox-rootfs.js'
import type { Checked } from '../helpers/doc-examples.js'
import { NOT_A_SPEC_MARKER, allYamlExamples, checkBlock, yamlBlocks } from '../helpers/doc-examples.js'
import { freePort } from '../helpers/net.js'
import { REPO, grail, parseJson, removeDir, tearDown, tempProject } from '../helpers/project.js'

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

const checked: Checked[] = allYamlExamples(REPO)
  .filter((b) => !b.marked)
  .map((b) => checkBlock(b, REPO))

const isDebian = (base: unknown) =>
  (typeof base === 'string' && base.startsWith('debian:')) || (isObj(base) && 'debian' in base)
const hostPathOf = (base: unknown): string | undefined => {
  if (typeof base === 'string' && /^(oci|rootfs):/.test(base)) return base.slice(base.indexOf(':') + 1)
  if (isObj(base) && typeof (base.oci ?? base.rootfs) === 'string') return (base.oci ?? base.rootfs) as string
  return undefined
}
const imageBaseOf = (base: unknown): string | undefined => {
  if (typeof base === 'string' && base.startsWith('image:')) return base.slice('image:'.length)
  if (isObj(base) && typeof base.image === 'string') return base.image
  return undefined
}

interface Deployable {
  spec: Obj
  env: string
  services: string[]
  left: string[]
}

/** The deployable copy of a full spec, as the header says; `dir` resolves its host paths. */
async function deployable(raw: Obj, dir: string): Promise<Deployable> {
  const spec = structuredClone(raw)
  const images = (spec.images ?? {}) as Record<string, Obj>
  const missing = new Set<string>()
  for (const [name, img] of Object.entries(images)) {
    if (isDebian(img.base)) img.base = { rootfs: './rootfs.tar' }
    const path = hostPathOf(img.base)
    if (path !== undefined && path !== './rootfs.tar' && !existsSync(resolve(dir, path))) missing.add(name)
    if (Array.isArray(img.steps))
      img.steps = img.steps.filter((s) => !(isObj(s) && isObj(s.run) && s.run.network === true))
  }
  // an image on a missing base is missing too, and so is every image built on it
  for (let grew = true; grew; ) {
    grew = false
    for (const [name, img] of Object.entries(images)) {
      const parent = imageBaseOf(img.base)
      if (parent && missing.has(parent) && !missing.has(name)) grew = missing.add(name) !== undefined
    }
  }
  for (const name of missing) delete images[name]
  const services = (spec.services ?? {}) as Record<string, Obj>
  const left: string[] = []
  const republish = async (svc: Obj) => {
    if (svc.publish !== undefined) svc.publish = { port: await freePort(), host: '127.0.0.1' }
  }
  for (const [name, svc] of Object.entries(services)) {
    if (missing.has(svc.image as string)) {
      left.push(name)
      delete services[name]
      continue
    }
    if (typeof svc.port === 'number') svc.port += 1
    await republish(svc)
  }
  let env = 'local'
  if (isObj(spec.environments)) {
    const envs = spec.environments as Record<string, Obj>
    for (const [name, e] of Object.entries(envs)) {
      if ((e.provider ?? 'local') !== 'local') {
        delete envs[name]
        continue
      }
      const overrides = (e.services ?? {}) as Record<string, Obj>
      for (const [svc, o] of Object.entries(overrides)) {
        if (!(svc in services)) delete overrides[svc]
        else await republish(o)
      }
    }
    const names = Object.keys(envs)
    if (!names.includes('local')) env = names[0] as string
  }
  return { spec, env, services: Object.keys(services), left }
}

describe('the YAML examples of the docs', () => {
  test('every yaml block is a spec, a part of one, or marked as not one', () => {
    assert.ok(checked.length >= 8, `found only ${checked.length} yaml examples`)
    const unknown = checked.filter((c) => c.kind === 'unknown').flatMap((c) => c.problems)
    assert.deepEqual(unknown, [])
  })

  test('a broken block fails naming its file and line; an unmarked non-spec fails; a marked one is skipped', async () => {
    const dir = await tempProject({
      'docs/x.md': [
        '# x',
        '```yaml',
        'services:',
        '  web:',
        '    replicas: three',
        '```',
        '```yaml',
        'on: [push]',
        'jobs: {}',
        '```',
        NOT_A_SPEC_MARKER,
        '```yaml',
        'on: [push]',
        '```',
        '',
      ].join('\n'),
    })
    try {
      const [broken, unmarked, marked, ...rest] = yamlBlocks(dir, 'docs/x.md')
      assert.equal(rest.length, 0)
      assert.equal(marked?.marked, true)
      const b = checkBlock(broken as NonNullable<typeof broken>, dir)
      assert.equal(b.kind, 'part')
      assert.match(b.problems.join('\n'), /^docs\/x\.md:5:\d+ {2}services\.web\.replicas: /)
      const u = checkBlock(unmarked as NonNullable<typeof unmarked>, dir)
      assert.equal(u.kind, 'unknown')
      assert.match(u.problems.join('\n'), /^docs\/x\.md:8: .*not a grail spec/)
    } finally {
      await removeDir(dir)
    }
  })

  for (const c of checked) {
    if (c.kind === 'unknown') continue
    test(`${c.block.file}:${c.block.line} (${c.kind}) validates`, () => {
      assert.deepEqual(c.problems, [], `${c.block.file}:${c.block.line}:\n${c.problems.join('\n')}`)
    })
  }
})

describe('the service examples of the docs deploy and pass their health gates', () => {
  const dirs: Array<[string, string]> = []
  after(async () => {
    for (const [dir, env] of dirs) await tearDown(dir, [env])
  })

  for (const c of checked) {
    const raw = c.raw
    if (!isObj(raw) || !isObj(raw.services)) continue
    test(`${c.block.file}:${c.block.line} deploys`, async (t) => {
      const dir = await mkdtemp(join(tmpdir(), 'grail-docs-'))
      const example = c.block.file.startsWith('examples/')
      const source = example ? join(REPO, c.block.file, '..') : join(REPO, 'examples', 'hello')
      if (example) await cp(source, dir, { recursive: true, filter: (p) => !p.includes('/.grail') })
      else await cp(join(source, 'site'), join(dir, 'site'), { recursive: true })
      makeBusyboxRootfs(join(dir, 'rootfs.tar'), { dirs: ['usr/local/bin'] })
      const d = await deployable(raw, source)
      dirs.push([dir, d.env])
      await writeFile(join(dir, 'grail.yaml'), stringify(d.spec))
      if (d.left.length > 0) t.diagnostic(`not deployed (base not in the repository): ${d.left.join(', ')}`)
      assert.ok(d.services.length > 0, 'nothing to deploy')
      const up = await grail(['up', d.env], { cwd: dir })
      assert.equal(up.code, 0, `${c.block.file}:${c.block.line}: grail up failed\n${up.stderr}\n${up.stdout}`)
      const status = parseJson<{ instances: Array<{ service: string; health: string }> }>(
        await grail(['--json', 'status', d.env], { cwd: dir }),
      )
      for (const svc of d.services) {
        const mine = status.instances.filter((i) => i.service === svc)
        assert.ok(mine.length > 0, `${svc}: no instances`)
        assert.deepEqual(
          mine.map((i) => i.health),
          mine.map(() => 'healthy'),
          `${svc}`,
        )
      }
    })
  }
})
