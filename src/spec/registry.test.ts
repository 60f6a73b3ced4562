import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { removeDir, tempProject } from '../../test/helpers/project.js'
import { GrailError } from '../errors.js'
import { SpecInvalidError, loadProject } from './index.js'
import { isLoopbackHost, parseImageRef } from './registry-ref.js'
import type { Project } from './types.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await removeDir(d)
})

const lines = (...ls: string[]) => `${ls.join('\n')}\n`

async function load(yaml: string): Promise<Project> {
  const dir = await tempProject({ 'grail.yaml': yaml }, 'grail-spec-reg-')
  dirs.push(dir)
  return loadProject(dir, { cwd: dir, env: {} })
}

/** Every problem of an invalid spec, as the user sees them (one string). */
async function problems(yaml: string): Promise<string> {
  try {
    await load(yaml)
  } catch (err) {
    assert.ok(err instanceof GrailError, String(err))
    assert.ok(err instanceof SpecInvalidError)
    return err.details.join('\n')
  }
  assert.fail('the spec loaded, but it is invalid')
}

const DEFAULTS = { insecure: false, cache: { from: false, to: false }, auth: { kind: 'auto' } }

describe('registry: keys', () => {
  it('the short form: a URL, host lower case, prefix the project name, every environment inherits it', async () => {
    const p = await load(
      lines('project: shop', 'registry: https://Registry.Example.COM:5000/', 'environments: {a: {}, b: {}}'),
    )
    const expected = {
      url: 'https://registry.example.com:5000',
      host: 'registry.example.com:5000',
      prefix: 'shop',
      ...DEFAULTS,
    }
    assert.deepEqual(p.registry, expected)
    assert.deepEqual(p.environments.a?.registry, expected)
    assert.deepEqual(p.environments.b?.registry, expected)
    // each environment has its own copy: changing one changes no other
    assert.notEqual(p.environments.a?.registry, p.environments.b?.registry)
  })

  it("the mapping: an environment's registry replaces the project's as a whole; paths are relative to the spec", async () => {
    const p = await load(
      lines(
        'project: shop',
        'registry: {url: "https://r.example.com", prefix: team/shop, auth: none, cache: {from: true}}',
        'environments:',
        '  dev: {}',
        '  prod:',
        '    registry:',
        '      url: http://127.0.0.1:5000',
        '      auth: {env: {username: REG_USER, password: REG_PASSWORD}}',
        '      ca: certs/ca.pem',
        '  edge:',
        '    registry: {url: "http://10.0.0.5:5000", insecure: true, auth: {file: ../creds.json}}',
      ),
    )
    const dir = p.dir
    assert.deepEqual(p.environments.dev?.registry, {
      url: 'https://r.example.com',
      host: 'r.example.com',
      prefix: 'team/shop',
      auth: { kind: 'none' },
      insecure: false,
      cache: { from: true, to: false },
    })
    assert.deepEqual(p.environments.prod?.registry, {
      url: 'http://127.0.0.1:5000',
      host: '127.0.0.1:5000',
      prefix: 'shop',
      auth: { kind: 'env', username: 'REG_USER', password: 'REG_PASSWORD' },
      ca: join(dir, 'certs/ca.pem'),
      insecure: false,
      cache: { from: false, to: false },
    })
    assert.deepEqual(p.environments.edge?.registry?.auth, {
      kind: 'file',
      path: join(dir, '..', 'creds.json'),
    })
    assert.equal(p.environments.edge?.registry?.insecure, true)
  })

  it('without registry: no environment has one', async () => {
    const p = await load(lines('project: shop'))
    assert.equal(p.registry, undefined)
    assert.equal(p.environments.local?.registry, undefined)
  })

  it('loopback is 127.0.0.0/8, ::1 and localhost; nothing else', () => {
    for (const h of ['127.0.0.1:5000', '127.9.8.7', 'localhost:80', '[::1]:5000', 'localhost'])
      assert.equal(isLoopbackHost(h), true, h)
    for (const h of ['10.0.0.1:5000', '127.0.0.1.nip.io', 'localhost.example.com', '[::2]:5000', '128.0.0.1'])
      assert.equal(isLoopbackHost(h), false, h)
  })
})

