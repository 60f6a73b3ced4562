import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Dockerd, DockerResult } from '../../test/helpers/dockerd.js'
import { HEALTH_INTERVAL_MS, REPLICAS } from './grail.js'

const SERVICE = 'rollbench'
const BASE_IMAGE = 'grail-bench/rollout-base:1'

/**
 * With `--network host` every replica shares the host's ports, so each task listens on its own:
 * BASE (baked into the image, different per tag so that a new task never collides with the one it
 * replaces) + the task's slot (a service template, 1..replicas).
 */
const APP_SHELL = "trap 'exit 0' TERM; httpd -f -p 127.0.0.1:$((BASE+SLOT)) -h /srv/www & wait"
/** The containers' health check: a GET of the page on the task's own port. */
export const HEALTH_CMD = 'wget -q -O /dev/null http://127.0.0.1:$((BASE+SLOT))/index.html || exit 1'

async function ok(p: Promise<DockerResult>, what: string): Promise<string> {
  const res = await p
  if (res.code !== 0) throw new Error(`${what} exited ${res.code}: ${res.stderr.trim()}`)
  return res.stdout.trim()
}

export interface SwarmService {
  tags: string[]
  /** Ports a task of `tag` in `slot` listens on. */
  port(tag: string, slot: number): number
  create(tag: string): Promise<void>
  /** Times `docker service update --image` until its UpdateStatus is `completed`. */
  roll(o: { tag: string; parallelism: number }): Promise<number>
  version: string
  /** Errors of new tasks that failed during a rollout (swarm replaced them and carried on). */
  failures: string[]
}

/**
 * Imports the busybox rootfs as an image, builds `tags.length` images from it with BuildKit (each its own
 * page and port base), and turns the daemon into a one-node swarm on loopback.
 */
export async function prepareSwarm(
  d: Dockerd,
  o: { work: string; rootfs: string; bases: number[] },
): Promise<SwarmService> {
  await ok(d.docker(['import', '-', BASE_IMAGE], { input: await readFile(o.rootfs) }), 'docker import')
  const tags: string[] = []
  for (const [i, base] of o.bases.entries()) {
    const ctx = join(o.work, `docker-${i}`)
    await mkdir(ctx, { recursive: true })
    await writeFile(join(ctx, 'index.html'), `d${i}\n`)
    await writeFile(
      join(ctx, 'Dockerfile'),
      `FROM ${BASE_IMAGE}\nCOPY index.html /srv/www/index.html\nENV BASE=${base}\nCMD ["/bin/sh", "-c", ${JSON.stringify(APP_SHELL)}]\n`,
    )
    const tag = `grail-bench/rollout:d${i}`
    await ok(
      d.docker(['build', '--quiet', '--network=none', '--tag', tag, ctx], { env: { DOCKER_BUILDKIT: '1' } }),
      'docker build',
    )
    tags.push(tag)
  }
  await ok(d.docker(['swarm', 'init', '--advertise-addr', '127.0.0.1']), 'docker swarm init')
  const version = await ok(d.docker(['version', '--format', '{{.Server.Version}}']), 'docker version')

  const failures: string[] = []
  const state = () =>
    ok(d.docker(['service', 'inspect', '--format', '{{.UpdateStatus.State}}', SERVICE]), 'inspect')
  return {
    tags,
    version,
    failures,
    port: (tag, slot) => (o.bases[tags.indexOf(tag)] as number) + slot,
    async create(tag) {
      await ok(
        d.docker([
          'service',
          'create',
          '--detach',
          '--quiet',
          '--name',
          SERVICE,
          '--replicas',
          String(REPLICAS),
          '--network',
          'host',
          '--no-resolve-image',
          '--env',
          'SLOT={{.Task.Slot}}',
          '--health-cmd',
          HEALTH_CMD,
          '--health-interval',
          `${HEALTH_INTERVAL_MS}ms`,
          '--health-timeout',
          '500ms',
          '--health-retries',
          '3',
          '--update-parallelism',
          '1',
          '--update-order',
          'start-first',
          '--update-delay',
          '0s',
          '--update-monitor',
          '1ms',
          '--update-failure-action',
          'continue',
          '--update-max-failure-ratio',
          '1',
          '--stop-grace-period',
          '1s',
          tag,
        ]),
        'docker service create',
      )
      const deadline = Date.now() + 60_000
      for (;;) {
        const reps = await ok(
          d.docker(['service', 'ls', '--filter', `name=${SERVICE}`, '--format', '{{.Replicas}}']),
          'ls',
        )
        if (reps === `${REPLICAS}/${REPLICAS}`) return
        if (Date.now() > deadline)
          throw new Error(`swarm service never reached ${REPLICAS} replicas: ${reps}`)
        await sleep(100)
      }
    },
    async roll({ tag, parallelism }) {
      await ok(
        d.docker([
          'service',
          'update',
          '--detach',
          '--quiet',
          '--update-parallelism',
          String(parallelism),
          SERVICE,
        ]),
        'docker service update --update-parallelism',
      )
      const t0 = performance.now()
      await ok(
        d.docker(['service', 'update', '--detach', '--quiet', '--no-resolve-image', '--image', tag, SERVICE]),
        'docker service update --image',
      )
      const deadline = Date.now() + 120_000
      for (;;) {
        const s = await state()
        if (s === 'completed') {
          const elapsed = performance.now() - t0
          const ps = await ok(
            d.docker(['service', 'ps', '--no-trunc', '--format', '{{.Image}}\t{{.Error}}', SERVICE]),
            'docker service ps',
          )
          for (const line of ps.split('\n')) {
            const [image = '', error = ''] = line.split('\t')
            // --no-trunc may print the image with its digest: `tag@sha256:…`
            if (error && (image === tag || image.startsWith(`${tag}@`))) failures.push(`${tag}: ${error}`)
          }
          return elapsed
        }
        if (s === 'paused' || s.startsWith('rollback')) {
          const why = await d.docker(['service', 'inspect', '--format', '{{.UpdateStatus.Message}}', SERVICE])
          const ps = await d.docker([
            'service',
            'ps',
            '--no-trunc',
            '--format',
            '{{.Name}} {{.Image}} {{.CurrentState}} {{.Error}}',
            SERVICE,
          ])
          const id = /task (\w+)/.exec(why.stdout)?.[1]
          const task = id
            ? await d.docker([
                'inspect',
                '--format',
                '{{json .Status}} {{json .DesiredState}} {{.Spec.ContainerSpec.Image}}',
                id,
              ])
            : undefined
          throw new Error(
            `swarm update to ${tag} ended ${s}: ${why.stdout.trim()}\n${task?.stdout ?? ''}\n${ps.stdout}`,
          )
        }
        if (Date.now() > deadline) throw new Error(`swarm update still ${s} after 120 s`)
        await sleep(20)
      }
    },
  }
}
