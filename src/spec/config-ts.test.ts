import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { removeDir, tempProject } from '../../test/helpers/project.js'
import { defineConfig as packageDefineConfig } from '../index.js'
import { GrailError } from '../errors.js'
import { SpecInvalidError, defineConfig, loadProject } from './index.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await removeDir(d)
})

async function project(files: Record<string, string>): Promise<string> {
  const dir = await tempProject(files, 'grail-spec-ts-')
  dirs.push(dir)
  return dir
}

const YAML = `project: hello
images:
  hello:
    base: debian:bookworm
    context: site
    steps:
      - copy: ./ /srv/www
      - env: {PORT: 8080}
      - healthcheck: {http: /healthz, interval: 500ms}
      - cmd: [httpd, -f]
services:
  web:
    image: hello
    replicas: 2
    port: 8080
    publish: {port: 80, host: 0.0.0.0}
    recycle: {maxAge: 1d}
environments:
  local: {}
  staging: {provider: docker, services: {web: {replicas: 4}}}
`

const TS = `import { defineConfig } from 'grail'

const port: number = 8080

export default defineConfig({
  project: 'hello',
  images: {
    hello: {
      base: 'debian:bookworm',
      context: 'site',
      steps: [
        { copy: './ /srv/www' },
        { env: { PORT: port } },
        { healthcheck: { http: '/healthz', interval: '500ms' } },
        { cmd: ['httpd', '-f'] },
      ],
    },
  },
  services: {
    web: { image: 'hello', replicas: 2, port, publish: { port: 80, host: '0.0.0.0' }, recycle: { maxAge: 86_400_000 } },
  },
  environments: { local: {}, staging: { provider: 'docker', services: { web: { replicas: 4 } } } },
})
`

describe('grail.config.ts', () => {
  it('loads through defineConfig and equals the YAML equivalent', async () => {
    const dir = await project({ 'grail.config.ts': TS, 'grail.yaml': YAML })
    const fromTs = await loadProject(join(dir, 'grail.config.ts'), { env: {} })
    const fromYaml = await loadProject(join(dir, 'grail.yaml'), { env: {} })
    assert.equal(fromTs.file, join(dir, 'grail.config.ts'))
    assert.deepEqual({ ...fromTs, file: '' }, { ...fromYaml, file: '' })
    assert.equal(fromTs.images.hello?.context, join(dir, 'site'))
    assert.equal(fromTs.environments.staging?.services.web?.replicas, 4)
  })

  it('is found in a directory like grail.yaml', async () => {
    const dir = await project({ 'grail.config.ts': TS })
    assert.equal((await loadProject(dir, { env: {} })).name, 'hello')
  })

  it('is validated by the same schema; errors name the file and the key path', async () => {
    const dir = await project({
      'grail.config.ts': `export default {
  project: 'hello',
  images: { hello: { steps: [{ entrypiont: ['x'] }] } },
  services: { web: { image: 'hello', replicas: 'three' } },
}
`,
    })
    await assert.rejects(loadProject(dir, { cwd: dir, env: {} }), (err: unknown) => {
      assert.ok(err instanceof SpecInvalidError)
      assert.equal(err.code, 'SPEC_INVALID')
      assert.equal(err.message, 'grail.config.ts: 2 problems')
      assert.deepEqual(err.details, [
        'grail.config.ts  images.hello.steps[0]: unknown step "entrypiont"\n  hint: did you mean "entrypoint"?',
        'grail.config.ts  services.web.replicas: expected a whole number ≥ 0, found "three"',
      ])
      return true
    })
  })

  it('reports a config that does not evaluate, or exports nothing', async () => {
    const broken = await project({ 'grail.config.ts': 'export default {{ project: "x" }\n' })
    await assert.rejects(loadProject(broken, { cwd: broken }), (err: unknown) => {
      assert.ok(err instanceof GrailError)
      assert.equal(err.code, 'SPEC_INVALID')
      assert.match(err.message, /^grail\.config\.ts: cannot be loaded: /)
      return true
    })
    const empty = await project({ 'grail.config.ts': 'export const project = "x"\n' })
    await assert.rejects(loadProject(empty, { cwd: empty }), {
      code: 'SPEC_INVALID',
      message: 'grail.config.ts: has no default export',
    })
  })

  it('defineConfig is the identity, exported from the package entry too', () => {
    const config = { project: 'x', services: {} }
    assert.equal(defineConfig(config), config)
    assert.equal(packageDefineConfig, defineConfig)
  })
})
