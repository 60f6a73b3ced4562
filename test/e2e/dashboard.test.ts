// The web dashboard of `grail serve` in headless Chromium (Debian `chromium`, driven by playwright-core),
// against a real `grail serve` of a busybox project with two releases (issue 11, acceptance 6): the
// fleet page lists exactly what `grail status --json` lists; an instance killed with SIGKILL shows as
// down (crashed, stopped) and then replaced, without a reload; a rollback from the page asks for a reason, is refused
// without a write token (nothing changes) and with one ends with the previous release serving; a server
// without --insecure-read makes the page ask for a read token. It writes a screenshot of each page,
// dashboard-*.png, to a temp dir, or with GRAIL_UPDATE_SCREENSHOTS=1 to docs/images, which
// docs/dashboard.md shows.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { type BrowserContext, chromium, type Page } from 'playwright-core'
import { fetchWithRetry, freePort } from '../helpers/net.js'
import { busyboxProject, GRAIL_BIN, grail, parseJson, REPO, tearDown } from '../helpers/project.js'

const CHROMIUM = '/usr/bin/chromium'
// docs/images only when asked (GRAIL_UPDATE_SCREENSHOTS=1): a run does not rewrite committed files
const SHOTS =
  process.env.GRAIL_UPDATE_SCREENSHOTS === '1'
    ? join(REPO, 'docs', 'images')
    : join(tmpdir(), `grail-dashboard-screenshots-${process.pid}`)

// web is built on base, so the images page has an ancestry to show
const spec = (port: number) => `project: dash
images:
  base:
    base: { rootfs: ./rootfs.tar }
  web:
    base: image:base
    steps:
      - copy: site/ /srv/www
      - cmd: [/bin/sh, -c, "exec httpd -f -p $PORT -h /srv/www"]
services:
  web:
    image: web
    replicas: 2
    port: 8080
    publish: ${port}
    healthcheck: { http: /index.html, interval: 100ms, timeout: 500ms }
    rollout: { drain: 200ms, healthTimeout: 5s }
    recycle: { maxAge: 1h }
`

interface Row {
  id: string
  service: string
  release: number
  health: string
  pid: number | null
}
interface Status {
  instances: Row[]
  releases: Array<{ service: string; number: number; status: string }>
}

/** The first string in a JSON value that looks like a token (`grail_…`): `grail token create --json` prints it once. */
function tokenIn(v: unknown): string | undefined {
  if (typeof v === 'string') return v.startsWith('grail_') ? v : undefined
  if (Array.isArray(v)) return v.map(tokenIn).find(Boolean)
  if (typeof v === 'object' && v !== null) return Object.values(v).map(tokenIn).find(Boolean)
  return undefined
}

