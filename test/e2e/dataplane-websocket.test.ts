// WebSocket through the data plane (issue 15, acceptance 3): two replicas of a Node app that echoes over
// WebSocket (raw frames, its instance id in every reply). A client opens a socket through the published
// port on the instance `grail recycle` replaces second; recycle first replaces the OTHER instance while
// the socket keeps echoing, then drains the socket's own instance, whose app sends close 1001 on SIGTERM:
// the client gets that close frame before the TCP close, and no reset.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Plan } from '../../src/plan/index.js'
import { freePort } from '../helpers/net.js'
import { alive, type DpStatus, NODE_APP_IMAGE, nodeAppProject } from '../helpers/node-app.js'
import { grail, parseJson, tearDown } from '../helpers/project.js'

const MAX_AGE_S = 3

const spec = (port: number) => `project: dpws
${NODE_APP_IMAGE}services:
  ws:
    image: app
    replicas: 2
    port: 8080
    network: host
    publish: ${port}
    healthcheck: { http: /healthz, interval: 200ms, timeout: 1s }
    rollout: { strategy: rolling, maxSurge: 1, maxUnavailable: 0, healthTimeout: 30s, drain: 500ms }
    recycle: { maxAge: ${MAX_AGE_S}s }
`

type WsEvent =
  | { kind: 'text'; at: number; text: string }
  | { kind: 'close'; at: number; code: number }
  | { kind: 'end'; at: number }
  | { kind: 'error'; at: number; error: string }

/** A minimal WebSocket client over a raw TCP socket: masked text frames out, frames in, every event kept. */
class WsClient {
  readonly events: WsEvent[] = []
  private buf = Buffer.alloc(0)
  private closedByPeer = false
  private constructor(private readonly socket: Socket) {}