describe('registry: errors name the key, suggest the fix, and never repeat a credential', () => {
  it('credentials in the URL are refused without showing them (short form and mapping)', async () => {
    const short = await problems(lines('project: a', 'registry: https://bob:hunter2@r.example.com'))
    assert.equal(
      short,
      'grail.yaml:2:11  registry: the registry URL has credentials in it (user:password@); they are not shown here\n' +
        '  hint: remove them from the URL and use auth: {env: {username: VAR, password: VAR}} or auth: {file: PATH} (see docs/registry.md)',
    )
    const long = await problems(
      lines('project: a', 'environments:', '  prod: {registry: {url: "bob:hunter2@r.example.com:5000"}}'),
    )
    assert.match(
      long,
      /^grail\.yaml:3:26 {2}environments\.prod\.registry\.url: the registry URL has credentials/,
    )
    for (const text of [short, long]) {
      assert.doesNotMatch(text, /hunter2/)
      assert.doesNotMatch(text, /bob/)
    }
  })

  it('a URL with a token as its user (no password) is refused too', async () => {
    const text = await problems(lines('project: a', 'registry: {url: "https://ghp_abc123@r.example.com"}'))
    assert.match(text, /has credentials in it/)
    assert.doesNotMatch(text, /ghp_abc123/)
  })

  it('plain http to a host that is not loopback names insecure', async () => {
    assert.equal(
      await problems(lines('project: a', 'registry: {url: "http://r.example.com:5000"}')),
      'grail.yaml:2:17  registry.url: plain http to r.example.com:5000, which is not this machine: images and credentials would cross the network unencrypted\n' +
        '  hint: use https://r.example.com:5000 (with ca: for a private CA), or set insecure: true if you accept that',
    )
    assert.equal(
      await problems(lines('project: a', 'registry: http://10.1.2.3')),
      'grail.yaml:2:11  registry: plain http to 10.1.2.3, which is not this machine: images and credentials would cross the network unencrypted\n' +
        '  hint: use https://10.1.2.3 (with ca: for a private CA), or write registry: {url: http://10.1.2.3, insecure: true} if you accept that',
    )
  })

  it('a URL without a scheme, with another scheme, with a path or a query', async () => {
    assert.equal(
      await problems(lines('project: a', 'registry: r.example.com:5000')),
      'grail.yaml:2:11  registry: expected a registry URL starting with https:// or http://, found "r.example.com:5000"\n' +
        '  hint: try "https://r.example.com:5000"',
    )
    assert.equal(
      await problems(lines('project: a', 'registry: ftp://r.example.com')),
      'grail.yaml:2:11  registry: a registry URL is https:// or http://, not ftp://\n  hint: try "https://r.example.com"',
    )
    assert.equal(
      await problems(lines('project: a', 'registry: https://r.example.com/team/web')),
      'grail.yaml:2:11  registry: a registry URL is scheme://host[:port] only, this one has a path (/team/web)\n' +
        '  hint: url: https://r.example.com with prefix: team/web',
    )
    assert.match(
      await problems(lines('project: a', 'registry: https://r.example.com/?x=1')),
      /this one has a query or fragment\n {2}hint: url: https:\/\/r\.example\.com$/,
    )
  })

  it('a prefix that is not a repository path, and a project name that cannot be the default one', async () => {
    assert.equal(
      await problems(lines('project: a', 'registry: {url: "https://r.example.com", prefix: My_Team//Web}')),
      'grail.yaml:2:50  registry.prefix: the prefix "My_Team//Web" is not a repository path (lowercase letters and digits, separated by ".", "_", "__" or "-" within a component and "/" between components)\n' +
        '  hint: try "my_team/web"',
    )
    assert.equal(
      await problems(lines('project: web-', 'registry: https://r.example.com')),
      'grail.yaml:2:1  registry: the project name (the default prefix) "web-" is not a repository path (lowercase letters and digits, separated by ".", "_", "__" or "-" within a component and "/" between components)\n' +
        '  hint: set registry.prefix, e.g. prefix: web',
    )
  })

  it('auth: an unknown mode, an environment variable name that is not one, a key that is not known', async () => {
    assert.equal(
      await problems(lines('project: a', 'registry: {url: "https://r.example.com", auth: basic}')),
      'grail.yaml:2:48  registry.auth: expected auth: auto, none, {env: …} or {file: …}, found "basic"\n' +
        '  hint: for a user and password: auth: {env: {username: REGISTRY_USER, password: REGISTRY_PASSWORD}}',
    )
    assert.match(
      await problems(lines('project: a', 'registry: {url: "https://r.example.com", auth: atuo}')),
      /found "atuo"\n {2}hint: did you mean "auto"\?$/,
    )
    assert.match(
      await problems(
        lines(
          'project: a',
          'registry: {url: "https://r.example.com", auth: {env: {username: 1USER, password: P}}}',
        ),
      ),
      /registry\.auth\.env\.username: expected an environment variable name .*found "1USER"/,
    )
    assert.match(
      await problems(
        lines('project: a', 'registry: {url: "https://r.example.com", auth: {env: {username: U}}}'),
      ),
      /registry\.auth\.env: missing required key "password"/,
    )
    assert.match(
      await problems(lines('project: a', 'registry: {url: "https://r.example.com", insecur: true}')),
      /registry\.insecur: unknown key "insecur"\n {2}hint: did you mean "insecure"\?/,
    )
  })
})

