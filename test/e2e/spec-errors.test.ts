// A user's view of a bad spec: every malformed grail.yaml gives exit code 1 and a message naming
// grail.yaml:line:col and the key path, with no stack trace.
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { grail, removeDir, tempProject } from '../helpers/project.js'

const head = 'project: demo\nimages:\n  app:\n    base: scratch\n'

const cases: Array<{ name: string; yaml: string; where: string; path: string; hint?: RegExp }> = [
  {
    name: 'unknown top-level key',
    yaml: `${head}imagez: {}\n`,
    where: 'grail.yaml:5:1',
    path: 'imagez',
    hint: /images/,
  },
  {
    name: 'typo in a step kind',
    yaml: `${head}    steps:\n      - entrypiont: [a]\n`,
    where: 'grail.yaml:6:9',
    path: 'images.app.steps[0]',
    hint: /did you mean "entrypoint"/,
  },
  {
    name: 'step with two kinds',
    yaml: `${head}    steps:\n      - { cmd: [a], user: root }\n`,
    where: 'grail.yaml:6:9',
    path: 'images.app.steps[0]',
  },
  {
    name: 'empty step',
    yaml: `${head}    steps:\n      - {}\n`,
    where: 'grail.yaml:6:9',
    path: 'images.app.steps[0]',
  },
  {
    name: 'replicas is not a number',
    yaml: `${head}services:\n  web:\n    image: app\n    replicas: three\n`,
    where: 'grail.yaml:8:15',
    path: 'services.web.replicas',
  },
  {
    name: 'bad duration',
    yaml: `${head}services:\n  web:\n    image: app\n    recycle: { maxAge: 7 days }\n`,
    where: 'grail.yaml:8:24',
    path: 'services.web.recycle.maxAge',
  },
  {
    name: 'bad rollout strategy',
    yaml: `${head}services:\n  web:\n    image: app\n    rollout: { strategy: rolling-update }\n`,
    where: 'grail.yaml:8:26',
    path: 'services.web.rollout.strategy',
    hint: /did you mean "rolling"/,
  },
  {
    name: 'service names an unknown image',
    yaml: `${head}services:\n  web:\n    image: ap\n`,
    where: 'grail.yaml:7:12',
    path: 'services.web.image',
    hint: /"app"/,
  },
  {
    name: 'image name with a slash',
    yaml: 'project: demo\nimages:\n  my/app:\n    base: scratch\n',
    where: 'grail.yaml:3:3',
    path: 'images',
  },
  {
    name: 'relative copy destination',
    yaml: `${head}    steps:\n      - copy: { from: site, to: srv/www }\n`,
    where: 'grail.yaml:6:33',
    path: 'images.app.steps[0].copy.to',
  },
  {
    name: 'copy source leaving the context',
    yaml: `${head}    steps:\n      - copy: { from: ../secrets, to: /x }\n`,
    where: 'grail.yaml:6:23',
    path: 'images.app.steps[0].copy.from',
  },
  {
    name: 'port out of range',
    yaml: `${head}services:\n  web:\n    image: app\n    port: 70000\n`,
    where: 'grail.yaml:8:11',
    path: 'services.web.port',
  },
  { name: 'missing project', yaml: 'images: {}\n', where: 'grail.yaml:1:1', path: 'project' },
  { name: 'YAML syntax error', yaml: `${head}    steps: [\n`, where: 'grail.yaml:6:1', path: '' },
]

describe('malformed specs through the CLI', () => {
  const dirs: string[] = []
  after(async () => {
    for (const d of dirs) await removeDir(d)
  })
  for (const c of cases) {
    test(c.name, async () => {
      const dir = await tempProject({ 'grail.yaml': c.yaml })
      dirs.push(dir)
      const res = await grail(['build'], { cwd: dir })
      assert.equal(res.code, 1, `${res.stdout}\n${res.stderr}`)
      assert.ok(res.stderr.includes(c.where), `expected ${c.where} in:\n${res.stderr}`)
      if (c.path)
        assert.ok(res.stderr.includes(`${c.path}`), `expected key path ${c.path} in:\n${res.stderr}`)
      if (c.hint) assert.match(res.stderr, c.hint)
      assert.doesNotMatch(res.stderr, /\n\s+at .+:\d+:\d+\)?\n/, 'no stack trace')
      assert.doesNotMatch(res.stderr, /internal error/)
    })
  }
})
