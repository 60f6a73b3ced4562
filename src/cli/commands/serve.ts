import { existsSync, realpathSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { Command } from 'commander'
import { GrailError } from '../../errors.js'
import type { GlobalOptions } from '../project.js'
import { findSpecFile } from '../project.js'
import { out } from '../render.js'

interface ServeFlags {
  listen: string
  tlsCert?: string
  tlsKey?: string
  insecureRead?: boolean
  interval: string
  once?: boolean
  logLevel: string
  printUnit?: boolean
}

/** `HOST:PORT` (`[::1]:7070` for IPv6). */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value)
  const port = m ? Number(m[3]) : Number.NaN
  if (!m || port > 65535)
    throw new GrailError('BAD_LISTEN', `--listen ${JSON.stringify(value)} is not HOST:PORT`, {
      hint: 'e.g. --listen 127.0.0.1:7070 (port 0 picks a free one)',
    })
  return { host: (m[1] ?? m[2]) as string, port }
}

/** A systemd unit that runs this daemon for the project in `dir` with the same flags. */
export function systemdUnit(opts: { dir: string; project: string; argv: string[]; grail: string }): string {
  // systemd expands specifiers (%) everywhere and variables ($) in ExecStart: both are doubled
  const literal = (a: string) => a.replaceAll('%', '%%')
  const quote = (a: string) => {
    const v = literal(a).replaceAll('$', '$$$$')
    return /^[A-Za-z0-9_@%+=:,./-]+$/.test(v) ? v : `"${v.replace(/(["\\])/g, '\\$1')}"`
  }
  return `# grail serve for project ${opts.project}: \`grail serve --print-unit > /etc/systemd/system/grail-${opts.project}.service\`,
# then \`systemctl daemon-reload && systemctl enable --now grail-${opts.project}\`.
[Unit]
Description=Grail reconciler, API and dashboard for project ${opts.project}
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
WorkingDirectory=${literal(opts.dir)}
ExecStart=${[opts.grail, '-C', opts.dir, 'serve', ...opts.argv].map(quote).join(' ')}
# SIGTERM lets the rollout under way finish; a daemon killed anyway resumes at its next start
KillSignal=SIGTERM
TimeoutStopSec=10min
# only the daemon stops with the unit: instances, their data plane and its keeper outlive it by design
KillMode=process
Restart=always
RestartSec=2s
# the log is JSON lines on stdout, one object per line (journalctl -o cat -u grail-${opts.project})
StandardOutput=journal
StandardError=journal
UMask=0077

[Install]
WantedBy=multi-user.target
`
}

/** The flags of this run, as the unit passes them on (without --print-unit). */
function unitArgv(envs: string[], f: ServeFlags): string[] {
  return [
    ...envs,
    '--listen',
    f.listen,
    '--interval',
    f.interval,
    '--log-level',
    f.logLevel,
    ...(f.tlsCert ? ['--tls-cert', resolve(f.tlsCert)] : []),
    ...(f.tlsKey ? ['--tls-key', resolve(f.tlsKey)] : []),
    ...(f.insecureRead ? ['--insecure-read'] : []),
  ]
}

/** `grail serve`. */
export function registerServe(program: Command, globals: () => GlobalOptions): void {
  program
    .command('serve')
    .description(
      'run the reconciler (heal, drift fix, hotfix expiry, recycling, revocation), the patch policy, the HTTP API and the dashboard',
    )
    .argument('[env...]', 'environments to reconcile (default: all)')
    .option('--listen <host:port>', 'address of the API and dashboard', '127.0.0.1:7070')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
    .option('--insecure-read', 'serve reads without a token (loopback addresses only)')
    .option(
      '--interval <duration>',
      'the longest wait between two looks at an environment (provider events and the clock wake it sooner)',
      '30s',
    )
    .option('--once', 'one pass of every environment (and the patch check), then exit')
    .option('--log-level <level>', 'pino level: trace, debug, info, warn, error', 'info')
    .option('--print-unit', 'print a systemd unit that runs this command, and exit')
    .action(async (envs: string[], flags: ServeFlags) => {
      const g = globals()
      const listen = parseListen(flags.listen)
      const { parseDuration } = await import('../../spec/duration.js')
      const intervalMs = parseDuration(flags.interval)
      if (intervalMs === undefined || intervalMs < 100)
        throw new GrailError(
          'BAD_DURATION',
          `--interval ${JSON.stringify(flags.interval)} is not a duration of 100ms or more`,
          {
            hint: 'e.g. --interval 2s',
          },
        )
      if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined))
        throw new GrailError('BAD_LISTEN', 'TLS needs both --tls-cert and --tls-key', {
          hint: 'give both files, or neither for plain HTTP on loopback',
        })
      const target = findSpecFile(g)
      const { checkListen } = await import('../../server/daemon.js')
      checkListen({ listen, insecureRead: flags.insecureRead === true })
      if (flags.printUnit) {
        const { loadProject } = await import('../../spec/index.js')
        const project = await loadProject(target)
        const bin = '/usr/local/bin/grail'
        const grail = existsSync(bin) ? bin : realpathSync(process.argv[1] ?? 'grail')
        out(
          systemdUnit({
            dir: dirname(project.file),
            project: project.name,
            argv: unitArgv(envs, flags),
            grail,
          }),
        )
        return
      }
      const { startDaemon } = await import('../../server/daemon.js')
      const daemon = await startDaemon({
        target,
        environments: envs,
        listen,
        ...(flags.tlsCert && flags.tlsKey
          ? { tls: { cert: resolve(flags.tlsCert), key: resolve(flags.tlsKey) } }
          : {}),
        insecureRead: flags.insecureRead === true,
        intervalMs,
        once: flags.once === true,
        logLevel: flags.logLevel,
      })
      if (flags.once) {
        await daemon.stop('--once: one pass done')
        return
      }
      let signals = 0
      const onSignal = (sig: NodeJS.Signals) => {
        signals++
        // a second signal does not wait for the rollout: the next start finishes or undoes it
        if (signals > 1) process.exit(130)
        void daemon.stop(sig)
      }
      process.on('SIGTERM', onSignal)
      process.on('SIGINT', onSignal)
      await daemon.stopped
      process.off('SIGTERM', onSignal)
      process.off('SIGINT', onSignal)
    })
}
