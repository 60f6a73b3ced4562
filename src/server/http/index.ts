import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { ServerContext } from '../context.js'

/** The daemon's HTTP server (placeholder until the API lands): answers 503 to everything. */
export async function startHttpServer(
  _ctx: ServerContext,
  opts: {
    host: string
    port: number
    tls?: { cert: string; key: string }
    insecureRead: boolean
    dashboardDir: string
  },
): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((_req, res) => {
    res.writeHead(503, { 'content-type': 'text/plain' }).end('not built\n')
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host, resolve)
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://${opts.host}:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}
