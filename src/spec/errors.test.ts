import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { removeDir, tempProject } from '../../test/helpers/project.js'
import { GrailError } from '../errors.js'
import { SpecInvalidError, loadProject } from './index.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await removeDir(d)
})

const lines = (...ls: string[]) => `${ls.join('\n')}\n`

/** Loads `yaml` as grail.yaml and returns the SPEC_INVALID error (file names shown relative to its dir). */
async function failure(yaml: string): Promise<SpecInvalidError> {
  const dir = await tempProject({ 'grail.yaml': yaml }, 'grail-spec-err-')
  dirs.push(dir)
  try {
    await loadProject(dir, { cwd: dir, env: {} })
  } catch (err) {
    assert.ok(err instanceof GrailError, String(err))
    assert.equal(err.code, 'SPEC_INVALID')
    assert.ok(err instanceof SpecInvalidError)
    return err
  }
  assert.fail('the spec loaded, but it is invalid')
}

/** The one problem of an invalid spec, as the user sees it. */
async function problem(yaml: string): Promise<string> {
  const err = await failure(yaml)
  assert.equal(err.message, 'grail.yaml: 1 problem', err.details.join('\n'))
  return err.details[0] as string
}

const IMAGE = ['project: hello', 'images:', '  hello:', '    base: scratch', '    steps:']

