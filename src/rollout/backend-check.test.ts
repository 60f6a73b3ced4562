import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { HealthCheck } from '../spec/types.js'
import { backendCheckOf, countedUnhealthy } from './backend-check.js'

const timing = { interval: 1000, timeout: 500, healthyThreshold: 1, unhealthyThreshold: 3, startPeriod: 0 }
const mapPort = async (port: number) => ({ host: '10.0.0.9', port: port + 30000 })

test("the proxy's check of a backend: the service port, or where the provider maps the check's own port", async () => {
  const http: HealthCheck = { type: 'http', path: '/healthz', expectStatus: 204, ...timing }
  assert.deepEqual(await backendCheckOf(http, 8080, mapPort), {
    type: 'http',
    path: '/healthz',
    expectStatus: 204,
    port: 8080,
    interval: 1000,
    timeout: 500,
  })
  assert.deepEqual(await backendCheckOf({ ...http, port: 9090 }, 8080, mapPort), {
    type: 'http',
    path: '/healthz',
    expectStatus: 204,
    port: 39090,
    interval: 1000,
    timeout: 500,
  })
  assert.deepEqual(await backendCheckOf({ type: 'tcp', ...timing }, 8080, mapPort), {
    type: 'tcp',
    port: 8080,
    interval: 1000,
    timeout: 500,
  })
  // the proxy cannot exec in an instance: it checks the service port accepts connections
  assert.deepEqual(await backendCheckOf({ type: 'exec', command: ['true'], ...timing }, 8080, mapPort), {
    type: 'tcp',
    port: 8080,
    interval: 1000,
    timeout: 500,
  })
  assert.equal(await backendCheckOf(undefined, 8080, mapPort), undefined)
})

test('an instance is counted unhealthy only after unhealthyThreshold failed probes in a row', () => {
  const check: HealthCheck = { type: 'tcp', ...timing }
  const probe = (ok: boolean, failures: number) => ({ instance: 'i', at: '', ok, detail: '', failures })
  assert.equal(countedUnhealthy(check, probe(false, 3)), true)
  assert.equal(countedUnhealthy(check, probe(false, 2)), false, 'one short of the threshold')
  assert.equal(countedUnhealthy(check, probe(true, 0)), false)
  assert.equal(countedUnhealthy(check, undefined), false, 'never probed after its gate')
  assert.equal(countedUnhealthy(undefined, probe(false, 9)), false, 'nothing to judge by')
})
