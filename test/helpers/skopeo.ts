// skopeo 1.9 as an independent client of a TestRegistry: TLS verified against the test's CA, credentials
// from a 0600 authfile in a private temp dir (never in argv, where `ps` shows them).
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCommand } from '../../src/util/exec.js'
import type { TestRegistry } from './registry.js'

export const SKOPEO = '/usr/bin/skopeo'

export interface SkopeoResult {
  code: number
  stdout: string
  stderr: string
}

export interface SkopeoOptions {
  /** The registry the `docker://` references of `args` point at; its CA, TLS mode and credentials apply. */
  registry: TestRegistry
  /** Credentials instead of the registry's own (a wrong password); `null` for anonymous. */
  creds?: { username: string; password: string } | null
  /** Talk to this `host:port` instead of `registry.host` (a tamper proxy); certs and creds still apply. */
  host?: string
  /** Plain HTTP at `host` even when the registry itself speaks TLS (a plain-HTTP proxy in front of it). */
  plainHttp?: boolean
  signal?: AbortSignal
}

/**
 * Runs `skopeo [--insecure-policy] SUBCOMMAND …` with the flags that make it talk to `opts.registry`:
 * `copy` and `sync` get `--src-*`/`--dest-*` flags for the side that is `docker://HOST/…`, other
 * subcommands (`inspect`, `list-tags`, `delete`) get `--cert-dir`, `--tls-verify` and `--authfile`.
 * Resolves with the exit code instead of throwing.
 */
export async function skopeo(args: readonly string[], opts: SkopeoOptions): Promise<SkopeoResult> {
  const [sub, ...rest] = args
  if (!sub) throw new Error('skopeo(): no subcommand')
  const reg = opts.registry
  const host = opts.host ?? reg.host
  const dir = await mkdtemp(join(tmpdir(), 'grail-skopeo-'))
  try {
    const authfile = join(dir, 'auth.json')
    const creds = opts.creds === undefined ? { username: reg.username, password: reg.password } : opts.creds
    const auths =
      creds && reg.auth !== 'none'
        ? { [host]: { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') } }
        : {}
    await writeFile(authfile, `${JSON.stringify({ auths })}\n`, { mode: 0o600 })
    const tlsVerify = reg.tls && !opts.plainHttp
    const side = (prefix: '' | 'src-' | 'dest-'): string[] => [
      `--${prefix}tls-verify=${tlsVerify}`,
      `--${prefix}cert-dir=${reg.certDir}`,
      ...(creds === null ? [`--${prefix}no-creds`] : [`--${prefix}authfile=${authfile}`]),
    ]
    const ours = (ref: string | undefined): boolean => !!ref && ref.startsWith(`docker://${host}/`)
    let flags: string[]
    if (sub === 'copy' || sub === 'sync') {
      const positional = rest.filter((a) => !a.startsWith('-'))
      flags = [...(ours(positional[0]) ? side('src-') : []), ...(ours(positional[1]) ? side('dest-') : [])]
    } else {
      flags = side('')
    }
    const res = await runCommand(
      {
        file: SKOPEO,
        args: ['--insecure-policy', sub, ...flags, ...rest],
        // A private HOME and XDG_RUNTIME_DIR: no ~/.docker/config.json or containers auth of the user's.
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, XDG_RUNTIME_DIR: dir, TMPDIR: dir },
      },
      { allowFailure: true, ...(opts.signal ? { signal: opts.signal } : {}) },
    )
    return { code: res.code, stdout: res.stdout.toString('utf8'), stderr: res.stderr.toString('utf8') }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
