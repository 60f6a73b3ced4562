import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { homeAt } from '../home.js'
import { proxiesRoot, stopEnvironmentProxies } from './proxies.js'

// Proxy directories with no process in them: stopping one only removes it, so these tests see exactly
// which proxies `down` picks, from what is on disk.
let root = ''
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'grail-proxies-'))
})
after(async () => {
  await rm(root, { recursive: true, force: true })
})

async function homeWith(dirs: Record<string, { environment: string; service: string } | null>) {
  const home = homeAt(await mkdtemp(join(root, 'home-')))
  for (const [name, owner] of Object.entries(dirs)) {
    const dir = join(proxiesRoot(home), name)
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'state.json'), '{"version":1,"backends":[]}\n')
    if (owner !== null) await writeFile(join(dir, 'owner.json'), JSON.stringify(owner))
  }
  return home
}

test('down stops every proxy of its environment found on disk, also of services the spec no longer names', async () => {
  const home = await homeWith({
    'prod-web': { environment: 'prod', service: 'web' },
    'prod-old-name': { environment: 'prod', service: 'old-name' },
    'prod-eu-web': { environment: 'prod-eu', service: 'web' },
    'gone-web': { environment: 'gone', service: 'web' },
  })
  const stopped = await stopEnvironmentProxies(home, 'prod', ['prod', 'prod-eu'])
  assert.deepEqual(stopped.map((s) => `${s.environment}/${s.service}`).sort(), ['prod/old-name', 'prod/web'])
  assert.ok(stopped.every((s) => s.state === 'stopped'))
  assert.deepEqual(
    (await readdir(proxiesRoot(home))).sort(),
    ['gone-web', 'prod-eu-web'],
    'other environments keep their proxies (apply stops those of an environment the spec lost)',
  )
})

test('a directory without an owner file belongs to the longest environment its name starts with', async () => {
  const home = await homeWith({ 'prod-web': null, 'prod-eu-web': null, 'prod-eu-api': null })
  const stopped = await stopEnvironmentProxies(home, 'prod-eu', ['prod', 'prod-eu'])
  assert.deepEqual(stopped.map((s) => `${s.environment}/${s.service}`).sort(), ['prod-eu/api', 'prod-eu/web'])
  assert.deepEqual(await readdir(proxiesRoot(home)), ['prod-web'])
})

test('a torn owner file falls back to the directory name', async () => {
  const home = await homeWith({ 'prod-web': null })
  await writeFile(join(proxiesRoot(home), 'prod-web', 'owner.json'), '{"environment":"pr')
  const stopped = await stopEnvironmentProxies(home, 'prod', ['prod'])
  assert.deepEqual(
    stopped.map((s) => `${s.environment}/${s.service}`),
    ['prod/web'],
  )
})

test('with no proxy directory at all, down stops nothing', async () => {
  const home = homeAt(join(root, 'empty'))
  assert.deepEqual(await stopEnvironmentProxies(home, 'prod', ['prod']), [])
})