  static open(port: number): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1')
      const key = randomBytes(16).toString('base64')
      let head = Buffer.alloc(0)
      const fail = (err: Error) => reject(err)
      socket.once('error', fail)
      socket.setTimeout(5000, () => socket.destroy(new Error('no 101 within 5 s')))
      socket.on('connect', () =>
        socket.write(
          `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        ),
      )
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk])
        const end = head.indexOf('\r\n\r\n')
        if (end < 0) return
        socket.off('data', onData)
        socket.off('error', fail)
        socket.setTimeout(0)
        const status = head.subarray(0, end).toString().split('\r\n')[0] ?? ''
        if (!/^HTTP\/1\.1 101 /.test(status)) {
          socket.destroy()
          reject(new Error(`the upgrade was answered ${JSON.stringify(head.subarray(0, end).toString())}`))
          return
        }
        const client = new WsClient(socket)
        client.listen(head.subarray(end + 4))
        resolve(client)
      }
      socket.on('data', onData)
    })
  }

  private listen(rest: Buffer): void {
    this.socket.on('data', (c: Buffer) => this.feed(c))
    this.socket.on('end', () => {
      this.events.push({ kind: 'end', at: Date.now() })
      this.socket.end()
    })
    this.socket.on('error', (err) => this.events.push({ kind: 'error', at: Date.now(), error: String(err) }))
    if (rest.length > 0) this.feed(rest)
  }

  private feed(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk])
    for (;;) {
      if (this.buf.length < 2) return
      const opcode = (this.buf[0] as number) & 15
      let len = (this.buf[1] as number) & 127
      let off = 2
      if (len === 126) {
        if (this.buf.length < 4) return
        len = this.buf.readUInt16BE(2)
        off = 4
      }
      if (this.buf.length < off + len) return
      const payload = this.buf.subarray(off, off + len)
      this.buf = this.buf.subarray(off + len)
      if (opcode === 1) this.events.push({ kind: 'text', at: Date.now(), text: payload.toString() })
      else if (opcode === 8) {
        this.events.push({ kind: 'close', at: Date.now(), code: len >= 2 ? payload.readUInt16BE(0) : 1005 })
        if (!this.closedByPeer) {
          this.closedByPeer = true
          this.write(8, payload.subarray(0, 2))
        }
      }
    }
  }

  private write(opcode: number, payload: Buffer): void {
    const mask = randomBytes(4)
    const masked = Buffer.from(payload)
    for (let i = 0; i < masked.length; i++) masked[i] = (masked[i] as number) ^ (mask[i & 3] as number)
    const head = masked.length < 126 ? Buffer.from([0x80 | opcode, 0x80 | masked.length]) : null
    if (!head) throw new Error('only short frames')
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(Buffer.concat([head, mask, masked]))
  }

  send(text: string): void {
    this.write(1, Buffer.from(text))
  }

  /** Sends `text` and waits for its echo; returns the instance id that answered. */
  async echo(text: string, timeoutMs = 5000): Promise<string> {
    const from = this.events.length
    this.send(text)
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      for (const e of this.events.slice(from))
        if (e.kind === 'text' && e.text.endsWith(` ${text}`)) return e.text.split(' ')[0] as string
      if (this.events.slice(from).some((e) => e.kind !== 'text')) break
      await sleep(5)
    }
    throw new Error(`no echo of ${text}: ${JSON.stringify(this.events.slice(from))}`)
  }

  get closed(): boolean {
    return this.events.some((e) => e.kind === 'end' || e.kind === 'error')
  }

  /** Closes from the client side (close frame 1000, then FIN). */
  async close(): Promise<void> {
    if (!this.closedByPeer) {
      this.closedByPeer = true
      this.write(8, Buffer.from([0x03, 0xe8]))
    }
    for (let i = 0; i < 100 && !this.closed; i++) await sleep(20)
    this.socket.destroy()
  }
}

describe('WebSocket through the data plane', () => {
  let dir: string
  let port: number
  const clients: WsClient[] = []
  before(async () => {
    port = await freePort()
    dir = await nodeAppProject(spec(port))
    const res = await grail(['up'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr + res.stdout)
  })
  after(async () => {
    for (const c of clients) await c.close()
    await tearDown(dir)
  })

  test('a socket echoes while the other instance is replaced, and is closed with 1001 before the TCP close when its own instance drains', async (t) => {
    const status = parseJson<DpStatus>(await grail(['--json', 'status'], { cwd: dir }))
    const instances = status.instances.filter((i) => i.service === 'ws')
    assert.equal(instances.length, 2)
    // recycle takes them in the plan's order once both are past maxAge
    const youngest = Math.max(...instances.map((i) => Date.parse(i.createdAt)))
    await sleep(Math.max(0, youngest + MAX_AGE_S * 1000 + 500 - Date.now()))
    const plan = parseJson<Plan>(await grail(['--json', 'plan'], { cwd: dir }))
    const order = plan.actions.map((a) => ('instance' in a ? a.instance : ''))
    assert.equal(order.length, 2, `both instances are due: ${JSON.stringify(plan.actions)}`)
    const [otherId, ownId] = order as [string, string]
    const other = instances.find((i) => i.id === otherId)
    assert.ok(other?.pid, 'the runtime reports the other instance process')

    // open sockets until one lands on the instance replaced second (round robin: a few tries)
    let ws: WsClient | undefined
    for (let i = 0; i < 20 && !ws; i++) {
      const c = await WsClient.open(port)
      clients.push(c)
      if ((await c.echo('hello')) === ownId) ws = c
      else await c.close()
    }
    assert.ok(ws, `no socket landed on ${ownId}`)

    // echo every 50 ms until the close frame comes; note when the other instance's process is gone
    let otherGoneAt: number | undefined
    const watchOther = (async () => {
      while (otherGoneAt === undefined && !ws.closed) {
        if (!alive(other.pid as number)) otherGoneAt = Date.now()
        await sleep(20)
      }
    })()
    const recycleStarted = Date.now()
    const recycle = grail(['recycle'], { cwd: dir })
    const answered: Array<{ at: number; id: string }> = []
    const unanswered: string[] = []
    for (let n = 0; !ws.events.some((e) => e.kind !== 'text') && Date.now() - recycleStarted < 90_000; n++) {
      try {
        answered.push({ at: Date.now(), id: await ws.echo(`m${n}`) })
      } catch (err) {
        // an echo may be cut only by the close of the socket's own instance
        if (!ws.events.some((e) => e.kind !== 'text')) unanswered.push(String(err))
      }
      await sleep(50)
    }
    for (let i = 0; i < 250 && !ws.closed; i++) await sleep(20)
    await watchOther
    const res = await recycle
    assert.equal(res.code, 0, res.stderr + res.stdout)

    const after = answered.filter((a) => otherGoneAt !== undefined && a.at > otherGoneAt)
    t.diagnostic(
      `${answered.length} echoes during recycle, ${after.length} after the other instance was gone; events at the end: ${JSON.stringify(ws.events.filter((e) => e.kind !== 'text'))}`,
    )
    assert.ok(otherGoneAt !== undefined, 'the other instance was replaced while the socket was open')
    assert.deepEqual(unanswered, [], 'every message sent before the close was echoed')
    assert.deepEqual(
      [...new Set(answered.map((a) => a.id))],
      [ownId],
      'all echoes came from its own instance',
    )
    assert.ok(
      after.length >= 3,
      `the socket kept echoing after the other instance was replaced (${after.length})`,
    )

    const tail = ws.events.filter((e) => e.kind !== 'text')
    assert.ok(!tail.some((e) => e.kind === 'error'), `no reset or socket error: ${JSON.stringify(tail)}`)
    const close = tail.findIndex((e) => e.kind === 'close')
    const end = tail.findIndex((e) => e.kind === 'end')
    assert.ok(close >= 0, `a close frame arrived: ${JSON.stringify(tail)}`)
    assert.equal((tail[close] as { code: number }).code, 1001, 'close 1001 (going away) from the app')
    assert.ok(end > close, `the TCP close came after the close frame: ${JSON.stringify(tail)}`)

    const now = parseJson<DpStatus>(await grail(['--json', 'status'], { cwd: dir }))
    const ids = now.instances.filter((i) => i.service === 'ws').map((i) => i.id)
    assert.equal(ids.length, 2)
    assert.ok(!ids.includes(otherId) && !ids.includes(ownId), 'both instances were replaced')
    // and a new socket echoes from a new instance
    const fresh = await WsClient.open(port)
    clients.push(fresh)
    assert.ok(ids.includes(await fresh.echo('again')))
  })
})
