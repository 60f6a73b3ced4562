import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { makeBusyboxRootfs } from './busybox-rootfs.js'
import { REPO, tempProject } from './project.js'

/** A rootfs tarball with busybox plus the host's Node binary and the shared libraries it loads. */
export function makeNodeRootfs(dest: string): string {
  const work = mkdtempSync(join(tmpdir(), 'grail-noderoot-'))
  try {
    const dir = join(work, 'rootfs')
    const busybox = join(work, 'busybox.tar')
    makeBusyboxRootfs(busybox)
    mkdirSync(dir)
    execFileSync('tar', ['-C', dir, '-xf', busybox])
    const node = process.execPath
    const files = [node]
    for (const line of execFileSync('ldd', [node], { encoding: 'utf8' }).split('\n')) {
      const m = /(\/\S+) \(0x/.exec(line.trim())
      if (m?.[1]) files.push(m[1])
    }
    for (const f of files) {
      const to = join(dir, f === node ? '/usr/bin/node' : f)
      mkdirSync(dirname(to), { recursive: true })
      copyFileSync(f, to)
    }
    execFileSync('chmod', ['755', join(dir, 'usr/bin/node')])
    execFileSync('tar', ['-C', dir, '--numeric-owner', '-cf', dest, '.'])
    return dest
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/**
 * The app every data-plane test runs in its instances (CommonJS, no npm dependency): `/id` answers the
 * instance id (its hostname), `/slow?ms=N` answers its id after N ms, `/healthz` answers ok, and an
 * `Upgrade: websocket` request becomes a WebSocket echo (raw frames) whose replies start with the id.
 * On SIGTERM it sends close 1001 on every open WebSocket, waits for the peers' close (at most 1 s),
 * then exits. `KEEPALIVE_MS` sets the server's keepAliveTimeout (default 5 s).
 */
export const APP_JS = `'use strict'
const http = require('node:http')
const crypto = require('node:crypto')
const os = require('node:os')
const ID = os.hostname()
const sockets = new Set()
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x')
  const answer = () => {
    const body = ID + '\\n'
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  }
  if (url.pathname === '/slow') setTimeout(answer, Number(url.searchParams.get('ms') || 1000))
  else answer()
})
server.keepAliveTimeout = Number(process.env.KEEPALIVE_MS || 5000)
function frame(opcode, payload) {
  const len = payload.length
  const head = len < 126 ? Buffer.from([0x80 | opcode, len])
    : Buffer.from([0x80 | opcode, 126, len >> 8, len & 255])
  return Buffer.concat([head, payload])
}
server.on('upgrade', (req, socket) => {
  const key = req.headers['sec-websocket-key']
  if (String(req.headers.upgrade).toLowerCase() !== 'websocket' || !key) return socket.destroy()
  const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')
  socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n' +
    'Sec-WebSocket-Accept: ' + accept + '\\r\\n\\r\\n')
  sockets.add(socket)
  socket.on('close', () => sockets.delete(socket))
  socket.on('error', () => {})
  let buf = Buffer.alloc(0)
  socket.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk])
    for (;;) {
      if (buf.length < 2) return
      const opcode = buf[0] & 15
      let len = buf[1] & 127
      let off = 2
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4 }
      else if (len === 127) return socket.destroy()
      const masked = (buf[1] & 128) !== 0
      const mask = masked ? buf.subarray(off, off + 4) : null
      if (masked) off += 4
      if (buf.length < off + len) return
      const payload = Buffer.from(buf.subarray(off, off + len))
      if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3]
      buf = buf.subarray(off + len)
      if (opcode === 1) socket.write(frame(1, Buffer.from(ID + ' ' + payload.toString())))
      else if (opcode === 9) socket.write(frame(10, payload))
      else if (opcode === 8) { if (!socket.closing) socket.write(frame(8, payload)); socket.end() }
    }
  })
})
server.listen(Number(process.env.PORT), '0.0.0.0')
process.on('SIGTERM', () => {
  server.close()
  const code = Buffer.from([0x03, 0xe9]) // 1001 going away
  for (const s of sockets) { s.closing = true; s.write(frame(8, Buffer.concat([code, Buffer.from('going away')]))) }
  const done = () => process.exit(0)
  if (sockets.size === 0) done()
  const t = setInterval(() => { if (sockets.size === 0) done() }, 20)
  setTimeout(done, 1000).unref()
  t.unref()
})
`

/** A temp project with the Node app (`app.js`) and the rootfs with node its spec builds on. */
export async function nodeAppProject(spec: string): Promise<string> {
  const dir = await tempProject({ 'grail.yaml': spec, 'app.js': APP_JS })
  makeNodeRootfs(join(dir, 'rootfs.tar'))
  return dir
}

/** The image section of a spec that runs APP_JS. */
export const NODE_APP_IMAGE = `images:
  app:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: app.js /srv/app.js
      - cmd: [/usr/bin/node, /srv/app.js]
`

/** Whether this Grail's spec knows `publish.responseTimeout` (the HAProxy data plane's key). */
export const HAS_RESPONSE_TIMEOUT = readFileSync(join(REPO, 'src/spec/types.ts'), 'utf8').includes(
  'responseTimeout',
)

/** The process an instance's `cmd` started: the one child of the instance's init (status `pid`). */
export async function appProcess(initPid: number): Promise<number> {
  const children = (await readFile(`/proc/${initPid}/task/${initPid}/children`, 'utf8')).trim().split(/\s+/)
  if (children.length !== 1 || !children[0]) throw new Error(`the instance's init has children ${children}`)
  return Number(children[0])
}

export interface DpStatus {
  instances: Array<{ id: string; pid: number | null; service: string; health: string; createdAt: string }>
  proxies: Array<{
    environment: string
    service: string
    listen: string
    state: string
    pid: number | null
    keeper?: number | null
    detail: string
    ejected?: Array<{ id: string; reason: string; since: string | number }>
  }>
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
