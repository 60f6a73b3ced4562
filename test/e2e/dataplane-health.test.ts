// Health in the data plane (issue 15, acceptance 5, and the retry rules): three replicas of a Node app,
// healthcheck every second. One instance SIGSTOPped with GETs in flight to it: they are answered 200 by
// another instance, status lists it `ejected` within two intervals (+1 s slack), no new request waits on
// it, and after SIGCONT it is back in rotation. Backends close idle keep-alive connections after 1 s: one
// client keep-alive connection with 1.5 s gaps never gets a backend's idle close. One instance's app
// killed (its port refuses): the requests right after are all answered, by the others.
import assert from 'node:assert/strict'
import { Agent, request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from '../helpers/net.js'
import {
  alive,
  appProcess,
  type DpStatus,
  HAS_RESPONSE_TIMEOUT,
  NODE_APP_IMAGE,
  nodeAppProject,
} from '../helpers/node-app.js'
import { grail, parseJson, tearDown } from '../helpers/project.js'

const INTERVAL_MS = 1000
/** how long a request waits for a response header before the data plane retries it elsewhere */
const RESPONSE_TIMEOUT_MS = 3000

const spec = (port: number) => `project: dphealth
${NODE_APP_IMAGE}services:
  web:
    image: app
    replicas: 3
    port: 8080
    network: host
    publish: ${HAS_RESPONSE_TIMEOUT ? `{ port: ${port}, responseTimeout: ${RESPONSE_TIMEOUT_MS}ms }` : port}
    env: { KEEPALIVE_MS: "1000" }
    healthcheck: { http: /healthz, interval: ${INTERVAL_MS}ms, timeout: 500ms }
    rollout: { healthTimeout: 30s, drain: 300ms }
`

/** One GET on `agent`; returns the status, the body and the client socket it went on. */
function get(
  port: number,
  path: string,
  agent: Agent | false,
): Promise<{ status: number; body: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, timeout: 15_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c) => {
        body += c
      })
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: body.trim(), socket: req.socket as Socket }),
      )
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
    req.end()
  })
}

