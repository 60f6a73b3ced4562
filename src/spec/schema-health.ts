import { z } from 'zod'
import {
  checkExactlyOne,
  commandSchema,
  durationSchema,
  integer,
  portSchema,
  report,
} from './schema-common.js'
import type { HealthCheck } from './types.js'

const PROBES = ['http', 'tcp', 'exec'] as const

function probeTiming() {
  return {
    interval: durationSchema().prefault('2s').describe('Time between probes. Default `2s`.'),
    timeout: durationSchema()
      .prefault('1s')
      .describe('Time after which one probe counts as failed. Default `1s`.'),
    healthyThreshold: integer('a whole number ≥ 1', 1)
      .default(1)
      .describe('Consecutive passing probes before an instance takes traffic. Default `1`.'),
    unhealthyThreshold: integer('a whole number ≥ 1', 1)
      .default(3)
      .describe('Consecutive failing probes before an instance counts as unhealthy. Default `3`.'),
    startPeriod: durationSchema()
      .prefault('0s')
      .describe('Time after start during which failing probes do not count. Default `0s`.'),
  }
}

const httpPath = z.string({ error: 'expected an HTTP path starting with "/"' }).check((ctx) => {
  if (ctx.value.startsWith('/')) return
  report(ctx, 'expected an HTTP path starting with "/"', ctx.value, { hint: `write "/${ctx.value}"` })
})

const httpProbe = z.strictObject({
  http: httpPath
    .meta({ pattern: '^/.*' })
    .describe('Probe with an HTTP GET of this path; healthy on `expectStatus`.'),
  port: portSchema.optional().describe("Port to probe. Default: the service's `port`."),
  expectStatus: integer('an HTTP status code (100-599)', 100, 599)
    .default(200)
    .describe('Status code that counts as healthy. Default `200`.'),
  ...probeTiming(),
})

const tcpProbe = z.strictObject({
  tcp: portSchema.describe('Probe by opening a TCP connection to this port.'),
  ...probeTiming(),
})

const execProbe = z.strictObject({
  exec: commandSchema('a probe command').describe(
    'Probe by running this command inside the instance; healthy when it exits 0. A string runs with `/bin/sh -c`.',
  ),
  ...probeTiming(),
})

const probeUnion = z.union([httpProbe, tcpProbe, execProbe])

/** A health check: exactly one of `http`, `tcp` or `exec`, plus timing; normalised to `HealthCheck`. */
export const healthcheckSchema = z
  .preprocess((raw: z.input<typeof probeUnion>, ctx) => {
    checkExactlyOne(ctx, raw, PROBES, 'a healthcheck')
    return raw
  }, probeUnion)
  .transform((h): HealthCheck => {
    const timing = {
      interval: h.interval,
      timeout: h.timeout,
      healthyThreshold: h.healthyThreshold,
      unhealthyThreshold: h.unhealthyThreshold,
      startPeriod: h.startPeriod,
    }
    if ('http' in h) {
      return {
        type: 'http',
        path: h.http,
        expectStatus: h.expectStatus,
        ...(h.port ? { port: h.port } : {}),
        ...timing,
      }
    }
    if ('tcp' in h) return { type: 'tcp', port: h.tcp, ...timing }
    return { type: 'exec', command: h.exec, ...timing }
  })
  .describe(
    'How to tell a healthy instance: exactly one of `http` (GET a path), `tcp` (connect to a port) or `exec` (run a command), plus timing. An instance takes traffic only after it passes.',
  )
