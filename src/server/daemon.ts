import { statSync } from 'node:fs'
import { isIP } from 'node:net'
import { fileURLToPath } from 'node:url'
import pino, { type Logger } from 'pino'
import { openEnvironment } from '../engine/environment.js'
import { GrailError } from '../errors.js'
import { resolveHome } from '../home.js'
import { projectSecrets } from '../plan/secrets.js'
import { requireEnvironment } from '../spec/environments.js'
import { loadProject } from '../spec/index.js'
import type { Project } from '../spec/types.js'
import {
  acquireLock,
  allReleases,
  appendEvent,
  currentActor,
  type Db,
  openDb,
  recordProjectMeta,
  releaseLock,
  useRedactor,
} from '../state/index.js'
import { type Redactor, redactText, redactValue } from '../util/redact.js'
import { EventFeed, errorFields, type OpenedEnvironment, type ServerContext } from './context.js'
import { Reconciler } from './reconciler.js'

export interface ServeOptions {
  /** the spec file or the directory to find it in */
  target: string
  /** environments to reconcile; empty: every environment of the spec */
  environments: string[]
  listen: { host: string; port: number }
  tls?: { cert: string; key: string }
  insecureRead: boolean
  /** how often each loop polls the provider when nothing nudges it */
  intervalMs: number
  /** one pass of every loop (and the patch check), then exit */
  once: boolean
  /** pino level */
  logLevel: string
  /** where the JSON log lines go (stdout) */
  logDestination?: NodeJS.WritableStream
}

/** What a running daemon offers whoever started it (the CLI, a test). */
export interface Daemon {
  url: string | null
  ctx: ServerContext
  /** stops the loops after the pass under way, closes the server, releases the serve lock */
  stop(reason: string): Promise<void>
  /** resolves when `stop` has finished */
  stopped: Promise<void>
}

/** The dashboard's static files, next to the compiled code (dist/dashboard). */
export function dashboardDir(): string {
  return fileURLToPath(new URL('../../dist/dashboard/', import.meta.url))
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])

/** `--insecure-read` only where nothing but this machine can connect. */
export function checkListen(opts: Pick<ServeOptions, 'listen' | 'insecureRead'>): void {
  const { host } = opts.listen
  if (host !== 'localhost' && isIP(host) === 0)
    throw new GrailError('BAD_LISTEN', `--listen ${host}: not an IP address`, {
      hint: 'give HOST:PORT with an address, e.g. 127.0.0.1:7070 or 0.0.0.0:7070',
    })
  if (opts.insecureRead && !LOOPBACK.has(host))
    throw new GrailError(
      'BAD_LISTEN',
      `--insecure-read serves reads without a token, and ${host} is not loopback`,
      {
        hint: 'listen on 127.0.0.1 with --insecure-read, or drop --insecure-read and give clients a read token (`grail token create --scope read`)',
      },
    )
}

/** A pino logger whose every line is cleaned of the project's secrets before it is written. */
export function makeLogger(level: string, redactor: () => Redactor, dest?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { log: (obj) => redactValue(obj, redactor()) },
      hooks: {
        logMethod(args, method) {
          const cleaned = args.map((a) => (typeof a === 'string' ? redactText(a, redactor()) : a))
          method.apply(this, cleaned as Parameters<typeof method>)
        },
      },
    },
    dest ?? pino.destination({ fd: 1, sync: true }),
  )
}

/** The spec file's identity: a new mtime, size or inode means it was edited. */
function specStamp(file: string): string {
  try {
    const s = statSync(file)
    return `${s.ino}:${s.size}:${s.mtimeMs}`
  } catch {
    return 'missing'
  }
}

/**
 * `grail serve`: one reconciler per environment, the HTTP API and dashboard, the patch policy on its
 * timer. Holds the `serve` lock for its life (a second daemon for the same project fails at once naming
 * this one) and the apply lock only while it changes something.
 */