describe('base: {registry}', () => {
  it('becomes {kind: registry, ref} with the host lower case and :latest when neither tag nor digest is given', async () => {
    const d = `sha256:${'ab'.repeat(32)}`
    const p = await load(
      lines(
        'project: a',
        'images:',
        '  a: {base: {registry: "127.0.0.1:5000/base/debian:bookworm"}}',
        '  b: {base: {registry: "Registry.Example.com/x"}}',
        `  c: {base: {registry: "localhost:5000/x@${d}"}}`,
        `  d: {base: {registry: "r.example.com/x:1.2@${d}"}}`,
      ),
    )
    assert.deepEqual(p.images.a?.base, { kind: 'registry', ref: '127.0.0.1:5000/base/debian:bookworm' })
    assert.deepEqual(p.images.b?.base, { kind: 'registry', ref: 'registry.example.com/x:latest' })
    assert.deepEqual(p.images.c?.base, { kind: 'registry', ref: `localhost:5000/x@${d}` })
    assert.deepEqual(p.images.d?.base, { kind: 'registry', ref: `r.example.com/x:1.2@${d}` })
  })

  it('a reference without a host is an error with a hint; Docker Hub is never assumed', async () => {
    assert.equal(
      await problems(lines('project: a', 'images:', '  a: {base: {registry: "debian:bookworm"}}')),
      'grail.yaml:3:24  images.a.base.registry: "debian:bookworm" names no registry host; Grail never assumes Docker Hub\n' +
        '  hint: write the host first, e.g. "registry.example.com/debian:bookworm" (Docker Hub: "registry-1.docker.io/library/debian:bookworm")',
    )
    assert.match(
      await problems(lines('project: a', 'images:', '  a: {base: {registry: "myteam/base:1"}}')),
      /"myteam\/base:1" names no registry host.*\n.*"registry-1\.docker\.io\/myteam\/base:1"/,
    )
  })

  it('bad tags, digests, repositories, and credentials in a reference (not shown)', async () => {
    const text = await problems(
      lines(
        'project: a',
        'images:',
        '  a: {base: {registry: "r.example.com/X:1"}}',
        '  b: {base: {registry: "r.example.com/x:-bad"}}',
        '  c: {base: {registry: "r.example.com/x@sha256:abc"}}',
        '  d: {base: {registry: "bob:hunter2@r.example.com/x:1"}}',
        '  e: {base: {registry: "r.example.com/x", oci: ./layout}}',
        '  f: {base: "r.example.com/x:1"}',
      ),
    )
    const got = text.split('\n')
    assert.deepEqual(
      got.filter((l) => l.startsWith('grail.yaml')),
      [
        'grail.yaml:3:24  images.a.base.registry: the repository "X" is not a repository path (lowercase letters and digits, separated by ".", "_", "__" or "-" within a component and "/" between components)',
        'grail.yaml:4:24  images.b.base.registry: "-bad" is not a tag (letters, digits, "_", "." and "-", at most 128, not starting with "." or "-")',
        'grail.yaml:5:24  images.c.base.registry: "sha256:abc" is not a sha256 digest (sha256: and 64 lowercase hex digits)',
        'grail.yaml:6:24  images.d.base.registry: a base reference has an "@" that is not followed by a sha256 digest; credentials never go in a reference',
        'grail.yaml:7:13  images.e.base: a base has exactly one of "debian", "image", "oci", "registry" or "rootfs", found 2: "registry" and "oci"',
        'grail.yaml:8:13  images.f.base: a registry base is a mapping, not a shorthand',
      ],
    )
    assert.ok(got.includes('  hint: write base: {registry: r.example.com/x:1}'), text)
    assert.doesNotMatch(text, /hunter2|bob/)
  })

  it('the grammar: ports, IPv6 hosts, nested paths, separators', () => {
    assert.deepEqual(parseImageRef('[::1]:5000/a/b-c/d__e.f:v1'), {
      host: '[::1]:5000',
      repository: 'a/b-c/d__e.f',
      tag: 'v1',
    })
    for (const bad of [
      'r.example.com/a//b',
      'r.example.com/a-',
      'r.example.com/_a',
      'r.example.com/',
      'r_x.com/a',
    ])
      assert.ok('message' in parseImageRef(bad), bad)
  })
})
