// Load generator for bench/rollout, run as its own process so the timings are not distorted by the
// benchmark's event loop: `node --import tsx latency-client.ts '<json options>'`. Sends `requests` GETs
// from `concurrency` loops over a keep-alive agent after `warmup` untimed ones, and prints one JSON line:
// per-request latencies in ms (request order), the error count and the wall time.
import { Agent, get } from 'node:http'

interface Options {
  url: string
  requests: number
  concurrency: number
  warmup: number
}

const opts = JSON.parse(process.argv[2] ?? '{}') as Options
const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency })

function once(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get(opts.url, { agent }, (res) => {
      res.resume()
      res.once('end', () => resolve(res.statusCode === 200))
      res.once('error', () => resolve(false))
    })
    req.once('error', () => resolve(false))
  })
}

async function phase(total: number, record: boolean): Promise<{ samples: number[]; errors: number }> {
  const samples: number[] = []
  let errors = 0
  let next = 0
  const worker = async () => {
    while (next < total) {
      next++
      const t0 = process.hrtime.bigint()
      const ok = await once()
      const dt = Number(process.hrtime.bigint() - t0) / 1e6
      if (!ok) errors++
      else if (record) samples.push(Math.round(dt * 1000) / 1000)
    }
  }
  await Promise.all(Array.from({ length: opts.concurrency }, worker))
  return { samples, errors }
}

await phase(opts.warmup, false)
const t0 = performance.now()
const res = await phase(opts.requests, true)
const wallMs = performance.now() - t0
agent.destroy()
process.stdout.write(`${JSON.stringify({ ...res, wallMs })}\n`)
