import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { removeDir, tempProject } from '../../test/helpers/project.js'
import { GrailError } from '../errors.js'
import { SpecInvalidError, loadProject } from './index.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await removeDir(d)
})

const lines = (...ls: string[]) => `${ls.join('\n')}\n`
const ENVS = ['project: p', 'environments:', '  staging: {}', '  prod: {}', 'policies:', '  patch:']

async function load(yaml: string) {
  const dir = await tempProject({ 'grail.yaml': yaml }, 'grail-spec-patch-')
  dirs.push(dir)
  return loadProject(dir, { cwd: dir, env: {} })
}

async function problems(yaml: string): Promise<readonly string[]> {
  try {
    await load(yaml)
  } catch (err) {
    assert.ok(err instanceof GrailError && err instanceof SpecInvalidError, String(err))
    return err.details
  }
  assert.fail('the spec loaded, but it is invalid')
}

describe('policies.patch', () => {
  it('defaults: check every 6h, report only, every update', async () => {
    const p = await load(lines('project: p'))
    assert.deepEqual(p.policies.patch, { interval: 21_600_000, action: 'report', security: false })
  })

  it('deploy to declared environments', async () => {
    const p = await load(lines(...ENVS, '    interval: 30m', '    action: deploy', '    deploy: [staging]'))
    assert.deepEqual(p.policies.patch, {
      interval: 1_800_000,
      action: 'deploy',
      deploy: ['staging'],
      security: false,
    })
  })

  it('action deploy without environments names the key and the fix', async () => {
    const [one, ...rest] = await problems(lines(...ENVS, '    action: deploy'))
    assert.equal(rest.length, 0)
    assert.match(
      one ?? '',
      /^grail\.yaml:7:\d+ {2}policies\.patch\.action: action deploy needs the environments/,
    )
    assert.match(one ?? '', /hint: add deploy: \[staging\]/)
  })

  it('an undeclared environment is named, with the closest declared one', async () => {
    const [one] = await problems(lines(...ENVS, '    action: deploy', '    deploy: [stagin]'))
    assert.match(
      one ?? '',
      /^grail\.yaml:8:\d+ {2}policies\.patch\.deploy\[0\]: unknown environment "stagin"/,
    )
    assert.match(one ?? '', /did you mean "staging"\?/)
  })

  it('deploy without action deploy is refused', async () => {
    const [one] = await problems(lines(...ENVS, '    action: build', '    deploy: [staging]'))
    assert.match(one ?? '', /policies\.patch\.deploy: deploy is only used with action: deploy/)
  })

  it('an unknown action lists the actions', async () => {
    const [one] = await problems(lines(...ENVS, '    action: upgrade'))
    assert.match(one ?? '', /expected one of report, build, deploy/)
  })

  it('debian include takes pkg=version, and refuses anything else in it', async () => {
    const base = ['project: p', 'images:', '  a:', '    base:', '      debian:', '        suite: bookworm']
    const p = await load(
      lines(...base, '        include: [busybox, "tzdata=2024a-0+deb12u1", "libfoo1=1:2.3~rc1-4"]'),
    )
    const b = p.images.a?.base
    assert.ok(b?.kind === 'debian')
    assert.deepEqual(b.include, ['busybox', 'tzdata=2024a-0+deb12u1', 'libfoo1=1:2.3~rc1-4'])
    const [one] = await problems(lines(...base, '        include: ["tzdata=2024a,busybox"]'))
    assert.match(one ?? '', /expected a Debian package name, optionally with =VERSION/)
  })
})
