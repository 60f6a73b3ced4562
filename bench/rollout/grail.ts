import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { makeBusyboxRootfs } from '../../test/helpers/busybox-rootfs.js'
import { type CliResult, grail, parseJson, tempProject } from '../../test/helpers/project.js'

export const REPLICAS = 10
export const HEALTH_INTERVAL_MS = 100

/**
 * The app both tools roll: busybox httpd serving /srv/www on $PORT. The shell wrapper exits on SIGTERM:
 * as PID 1 of its container, a bare httpd ignores SIGTERM, and both tools would then wait out their stop
 * grace period for every old instance (1 s in Grail, 10 s in docker), which measures the app, not the tool.
 */
export const APP_SHELL = "trap 'exit 0' TERM; httpd -f -p $PORT -h /srv/www & wait"

const spec = (o: { publish: number; maxSurge: number }) => `project: rollbench
images:
  web:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: site/ /srv/www
      - cmd: [/bin/sh, -c, ${JSON.stringify(APP_SHELL)}]
services:
  web:
    image: web
    replicas: ${REPLICAS}
    port: 8080
    publish: ${o.publish}
    healthcheck: { http: /index.html, interval: ${HEALTH_INTERVAL_MS}ms, timeout: 500ms }
    rollout: { strategy: rolling, maxSurge: ${o.maxSurge}, maxUnavailable: 0, healthTimeout: 10s, drain: 0s }
`

function check(res: CliResult, what: string): CliResult {
  if (res.code !== 0) throw new Error(`${what} exited ${res.code}\n${res.stderr}\n${res.stdout}`)
  return res
}

export interface GrailProject {
  dir: string
  url: string
  /** Writes the spec and a new page, builds (untimed), then times `grail apply` alone. */
  roll(o: { maxSurge: number; page: string }): Promise<number>
  /** First deploy with `grail up`, untimed. */
  up(): Promise<void>
  /** Port of one running instance, from `grail --json status`. */
  instancePort(): Promise<number>
  down(): Promise<void>
}

/** A busybox-rootfs project (as in test/e2e/deploy.test.ts) in a temp dir, not deployed yet. */
export async function grailProject(publish: number): Promise<GrailProject> {
  const dir = await tempProject(
    { 'grail.yaml': spec({ publish, maxSurge: 1 }), 'site/index.html': 'v0\n' },
    'grail-bench-roll-',
  )
  makeBusyboxRootfs(join(dir, 'rootfs.tar'))
  const cwd = { cwd: dir }
  let upped = false
  const project: GrailProject = {
    dir,
    url: `http://127.0.0.1:${publish}/index.html`,
    async roll({ maxSurge, page }) {
      await writeFile(join(dir, 'grail.yaml'), spec({ publish, maxSurge }))
      await writeFile(join(dir, 'site/index.html'), `${page}\n`)
      check(await grail(['build'], cwd), 'grail build')
      const t0 = performance.now()
      check(await grail(['apply'], cwd), 'grail apply')
      const elapsed = performance.now() - t0
      const body = (await (await fetch(project.url)).text()).trim()
      if (body !== page) throw new Error(`after the rollout the proxy served "${body}", not "${page}"`)
      return elapsed
    },
    async up() {
      upped = true
      check(await grail(['up'], cwd), 'grail up')
    },
    async instancePort() {
      const s = parseJson<{ instances: Array<{ port: number | null; health: string }> }>(
        await grail(['--json', 'status'], cwd),
      )
      const port = s.instances.find((i) => i.health === 'healthy' && i.port)?.port
      if (!port) throw new Error(`no healthy instance with a port in grail status: ${JSON.stringify(s)}`)
      return port
    },
    async down() {
      if (upped) check(await grail(['down'], cwd), 'grail down')
    },
  }
  return project
}