export async function startDaemon(opts: ServeOptions): Promise<Daemon> {
  checkListen(opts)
  let project: Project = await loadProject(opts.target)
  const home = resolveHome(project.dir)
  const db: Db = openDb(home.db)
  let redactor: Redactor = projectSecrets(project, allReleases(db)).redactor
  const log = makeLogger(opts.logLevel, () => redactor, opts.logDestination)
  const holder = `grail serve (${currentActor()})`
  const environments = opts.environments.length > 0 ? opts.environments : Object.keys(project.environments)
  try {
    for (const env of environments) requireEnvironment(project, env)
    recordProjectMeta(db, { project: project.name, environments: Object.keys(project.environments) })
    useRedactor(db, redactor)
    acquireLock(db, 'serve', { holder })
  } catch (err) {
    db.close()
    throw err
  }
  /** The redactor again from the spec and every release: after anything that may have made a release. */
  const refreshSecrets = (): void => {
    redactor = projectSecrets(project, allReleases(db)).redactor
    useRedactor(db, redactor)
  }
  let stamp = specStamp(project.file)
  /** Reloads the spec when its file changed; an invalid edit is logged once and the last good spec kept. */
  let badSpec = ''
  let reloading: Promise<void> | undefined
  // one load at a time: the spec timer and a pass may both see the edit
  const reloadIfChanged = (): Promise<void> => {
    reloading ??= reload().finally(() => {
      reloading = undefined
    })
    return reloading
  }
  const reload = async (): Promise<void> => {
    const now = specStamp(project.file)
    if (now === stamp) return
    try {
      const next = await loadProject(opts.target)
      stamp = now
      project = next
      refreshSecrets()
      badSpec = ''
      log.info({ file: project.file }, 'spec reloaded')
      appendEvent(db, 'serve.spec-reloaded', project.name, { file: project.file })
      // a policy may have changed (drift.policy, recycle): every environment looks again
      for (const r of reconcilers.values()) r.nudge()
    } catch (err) {
      // the same bytes are not loaded again: the next edit is
      stamp = now
      const message = err instanceof Error ? err.message : String(err)
      // a spec error's message counts the problems; its details name each (file:line:col, key, fix)
      const details = err instanceof GrailError ? err.details : []
      const said = [message, ...details].join('\n')
      if (said !== badSpec) {
        badSpec = said
        log.error({ file: project.file, err: message, details }, 'spec invalid: the last valid spec is kept')
        appendEvent(db, 'serve.spec-invalid', project.name, { file: project.file, message, details })
      }
    }
  }
  const events = new EventFeed(db)
  // one opened environment per environment and spec: its provider (and the provider's watch) and its
  // routers live as long as the spec they were made from
  const opened = new Map<string, { project: Project; a: Promise<OpenedEnvironment> }>()
  const openFor = (env: string): Promise<OpenedEnvironment> => {
    const cached = opened.get(env)
    if (cached?.project === project) return cached.a
    const a = openEnvironment({ project, environment: env, home, db })
    opened.set(env, { project, a })
    a.catch(() => opened.delete(env))
    return a
  }
  const reconcilers = new Map<string, Reconciler>()
  const ctx: ServerContext = {
    project: () => project,
    home,
    db,
    environments,
    log,
    events,
    async withEnvironment(env, o, fn) {
      await reloadIfChanged()
      requireEnvironment(project, env)
      if (o.lock) acquireLock(db, 'apply', { holder })
      try {
        return await fn(await openFor(env))
      } finally {
        if (o.lock) {
          releaseLock(db, 'apply')
          // a write may have made a release with secrets the log and the events must hide from now on
          refreshSecrets()
        }
      }
    },
    reconcileSoon(env) {
      reconcilers.get(env)?.nudge()
    },
    stats: () => [...reconcilers.values()].map((r) => r.stats),
  }
  for (const env of environments)
    reconcilers.set(env, new Reconciler(ctx, env, { intervalMs: opts.intervalMs, holder }))
  appendEvent(db, 'serve.start', project.name, {
    environments,
    pid: process.pid,
    ...(opts.once ? { once: true } : { listen: `${opts.listen.host}:${opts.listen.port}` }),
  })
  log.info({ project: project.name, environments, intervalMs: opts.intervalMs }, 'grail serve started')

  let http: { url: string; close(): Promise<void> } | undefined
  if (!opts.once) {
    try {
      const { startHttpServer } = await import('./http/index.js')
      http = await startHttpServer(ctx, {
        host: opts.listen.host,
        port: opts.listen.port,
        ...(opts.tls ? { tls: opts.tls } : {}),
        insecureRead: opts.insecureRead,
        dashboardDir: dashboardDir(),
        outdated: async () => {
          const { outdatedReport } = await import('../lifecycle/outdated.js')
          return outdatedReport({ project: ctx.project(), home, db, now: Date.now() })
        },
      })
      log.info({ url: http.url }, 'listening')
    } catch (err) {
      releaseLock(db, 'serve')
      db.close()
      throw err
    }
  }

  let resolveStopped: () => void = () => {}
  const stopped = new Promise<void>((r) => {
    resolveStopped = r
  })
  // the patch policy: at start (the archive cache keeps that cheap) and then every policies.patch.interval
  let patchRun: Promise<void> | undefined
  let patchTimer: NodeJS.Timeout | undefined
  let specTimer: NodeJS.Timeout | undefined
  let stoppingNow = false
  const runPatch = (): Promise<void> => {
    patchRun ??= (async () => {
      const { runPatchPolicy, patchPolicyOf } = await import('./patch.js')
      try {
        const outcome = await runPatchPolicy(ctx, Date.now())
        const acted = outcome.built.length > 0 || outcome.reported.length > 0
        log[acted ? 'info' : 'debug'](
          {
            outdated: outcome.report.images.length,
            reported: outcome.reported.length,
            built: outcome.built.length,
          },
          'patch policy checked',
        )
        refreshSecrets()
        for (const env of environments) reconcilers.get(env)?.nudge()
      } catch (err) {
        const e = errorFields(err)
        log.error({ err: e }, 'patch policy failed')
        appendEvent(db, 'patch.error', project.name, e)
      } finally {
        patchRun = undefined
        if (!opts.once && !stoppingNow) {
          patchTimer = setTimeout(() => void runPatch(), patchPolicyOf(project).interval)
          patchTimer.unref()
        }
      }
    })()
    return patchRun
  }

  let stopping: Promise<void> | undefined
  const stop = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      log.info({ reason }, 'stopping: the pass under way finishes first')
      stoppingNow = true
      clearTimeout(patchTimer)
      clearInterval(specTimer)
      await Promise.all([...reconcilers.values()].map((r) => r.stop()))
      await patchRun
      await http?.close()
      events.close()
      appendEvent(db, 'serve.stop', project.name, { reason })
      releaseLock(db, 'serve')
      db.close()
      log.info('stopped')
      resolveStopped()
    })()
    return stopping
  }

  // an edit of grail.yaml is seen within a second (a stat), and wakes every reconciler once loaded
  if (opts.once) {
    for (const r of reconcilers.values()) await r.runPass()
    await runPatch()
  } else {
    for (const r of reconcilers.values()) r.start()
    void runPatch()
    specTimer = setInterval(() => void reloadIfChanged(), 1000)
    specTimer.unref()
  }
  return { url: http?.url ?? null, ctx, stop, stopped }
}