describe('spec errors name file:line:col, the key path, expected and found, and a hint', () => {
  it('unknown top-level key', async () => {
    assert.equal(
      await problem(lines('project: a', 'image:', '  x: {}')),
      'grail.yaml:2:1  image: unknown key "image"\n  hint: did you mean "images"?',
    )
  })

  it('typo in a step kind', async () => {
    assert.equal(
      await problem(lines(...IMAGE, '      - copy: site/ /srv/www', '      - entrypiont: [/bin/httpd]')),
      'grail.yaml:7:9  images.hello.steps[1]: unknown step "entrypiont"\n  hint: did you mean "entrypoint"?',
    )
  })

  it('a step with two keys', async () => {
    assert.equal(
      await problem(lines(...IMAGE, '      - run: make', '        env: {A: b}')),
      'grail.yaml:6:9  images.hello.steps[0]: a step has exactly one key, found 2: "run" and "env"\n' +
        '  hint: write each step as its own list item ("- ")',
    )
  })

  it('a step with its options beside it instead of inside', async () => {
    assert.equal(
      await problem(lines(...IMAGE, '      - run: npm ci', '        network: true')),
      'grail.yaml:6:9  images.hello.steps[0]: a step has exactly one key, found 2: "run" and "network"\n' +
        '  hint: options go inside the step: run: {network, ...}',
    )
  })

  it('an empty step', async () => {
    const p = await problem(lines(...IMAGE, '      - {}'))
    assert.match(
      p,
      /^grail\.yaml:6:9 {2}images\.hello\.steps\[0\]: empty step: a step is a mapping with exactly one key\n/,
    )
    assert.match(p, /hint: the step kinds are "copy", "run", .* or "healthcheck"$/)
  })

  it('wrong type', async () => {
    assert.equal(
      await problem(
        lines(
          'project: a',
          'images: {web: {}}',
          'services:',
          '  web:',
          '    image: web',
          '    replicas: three',
        ),
      ),
      'grail.yaml:6:15  services.web.replicas: expected a whole number ≥ 0, found "three"',
    )
  })

  it('bad duration', async () => {
    assert.equal(
      await problem(lines(...IMAGE, '      - healthcheck: {http: /healthz, interval: 2 seconds}')),
      'grail.yaml:6:49  images.hello.steps[0].healthcheck.interval: expected a duration like 500ms, 2s, 10m, 1h30m or 7d (or a number of milliseconds), found "2 seconds"',
    )
  })

  it('bad enum value', async () => {
    assert.equal(
      await problem(
        lines(
          'project: a',
          'images: {web: {}}',
          'services:',
          '  web:',
          '    image: web',
          '    rollout:',
          '      strategy: rolling-update',
        ),
      ),
      'grail.yaml:7:17  services.web.rollout.strategy: expected one of "rolling", "blue-green" or "canary", found "rolling-update"\n' +
        '  hint: did you mean "rolling"?',
    )
  })

  it('image name with a slash and uppercase letters', async () => {
    assert.equal(
      await problem(lines('project: a', 'images:', '  Web/App:', '    base: scratch')),
      'grail.yaml:3:3  images["Web/App"]: expected a name of lowercase letters, digits and "-" (starting with a letter or digit, at most 63), found "Web/App"\n' +
        '  hint: try "web-app"',
    )
  })

  it('a service name one character over the limit names the limit and offers the name cut to it', async () => {
    const name = `s${'x'.repeat(63)}`
    assert.equal(
      await problem(lines('project: a', 'images: {web: {}}', 'services:', `  ${name}: {image: web}`)),
      `grail.yaml:4:3  services.${name}: a name is at most 63 characters, this one has 64\n` +
        `  hint: try "${name.slice(0, 63)}"`,
    )
  })

  it('a service name at the limit is valid', async () => {
    const dir = await tempProject(
      {
        'grail.yaml': lines(
          'project: a',
          'images: {web: {}}',
          'services:',
          `  ${'s'.repeat(63)}: {image: web}`,
        ),
      },
      'grail-spec-err-',
    )
    dirs.push(dir)
    const project = await loadProject(dir, { cwd: dir, env: {} })
    assert.deepEqual(Object.keys(project.services), ['s'.repeat(63)])
  })

  for (const name of ['grail-b', 'grail-b-web']) {
    it(`a service name starting with the build sandboxes' prefix is refused: ${name}`, async () => {
      const problems = await problem(
        lines('project: a', 'images: {web: {}}', 'services:', `  ${name}: {image: web}`),
      )
      assert.match(
        problems,
        /^grail\.yaml:4:3 {2}services\.grail-b.*: a service name may not start with "grail-b"/,
      )
      assert.match(problems, /hint: rename the service/)
    })
  }

  it('a path in the image that climbs out with ".." is refused, with the path it means as the hint', async () => {
    assert.equal(
      await problem(lines(...IMAGE, '      - copy: site/ /../../../tmp/x')),
      'grail.yaml:6:15  images.hello.steps[0].copy: copy destination "/../../../tmp/x" climbs out with ".."\n' +
        '  hint: write the path without "..", e.g. "/tmp/x"',
    )
    assert.match(
      await problem(lines(...IMAGE, '      - workdir: /srv/../../x')),
      /steps\[0\]\.workdir: the path "\/srv\/\.\.\/\.\.\/x" climbs out with "\.\."/,
    )
    assert.match(
      await problem(
        lines('project: a', 'images: {web: {}}', 'services:', '  web: {image: web, volumes: ["d:/../x"]}'),
      ),
      /services\.web\.volumes\[0\]: volume path "\/\.\.\/x" climbs out/,
    )
  })

  it('service referencing an unknown image', async () => {
    assert.equal(
      await problem(lines('project: a', 'images:', '  hello: {}', 'services:', '  web:', '    image: helo')),
      'grail.yaml:6:12  services.web.image: unknown image "helo"\n  hint: did you mean "hello"?',
    )
  })

  it('relative copy destination', async () => {
    assert.equal(
      await problem(lines(...IMAGE, '      - copy: {from: site, to: srv/www}')),
      'grail.yaml:6:32  images.hello.steps[0].copy.to: expected an absolute path (starting with "/"), found "srv/www"\n' +
        '  hint: write "/srv/www"',
    )
  })

  it('copy source leaving the build context', async () => {
    assert.equal(
      await problem(lines(...IMAGE, '      - copy: ../secrets/key /etc/key')),
      'grail.yaml:6:15  images.hello.steps[0].copy: copy source "../secrets/key" leaves the build context ("..")\n' +
        "  hint: copy only from inside the build context; set the image's `context` to a directory that contains it",
    )
  })

  it('YAML syntax error', async () => {
    assert.equal(
      await problem(lines('project: a', 'images:', '  web: {base: scratch', 'services: {}')),
      'grail.yaml:4:1  YAML: Flow map in block collection must be sufficiently indented and end with a }\n' +
        '  hint: check the indentation: nested keys need more spaces than their parent',
    )
  })

  it('tabs as indentation', async () => {
    assert.match(
      await problem('project: a\nimages:\n\tweb: {}\n'),
      /^grail\.yaml:3:1 {2}YAML: Tabs are not allowed/,
    )
  })

  it('missing project points at the document', async () => {
    assert.equal(
      await problem(lines('# my spec', 'images: {}')),
      'grail.yaml:2:1  missing required key "project"\n' +
        '  hint: project: Project name (lowercase letters, digits, `-`). Labels every instance.',
    )
  })

  it('missing required key points at the mapping that lacks it', async () => {
    assert.equal(
      await problem(lines('project: a', 'services:', '  web:', '    replicas: 2')),
      'grail.yaml:3:3  services.web: missing required key "image"\n' +
        '  hint: image: The image this service runs: a key of `images`.',
    )
  })

  it('port out of range', async () => {
    assert.equal(
      await problem(
        lines('project: a', 'images: {web: {}}', 'services:', '  web: {image: web, port: 70000}'),
      ),
      'grail.yaml:4:27  services.web.port: expected a port number (1-65535), found 70000',
    )
  })

  it('unknown key inside a service', async () => {
    assert.equal(
      await problem(
        lines('project: a', 'images: {web: {}}', 'services:', '  web:', '    image: web', '    replcas: 2'),
      ),
      'grail.yaml:6:5  services.web.replcas: unknown key "replcas"\n  hint: did you mean "replicas"?',
    )
  })

  it('an environment overriding a service that does not exist', async () => {
    assert.equal(
      await problem(
        lines(
          'project: a',
          'images: {web: {}}',
          'services: {web: {image: web}}',
          'environments:',
          '  prod:',
          '    services:',
          '      wbe: {replicas: 2}',
        ),
      ),
      'grail.yaml:7:7  environments.prod.services.wbe: unknown service "wbe"\n  hint: did you mean "web"?',
    )
  })

  it('an override that conflicts with the service once merged', async () => {
    assert.equal(
      await problem(
        lines(
          'project: a',
          'images: {db: {}}',
          'services:',
          '  db:',
          '    image: db',
          '    rollout: {order: start-first}',
          'environments:',
          '  prod:',
          '    services:',
          '      db: {volumes: [{name: data, path: /data, exclusive: true}]}',
        ),
      ),
      'grail.yaml:6:22  services.db.rollout.order: order: start-first would run two instances on the exclusive volume "data" (with the overrides of environment "prod")\n' +
        '  hint: use order: stop-first (the default for services with an exclusive volume)',
    )
  })

  it('a base image cycle', async () => {
    assert.equal(
      await problem(lines('project: a', 'images:', '  a: {base: "image:b"}', '  b: {base: {image: a}}')),
      'grail.yaml:3:13  images.a.base: image ancestry cycle: a → b → a\n' +
        '  hint: one of these images must start from scratch, debian, an OCI layout or a rootfs',
    )
  })

  it('a healthcheck with two probes', async () => {
    assert.equal(
      await problem(lines(...IMAGE, '      - healthcheck: {http: /healthz, tcp: 8080}')),
      'grail.yaml:6:22  images.hello.steps[0].healthcheck: a healthcheck has exactly one of "http", "tcp" or "exec", found 2: "http" and "tcp"\n' +
        '  hint: keep one of "http" or "tcp"',
    )
  })

  it('a value of the wrong type inside a union picks the branch that was meant', async () => {
    assert.equal(
      await problem(lines(...IMAGE, '      - healthcheck: {tcp: web}')),
      'grail.yaml:6:28  images.hello.steps[0].healthcheck.tcp: expected a port number (1-65535), found "web"',
    )
  })

  it('a key of another form of the same value lists the keys of the form that was meant', async () => {
    assert.equal(
      await problem(lines('project: a', 'images:', '  a: {}', '  d: {base: {image: a, ref: x}}')),
      'grail.yaml:4:24  images.d.base.ref: unknown key "ref"\n  hint: allowed here: image, version',
    )
  })

  it('a typo of a required key is one problem, not also a missing key', async () => {
    assert.equal(
      await problem(
        lines(
          'project: a',
          'images: {a: {}}',
          'services:',
          '  web: {image: a, port: 8080, publish: {prot: 80}}',
        ),
      ),
      'grail.yaml:4:41  services.web.publish.prot: unknown key "prot"\n  hint: did you mean "port"?',
    )
  })

  it('an endpoint for the local provider', async () => {
    assert.equal(
      await problem(
        lines('project: a', 'environments:', '  dev: {provider: local, endpoint: unix:///x.sock}'),
      ),
      'grail.yaml:3:36  environments.dev.endpoint: the local provider has no endpoint\n' +
        '  hint: remove endpoint, or set provider: docker / swarm',
    )
  })

  it('a number where a string is needed suggests quoting it', async () => {
    assert.equal(
      await problem(lines(...IMAGE, '      - cmd: [httpd, -p, 8080]')),
      'grail.yaml:6:26  images.hello.steps[0].cmd[2]: expected a string, found 8080\n  hint: quote it: "8080"',
    )
  })

  it('an empty file', async () => {
    assert.equal(await problem(''), 'grail.yaml:1:1  expected a mapping, found an empty file')
  })

  it('reports every problem at once, in file order', async () => {
    const err = await failure(
      lines(
        'project: hello',
        '',
        'images:',
        '  hello:',
        '    base: scratch',
        '    steps:',
        '      - copy: site/ /srv/www',
        '      - entrypiont: [/bin/httpd]',
        '',
        'services:',
        '  web:',
        '    image: hello',
        '    port: 8080',
        '    replicas: three',
        '    rollout:',
        '      strategy: rolling-update',
      ),
    )
    // the example in docs/spec.md, verbatim
    assert.equal(err.message, 'grail.yaml: 3 problems')
    assert.deepEqual(err.details, [
      'grail.yaml:8:9  images.hello.steps[1]: unknown step "entrypiont"\n  hint: did you mean "entrypoint"?',
      'grail.yaml:14:15  services.web.replicas: expected a whole number ≥ 0, found "three"',
      'grail.yaml:16:17  services.web.rollout.strategy: expected one of "rolling", "blue-green" or "canary", found "rolling-update"\n' +
        '  hint: did you mean "rolling"?',
    ])
    assert.deepEqual(
      err.problems.map((p) => [p.line, p.column, p.path]),
      [
        [8, 9, 'images.hello.steps[1]'],
        [14, 15, 'services.web.replicas'],
        [16, 17, 'services.web.rollout.strategy'],
      ],
    )
  })

  it('names the file by its full path when it is outside the working directory', async () => {
    const dir = await tempProject({ 'grail.yaml': 'project: Bad\n' }, 'grail-spec-err-')
    dirs.push(dir)
    await assert.rejects(loadProject(dir, { cwd: '/nonexistent', env: {} }), (err: unknown) => {
      assert.ok(err instanceof SpecInvalidError)
      assert.equal(err.message, `${join(dir, 'grail.yaml')}: 1 problem`)
      assert.match(err.details[0] ?? '', new RegExp(`^${join(dir, 'grail.yaml')}:1:10  project: `))
      return true
    })
  })
})
