// The factory is the one place that knows the providers: it makes the one an environment names, and
// refuses one this Grail does not have (named by the spec, like docker, or by nothing, like nosuch).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { GrailError } from '../errors.js'
import { homeAt } from '../home.js'
import type { OciStore } from '../oci/store.js'
import type { Project } from '../spec/types.js'
import { createProvider, PROVIDERS, requireProvider } from './factory.js'

const project = (providers: Record<string, string>) =>
  ({
    file: '/srv/app/grail.yaml',
    environments: Object.fromEntries(
      Object.entries(providers).map(([name, provider]) => [name, { name, provider, services: {} }]),
    ),
  }) as unknown as Pick<Project, 'file' | 'environments'>

test('the providers this Grail has: local only, for now', () => {
  assert.deepEqual([...PROVIDERS], ['local'])
})

test('an environment of provider local gets the local provider', async () => {
  const p = project({ dev: 'local' })
  assert.equal(requireProvider(p, 'dev'), 'local')
  const deps = { home: homeAt('/nonexistent/grail-factory-test'), store: {} as OciStore }
  const provider = await createProvider(p, 'dev', deps)
  assert.equal(provider.name, 'local')
  // an environment the spec does not have (one state still runs, for down) is local's
  assert.equal(requireProvider(p, 'old'), 'local')
})

for (const name of ['docker', 'swarm', 'nosuch']) {
  test(`provider ${name}: PROVIDER_UNAVAILABLE naming the file, the key, the value and the providers`, async () => {
    const p = project({ dev: 'local', prod: name })
    const check = (err: unknown) => {
      assert.ok(err instanceof GrailError)
      assert.equal(err.code, 'PROVIDER_UNAVAILABLE')
      assert.equal(
        err.message,
        `/srv/app/grail.yaml: environments.prod.provider is "${name}", a provider this Grail does not have`,
      )
      assert.match(err.hint ?? '', /^providers this Grail has: local; set environments\.prod\.provider/)
      return true
    }
    assert.throws(() => requireProvider(p, 'prod'), check)
    await assert.rejects(
      createProvider(p, 'prod', { home: homeAt('/nonexistent'), store: {} as OciStore }),
      check,
    )
  })
}
