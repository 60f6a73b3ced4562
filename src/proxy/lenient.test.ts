import assert from 'node:assert/strict'
import { type AddressInfo, createServer } from 'node:net'
import { after, test } from 'node:test'
import { startProxy } from './index.js'

const closers: Array<() => Promise<unknown>> = []
after(async () => {
  for (const c of closers) await c()
})

test('a backend answering with bare-LF header lines (busybox httpd CGI) is proxied, not a 502', async () => {
  const backend = createServer((sock) => {
    sock.once('data', () => sock.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\n\n1\n'))
  })
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()))
  closers.push(() => new Promise((r) => backend.close(r)))
  const proxy = await startProxy({
    listenHost: '127.0.0.1',
    listenPort: 0,
    mode: 'http',
    drainTimeoutMs: 500,
  })
  closers.unshift(() => proxy.close())
  await proxy.setBackends([{ id: 'cgi', host: '127.0.0.1', port: (backend.address() as AddressInfo).port }])
  const res = await fetch(`http://127.0.0.1:${proxy.address.port}/cgi-bin/count`, {
    headers: { connection: 'close' },
  })
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('content-type'), 'text/plain')
  assert.equal(await res.text(), '1\n')
})