describe('health in the data plane', () => {
  let dir: string
  let port: number
  let stoppedPid: number | undefined
  let stoppedId: string | undefined
  const status = async () => parseJson<DpStatus>(await grail(['--json', 'status'], { cwd: dir }))
  const ejected = async () => (await status()).proxies.find((p) => p.service === 'web')?.ejected ?? []
  const web = async () => (await status()).instances.filter((i) => i.service === 'web')

  before(async () => {
    port = await freePort()
    dir = await nodeAppProject(spec(port))
    const res = await grail(['up'], { cwd: dir })
    assert.equal(res.code, 0, res.stderr + res.stdout)
  })
  after(async () => {
    if (stoppedPid !== undefined && alive(stoppedPid)) process.kill(stoppedPid, 'SIGCONT')
    await tearDown(dir)
  })

  test('a SIGSTOPped instance: GETs in flight to it are answered elsewhere, it is ejected within two intervals, no new request waits on it', async (t) => {
    const instances = await web()
    assert.equal(instances.length, 3)
    const target = instances[0] as DpStatus['instances'][0]
    assert.ok(target.pid, 'the runtime reports the instance process')
    const app = await appProcess(target.pid)
    // six slow GETs over fresh connections: round robin puts two on each instance
    const inFlight = Array.from({ length: 6 }, () => get(port, '/slow?ms=1500', false))
    await sleep(300)
    process.kill(app, 'SIGSTOP')
    stoppedPid = app
    stoppedId = target.id
    const stoppedAt = Date.now()

    // when the data plane took it out (its `since`), and when a status command first showed it
    let ejectedAt: number | undefined
    let seenAt: number | undefined
    while (seenAt === undefined && Date.now() - stoppedAt < 15_000) {
      const out = (await ejected()).find((e) => e.id === target.id)
      if (out) {
        seenAt = Date.now()
        ejectedAt = typeof out.since === 'number' ? out.since : Date.parse(out.since)
      } else await sleep(100)
    }
    const answers = await Promise.allSettled(inFlight)
    t.diagnostic(
      `ejected ${ejectedAt === undefined ? 'never' : `after ${ejectedAt - stoppedAt} ms (since), seen by status after ${(seenAt as number) - stoppedAt} ms`}; in flight: ${JSON.stringify(answers.map((a) => (a.status === 'fulfilled' ? `${a.value.status} ${a.value.body}` : String(a.reason))))}`,
    )
    for (const a of answers) {
      assert.equal(
        a.status,
        'fulfilled',
        `a GET in flight failed: ${a.status === 'rejected' ? a.reason : ''}`,
      )
      assert.equal(a.value.status, 200)
      assert.notEqual(a.value.body, target.id)
    }
    assert.ok(ejectedAt !== undefined, 'status lists the stopped instance as ejected')
    // two intervals, plus 1 s for the status command and a loaded machine
    assert.ok(ejectedAt - stoppedAt <= 2 * INTERVAL_MS + 1000, `ejected after ${ejectedAt - stoppedAt} ms`)

    // out of rotation: a request that reached it would wait the whole response timeout
    const agent = new Agent({ keepAlive: true, maxSockets: 4 })
    try {
      const slowest = { ms: 0 }
      for (let i = 0; i < 30; i++) {
        const start = Date.now()
        const r = await get(port, '/id', agent)
        slowest.ms = Math.max(slowest.ms, Date.now() - start)
        assert.equal(r.status, 200)
        assert.notEqual(r.body, target.id)
      }
      t.diagnostic(`slowest of 30 GETs after the ejection: ${slowest.ms} ms`)
      assert.ok(slowest.ms < RESPONSE_TIMEOUT_MS - 1000, 'no GET waited on the stopped instance')
    } finally {
      agent.destroy()
    }
  })

  test('after SIGCONT it comes back into rotation', async () => {
    assert.ok(stoppedPid !== undefined && stoppedId !== undefined)
    process.kill(stoppedPid, 'SIGCONT')
    stoppedPid = undefined
    let out = await ejected()
    for (let i = 0; i < 60 && out.length > 0; i++) {
      await sleep(250)
      out = await ejected()
    }
    assert.deepEqual(out, [], 'readmitted')
    const seen = new Set<string>()
    for (let i = 0; i < 30 && !seen.has(stoppedId); i++) seen.add((await get(port, '/id', false)).body)
    assert.ok(seen.has(stoppedId), `the continued instance answers again: ${[...seen]}`)
  })

  test("a backend's idle-closed keep-alive connection is never used: 20 GETs 1.5 s apart on one client connection", async (t) => {
    // a raw client connection, so that nothing on the client side (an agent's idle timer) closes it
    const socket = connect(port, '127.0.0.1')
    const failures: string[] = []
    const keepAliveHeaders = new Set<string>()
    let buf = ''
    let closed = false
    socket.setEncoding('utf8')
    socket.on('data', (c: string) => {
      buf += c
    })
    socket.on('close', () => {
      closed = true
    })
    socket.on('error', (err) => failures.push(String(err)))
    try {
      for (let i = 0; i < 20 && !closed; i++) {
        if (i > 0) await sleep(1500)
        socket.write(`GET /id HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)
        // one response: its header, then content-length bytes of body
        let response: { status: number; body: string } | undefined
        for (let w = 0; w < 500 && !response && !closed; w++) {
          const end = buf.indexOf('\r\n\r\n')
          if (end >= 0) {
            const head = buf.slice(0, end)
            const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
            if (buf.length >= end + 4 + len) {
              response = {
                status: Number(head.split(' ')[1]),
                body: buf.slice(end + 4, end + 4 + len).trim(),
              }
              keepAliveHeaders.add(/\r\nkeep-alive: *([^\r]*)/i.exec(head)?.[1] ?? '(none)')
              buf = buf.slice(end + 4 + len)
              break
            }
          }
          await sleep(20)
        }
        if (!response)
          failures.push(`#${i}: ${closed ? 'the data plane closed the connection' : 'no response in 10 s'}`)
        else if (response.status !== 200) failures.push(`#${i}: HTTP ${response.status} ${response.body}`)
      }
    } finally {
      socket.destroy()
    }
    t.diagnostic(`Keep-Alive headers the client got: ${[...keepAliveHeaders].join(', ')}`)
    assert.deepEqual(failures, [], 'every GET on the one connection answered 200')
  })

  test('an instance whose port refuses (its app killed): the requests right after are all answered by the others', async (t) => {
    const instances = await web()
    const victim = instances.find((i) => i.health === 'healthy' && i.pid) as DpStatus['instances'][0]
    assert.ok(victim?.pid)
    const app = await appProcess(victim.pid)
    process.kill(app, 'SIGKILL')
    const results: string[] = []
    const client = async () => {
      for (let i = 0; i < 10; i++) {
        try {
          const r = await get(port, '/id', false)
          results.push(r.status === 200 ? r.body : `HTTP ${r.status}`)
        } catch (err) {
          results.push(String(err))
        }
      }
    }
    await Promise.all([client(), client(), client()])
    const others = instances.filter((i) => i.id !== victim.id).map((i) => i.id)
    const bad = results.filter((r) => !others.includes(r))
    t.diagnostic(
      `${results.length} GETs right after the kill, ${bad.length} not answered by the others: ${bad.slice(0, 5)}`,
    )
    assert.deepEqual(bad, [], 'all answered 200 by the live instances')
  })
})