describe('dashboard in headless Chromium against grail serve', () => {
  let dir: string
  let port: number
  let base: string
  let serve: ChildProcess | undefined
  let serveLog = ''
  let profile: string
  let browser: BrowserContext
  let page: Page
  let readToken: string
  let writeToken: string
  const requests: string[] = []
  const refused: string[] = []

  const status = async () => parseJson<Status>(await grail(['--json', 'status'], { cwd: dir }))
  const active = (s: Status) => s.releases.find((r) => r.service === 'web' && r.status === 'active')?.number
  const served = async () => fetchWithRetry(`http://127.0.0.1:${port}/index.html`, 5000)
  const live = (s: Status) => s.instances.filter((i) => i.service === 'web').map((i) => i.id)
  /** instance ids the fleet page lists now (instances that left, shown struck through, excluded) */
  const listed = () =>
    page.$$eval('tr[data-instance]:not([data-health="gone"])', (rows) =>
      rows.map((r) => r.getAttribute('data-instance') ?? ''),
    )
  /**
   * Polls a JavaScript expression in the page until it is true (waitForFunction compiles its predicate
   * with eval inside the page, which the dashboard's Content-Security-Policy rightly refuses).
   */
  const waitInPage = async (expr: string, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs
    while (!(await page.evaluate(expr))) {
      if (Date.now() > deadline) throw new Error(`not true within ${timeoutMs} ms: ${expr}`)
      await sleep(100)
    }
  }
  const shot = async (name: string) => {
    await page.screenshot({ path: join(SHOTS, `dashboard-${name}.png`), fullPage: true })
  }

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: ./scripts/setup installs Debian's chromium`)
    assert.ok(
      existsSync(join(REPO, 'dist', 'dashboard', 'index.html')),
      'dist/dashboard is missing: run `npm run build`',
    )
    port = await freePort()
    dir = await busyboxProject({
      'grail.yaml': spec(port),
      'site/index.html': 'one\n',
      'site/motd.txt': 'welcome\n',
    })
    assert.equal((await grail(['up'], { cwd: dir })).code, 0)
    await writeFile(join(dir, 'site/index.html'), 'two\n')
    const up = await grail(['up'], { cwd: dir })
    assert.equal(up.code, 0, up.stderr)

    const token = async (name: string, scope: string) => {
      const res = await grail(['--json', 'token', 'create', '--name', name, '--scope', scope], { cwd: dir })
      const t = tokenIn(parseJson<unknown>(res))
      assert.ok(t, `grail token create printed no token: ${res.stdout}`)
      return t
    }
    readToken = await token('reader', 'read')
    writeToken = await token('writer', 'write')

    await startServe(['--insecure-read'])

    await mkdir(SHOTS, { recursive: true })
    profile = await mkdtemp(join(tmpdir(), 'grail-chromium-'))
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1280, height: 800 },
    })
    page = browser.pages()[0] ?? (await browser.newPage())
    page.on('request', (r) => requests.push(r.url()))
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) refused.push(m.text())
    })
    page.on('pageerror', (e) => refused.push(`page error: ${e.message}`))
  })

  /** Starts `grail serve` on a free port of 127.0.0.1 (`base` is its URL) and waits until it answers. */
  const startServe = async (flags: string[]) => {
    const apiPort = await freePort()
    base = `http://127.0.0.1:${apiPort}/`
    serveLog = ''
    const child = spawn(
      process.execPath,
      [GRAIL_BIN, 'serve', '--listen', `127.0.0.1:${apiPort}`, ...flags],
      {
        cwd: dir,
        env: { ...process.env, NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    serve = child
    child.stdout?.on('data', (c) => {
      serveLog += c
    })
    child.stderr?.on('data', (c) => {
      serveLog += c
    })
    // up when it answers the API: 200, or 401 when reads need a token
    const deadline = Date.now() + 20_000
    for (;;) {
      const res = await fetch(`${base}api/v1/environments`).catch(() => undefined)
      if (res?.status === 200 || res?.status === 401) return
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`grail serve did not answer (exit ${child.exitCode}):\n${serveLog}`)
      await sleep(100)
    }
  }

  /** Stops the `grail serve` this test started (SIGTERM, then SIGKILL after 10 s). */
  const stopServe = async () => {
    const child = serve
    serve = undefined
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    const done = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)])
    if (!done) {
      child.kill('SIGKILL')
      await exited
    }
  }

  after(async () => {
    await browser?.close()
    // Chromium's helper processes may still be writing the profile for a moment after close
    if (profile) await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 })
    // the daemon first, or it would heal what `grail down` destroys
    await stopServe()
    if (dir) await tearDown(dir)
    if (process.env.GRAIL_UPDATE_SCREENSHOTS !== '1') await rm(SHOTS, { recursive: true, force: true })
  })

  test('the fleet page lists the instances grail status --json lists', async () => {
    const res = await page.goto(`${base}#/fleet`)
    // the page works under the policy grail serve sends: nothing inline, nothing from elsewhere
    assert.match(res?.headers()['content-security-policy'] ?? '', /default-src 'self'/)
    await page.waitForSelector('tr[data-instance]')
    // both read the same moment only when nothing changes in between: compare until they agree
    const deadline = Date.now() + 10_000
    let want: string[] = []
    let got: string[] = []
    while (Date.now() < deadline) {
      want = live(await status()).sort()
      await page.waitForTimeout(3500) // one status poll of the page
      got = (await listed()).sort()
      if (JSON.stringify(got) === JSON.stringify(want)) break
    }
    assert.deepEqual(got, want)
    assert.equal(want.length, 2)
    for (const id of want) {
      const release = await page.getAttribute(`tr[data-instance="${id}"]`, 'data-release')
      assert.equal(release, '2', `${id} runs release #2`)
    }
    assert.match((await page.textContent('[data-service="web"] header')) ?? '', /release #2/)
    await shot('fleet')
  })

  test('a killed instance shows as down (crashed, stopped), then replaced, without a reload', async (t) => {
    const before = await status()
    const victim = before.instances.find((i) => i.service === 'web' && i.health === 'healthy' && i.pid)
    assert.ok(victim?.pid, `a healthy instance with a pid: ${JSON.stringify(before.instances)}`)
    // every state the victim's row shows, recorded in the page; the marker is lost on a reload
    await page.evaluate(`(() => {
        window.__noReload = true
        window.__seen = []
        const note = () => {
          const row = document.querySelector('tr[data-instance="${victim.id}"]')
          const s = row ? row.getAttribute('data-health') + (row.getAttribute('data-replacing') ? '+replacing' : '') : 'absent'
          if (window.__seen[window.__seen.length - 1] !== s) window.__seen.push(s)
        }
        note()
        new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true })
      })()`)
    process.kill(victim.pid, 'SIGKILL')

    // replaced: the victim is no longer listed as live, and two healthy instances of web are
    await waitInPage(
      `(() => {
        const rows = [...document.querySelectorAll('[data-service="web"] tr[data-instance]')]
        const healthy = rows.filter((r) => r.getAttribute('data-health') === 'healthy')
        const victim = rows.find((r) => r.getAttribute('data-instance') === '${victim.id}')
        return healthy.length === 2 && !healthy.includes(victim) && (!victim || victim.getAttribute('data-health') === 'gone')
      })()`,
      30_000,
    )
    const seen = (await page.evaluate('window.__seen')) as string[]
    t.diagnostic(`the killed instance's row showed: ${seen.join(' → ')}`)
    assert.equal(await page.evaluate('window.__noReload === true'), true, 'the page was not reloaded')
    assert.equal(seen[0], 'healthy', `states shown: ${seen.join(' → ')}`)
    const down = seen.findIndex((s) => /^(stopped|unhealthy|failing|crashed|missing)\b/.test(s))
    const gone = seen.findIndex((s) => s === 'gone' || s === 'absent')
    assert.ok(down > 0, `the page showed the instance down before it went: ${seen.join(' → ')}`)
    assert.ok(gone > down, `then gone: ${seen.join(' → ')}`)

    const afterKill = await status()
    assert.ok(!live(afterKill).includes(victim.id))
    assert.deepEqual((await listed()).sort(), live(afterKill).sort())
    assert.equal(afterKill.instances.filter((i) => i.health === 'healthy').length, 2)
    await shot('fleet-replaced')
  })

  test('a rollback from the page asks for a reason, needs a write token, and ends with the previous release', async () => {
    assert.equal(await served(), 'two\n')
    assert.equal(active(await status()), 2)
    const posts = () => requests.filter((u) => u.endsWith('/services/web/rollback')).length
    const unchanged = async (why: string) => {
      const s = await status()
      assert.equal(active(s), 2, `${why}: release #2 is still active`)
      assert.ok(
        s.instances.every((i) => i.release === 2),
        `${why}: nothing was replaced: ${JSON.stringify(s.instances)}`,
      )
      assert.equal(await served(), 'two\n', `${why}: release #2 still serves`)
    }

    await page.click('[data-service="web"] button[data-action="rollback"]')
    await page.waitForSelector('dialog#action[open]')
    // no reason: the form does not go out
    await page.click('dialog#action button[type="submit"]')
    await page.waitForTimeout(300)
    assert.equal(posts(), 0, 'no request without a reason')

    await page.fill('dialog#action textarea[name="reason"]', 'v2 breaks the checkout page')
    // no token
    await page.fill('dialog#action input[name="token"]', '')
    await page.click('dialog#action button[type="submit"]')
    await page.waitForSelector('dialog#action [data-outcome="error"][data-status="401"]')
    await unchanged('without a token')
    // a read token
    await page.fill('dialog#action input[name="token"]', readToken)
    await page.click('dialog#action button[type="submit"]')
    await page.waitForSelector('dialog#action [data-outcome="error"][data-status="403"]')
    await unchanged('with a read token')
    await shot('rollback-refused')

    await page.fill('dialog#action input[name="token"]', writeToken)
    await page.click('dialog#action button[type="submit"]')
    await page.waitForSelector('dialog#action [data-outcome="ok"]', { timeout: 60_000 })
    assert.match((await page.textContent('dialog#action .result')) ?? '', /Release #1 of web is active again/)
    assert.equal(posts(), 3)

    const s = await status()
    assert.equal(active(s), 1)
    assert.ok(
      s.instances.length === 2 && s.instances.every((i) => i.release === 1),
      JSON.stringify(s.instances),
    )
    assert.equal(await served(), 'one\n')
    // and it stays so: the daemon heals, it does not undo a rollback
    await sleep(5000)
    assert.equal(active(await status()), 1)
    assert.equal(await served(), 'one\n')

    // the token stays in this tab's sessionStorage, nowhere else, and never goes into a URL
    assert.equal(await page.evaluate(`sessionStorage.getItem('grail.token.write')`), writeToken)
    assert.equal(await page.evaluate('localStorage.length'), 0)
    assert.equal(await page.evaluate('document.cookie'), '')
    assert.deepEqual(
      requests.filter((u) => u.includes('grail_')),
      [],
    )
    await page.click('dialog#action button:has-text("Close")')
    await page.waitForSelector('[data-service="web"][data-active-release="1"]')
  })

  test('every page renders live data (events, a hotfix TTL counting down, the diff); revoke and recycle from the page', async () => {
    await page.goto(`${base}#/events`)
    await page.waitForSelector('tr[data-event]')
    assert.ok(await page.$('tr[data-event] code:text-is("api.rollback")'), 'the rollback is in the log')

    // a hotfix made by hand reaches the open event log, then the hotfix and drift pages
    const target = (await status()).instances[0]?.id as string
    const argv = ['hotfix', target, '--ttl', '10m', '--reason', 'INC-7: log <b>logins</b>', '--']
    const cmd = ['/bin/sh', '-c', 'echo debug >> /srv/www/motd.txt']
    let hotfix = await grail([...argv, ...cmd], { cwd: dir })
    // the daemon may hold the apply lock for a moment
    for (let i = 0; hotfix.code !== 0 && /lock/i.test(hotfix.stderr) && i < 20; i++) {
      await sleep(500)
      hotfix = await grail([...argv, ...cmd], { cwd: dir })
    }
    assert.equal(hotfix.code, 0, hotfix.stderr)
    await page.waitForSelector('tr[data-event].fresh code:text-is("hotfix.applied")', { timeout: 10_000 })
    await shot('events')

    await page.goto(`${base}#/hotfixes`)
    const ttl = page.locator('.hotfixes-live .ttl').first()
    await ttl.waitFor()
    const first = await ttl.textContent()
    await page.waitForTimeout(2100)
    const later = await ttl.textContent()
    assert.match(first ?? '', /^(9m \d+s|10m) left$/)
    assert.notEqual(later, first, 'the TTL counts down')
    // the reason is shown as text, not as markup
    assert.ok(await page.$('.hotfixes-live td:text-is("INC-7: log <b>logins</b>")'))
    assert.equal(await page.$('.hotfixes-live b'), null)
    await shot('hotfixes')

    await page.goto(`${base}#/drift`)
    await page.waitForSelector(`.drift[data-instance="${target}"] pre.diff .add`, { timeout: 15_000 })
    assert.equal(await page.textContent(`.drift[data-instance="${target}"] pre.diff .add`), '+debug\n')
    assert.match((await page.textContent(`.drift[data-instance="${target}"]`)) ?? '', /excused by hotfix/)
    await shot('drift')

    await page.goto(`${base}#/images`)
    await page.waitForSelector('ul.tree li')
    const versions = await page.$$eval('[data-image="web"] tr[data-version]', (rows) =>
      rows.map((r) => r.getAttribute('data-version')),
    )
    assert.deepEqual(versions, ['2', '1'])
    assert.match(
      (await page.textContent('[data-image="web"] tr[data-version="1"]')) ?? '',
      /local: web #1, 2 instances/,
    )
    // the ancestry: both versions of web under the base version they were built on
    const tree = await page.$$eval('ul.tree > li', (roots) =>
      roots.map((li) => [
        li.querySelector('strong')?.textContent,
        [...li.querySelectorAll(':scope > ul > li > .node > strong')].map((s) => s.textContent),
      ]),
    )
    assert.deepEqual(tree, [['base v1', ['web v1', 'web v2']]])
    await page.waitForSelector('section:has(h2:text-is("Pending package updates")) p:not(:text("Loading"))')

    // revoke web v2 (nothing runs it since the rollback): the write token this tab kept fills the dialog
    await page.click('[data-image="web"] tr[data-version="2"] button[data-action="revoke"]')
    await page.fill('dialog#action textarea[name="reason"]', 'v2 breaks the checkout page')
    assert.equal(await page.inputValue('dialog#action input[name="token"]'), writeToken)
    await page.click('dialog#action button[type="submit"]')
    await page.waitForSelector('dialog#action [data-outcome="ok"]:has-text("Revoked web v2.")')
    await page.click('dialog#action button:has-text("Close")')
    // the image.revoked event refreshes the page
    await page.waitForSelector('[data-image="web"] tr[data-version="2"][data-status="revoked"]')
    const images = parseJson<Array<{ name: string; version: number; status: string }>>(
      await grail(['--json', 'images'], { cwd: dir }),
    )
    assert.equal(images.find((i) => i.name === 'web' && i.version === 2)?.status, 'revoked')
    await shot('images')

    await page.goto(`${base}#/fleet`)
    await page.waitForSelector(`tr[data-instance="${target}"] .badge:text-is("1 excused")`, {
      timeout: 20_000,
    })
    await shot('fleet')

    // recycle now: nothing is older than maxAge (1h), so nothing is replaced
    const ids = live(await status()).sort()
    await page.click('.env-head button[data-action="recycle"]')
    await page.fill('dialog#action textarea[name="reason"]', 'monthly recycle')
    await page.click('dialog#action button[type="submit"]')
    await page.waitForSelector('dialog#action [data-outcome="ok"]:has-text("No instance was due.")')
    await page.click('dialog#action button:has-text("Close")')
    assert.deepEqual(live(await status()).sort(), ids)

    // everything came from grail serve, and nothing broke the Content-Security-Policy
    assert.deepEqual(
      requests.filter((u) => !u.startsWith(base)),
      [],
    )
    assert.deepEqual(refused, [])
  })

  test('without --insecure-read the page asks for a read token, and shows the fleet with it', async () => {
    await stopServe()
    await startServe([])
    // a new port is a new origin: this tab has no token for it
    await page.goto(`${base}#/fleet`)
    await page.waitForSelector('#banner:not([hidden]) .error:has-text("needs a read token")')
    await page.waitForSelector('#live[data-state="unauthorized"]')
    assert.equal(await page.$('tr[data-instance]'), null)

    await page.click('#banner button')
    await page.fill('dialog.tokens input[name="read"]', readToken)
    await page.click('dialog.tokens button[type="submit"]')
    await page.waitForSelector('tr[data-instance]')
    await page.waitForSelector('#live[data-state="live"]')
    assert.equal(await page.isHidden('#banner'), true)
    assert.deepEqual((await listed()).sort(), live(await status()).sort())
    assert.equal(await page.evaluate(`sessionStorage.getItem('grail.token.read')`), readToken)
    assert.equal(await page.evaluate('localStorage.length'), 0)
    assert.deepEqual(
      requests.filter((u) => u.includes('grail_')),
      [],
    )
  })
})
