import { connect } from 'node:net'

const DEFAULT_TIMEOUT_MS = 5_000

/**
 * Sends commands to HAProxy's runtime API (`stats socket`) and resolves with its whole answer.
 * Several commands may be joined with `;` (HAProxy runs them in order on one connection). Connection
 * errors reject with the raw errno error, so callers probing a dead socket can tell ENOENT/ECONNREFUSED.
 */
export function adminCommand(
  socketPath: string,
  command: string,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<string> {
  if (/[\r\n]/.test(command))
    return Promise.reject(new Error(`runtime API command holds a line break: ${command}`))
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const sock = connect({ path: socketPath })
    sock.setTimeout(timeoutMs, () =>
      sock.destroy(
        Object.assign(
          new Error(`HAProxy runtime API "${command.slice(0, 60)}" timed out after ${timeoutMs} ms`),
          {
            code: 'ETIMEDOUT',
          },
        ),
      ),
    )
    sock.on('connect', () => sock.end(`${command}\n`))
    sock.on('data', (c: Buffer) => chunks.push(c))
    sock.on('error', reject)
    sock.on('close', (hadError) => {
      if (!hadError) resolve(Buffer.concat(chunks).toString('utf8'))
    })
  })
}

/** One server row of `show stat`. */
export interface ServerStat {
  readonly backend: string
  readonly server: string
  /** UP, DOWN, MAINT, DRAIN, NOLB, "UP 1/2", "DOWN 1/2", "no check"… */
  readonly status: string
  /** sessions open to the server now */
  readonly current: number
  /** seconds since the last change of status */
  readonly lastChange: number
  /** what the last check saw: "L4CON", "L7STS", "L4TOUT"… and its text */
  readonly checkStatus: string
  readonly checkDescription: string
  /** HTTP status or other code of the last check */
  readonly checkCode: string
  readonly address: string
}

/** Parses `show stat` (CSV) into its server rows. */
export function parseServerStats(csv: string): ServerStat[] {
  const lines = csv.split('\n').filter((l) => l.trim() !== '')
  const header = lines.shift()
  if (header === undefined || !header.startsWith('# ')) return []
  const cols = header.slice(2).split(',')
  const at = (name: string): number => cols.indexOf(name)
  const idx = {
    px: at('pxname'),
    sv: at('svname'),
    status: at('status'),
    scur: at('scur'),
    lastchg: at('lastchg'),
    check: at('check_status'),
    desc: at('check_desc'),
    code: at('check_code'),
    type: at('type'),
    addr: at('addr'),
  }
  const out: ServerStat[] = []
  for (const line of lines) {
    const f = line.split(',')
    // type 2 is a server (0 frontend, 1 backend, 3 listener)
    if (f[idx.type] !== '2') continue
    out.push({
      backend: f[idx.px] ?? '',
      server: f[idx.sv] ?? '',
      status: f[idx.status] ?? '',
      current: Number(f[idx.scur] ?? 0),
      lastChange: Number(f[idx.lastchg] ?? 0),
      checkStatus: (f[idx.check] ?? '').replace(/^\*/, ''),
      checkDescription: f[idx.desc] ?? '',
      checkCode: f[idx.code] ?? '',
      address: f[idx.addr] ?? '',
    })
  }
  return out
}

/** The `Pid:` of `show info`, or undefined when the answer has none. */
export function parseInfoPid(info: string): number | undefined {
  const m = /^Pid: (\d+)$/m.exec(info)
  return m === null ? undefined : Number(m[1])
}
