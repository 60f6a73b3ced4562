import { grailVersion } from '../../cli/version.js'
import type { BodyShape } from './body.js'
import type { Route } from './router.js'
import { type JsonSchema, SCHEMAS, schemaRef as ref, writeBody } from './schemas.js'

const ERRORS: Record<string, string> = {
  '400': 'a user error: a bad body or parameter, or one the engine reports (its code says which)',
  '401': 'no bearer token, or an unknown or revoked one (`WWW-Authenticate: Bearer realm="grail"`)',
  '403': 'a read token on a write',
  '404': 'no such environment, service, image, release or path',
  '409': 'LOCKED: another apply holds the environment; the message names the holder',
  '413': 'the body is over 64 KiB',
  '415': 'the body is not application/json',
  '500': 'a bug in Grail (see the log of grail serve)',
}

function bodySchema(shape: BodyShape): JsonSchema {
  const props: Record<string, JsonSchema> = {}
  for (const [key, s] of Object.entries(shape))
    props[key] = {
      type: s.type,
      description: s.description,
      ...(s.type === 'integer' ? { minimum: 1 } : s.type === 'string' ? { minLength: 1 } : {}),
    }
  const schema = writeBody(props)
  const required = Object.entries(shape).flatMap(([k, s]) => (s.required ? [k] : []))
  return { ...schema, required: ['reason', ...required] }
}

function operationId(route: Route): string {
  const words = route.path
    .replace(/^\/api\/v1\//, '')
    .replace(/^\//, '')
    .split(/[/.]/)
    .filter((w) => w !== '' && !w.startsWith('{'))
  const verb = route.method === 'GET' ? 'get' : route.method === 'DELETE' ? 'delete' : 'post'
  return [verb, ...words]
    .map((w, i) => (i === 0 ? w : w.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase())))
    .join('')
}

/**
 * The OpenAPI 3.1 document of the API, generated from the route table the server answers with: each
 * route's parameters, who may call it (x-grail-access, and the bearer scheme with the scope it needs),
 * its request body (from the keys the server checks) and its response schemas.
 */
export function openApiDocument(routes: readonly Route[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const route of routes) {
    const params = [...route.path.matchAll(/\{([a-z]+)\}/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }))
    const query = Object.entries(route.doc.query ?? {}).map(([name, q]) => ({
      name,
      in: 'query',
      required: false,
      description: q.description,
      schema: q.schema,
    }))
    const res = route.doc.response
    const ok =
      'mediaType' in res && typeof res.mediaType === 'string'
        ? { [res.mediaType]: { schema: res.schema } }
        : { 'application/json': { schema: res } }
    const errors = Object.fromEntries(
      Object.entries(ERRORS)
        .filter(([code]) => {
          if (route.access === 'none') return code === '500'
          if (code === '403' || code === '409' || code === '413' || code === '415')
            return route.access === 'write'
          return true
        })
        .map(([code, description]) => [
          code,
          { description, content: { 'application/json': { schema: ref('Error') } } },
        ]),
    )
    const op: Record<string, unknown> = {
      operationId: operationId(route),
      summary: route.doc.summary,
      ...(route.doc.description ? { description: route.doc.description } : {}),
      tags: route.doc.tags,
      'x-grail-access': route.access,
      security: route.access === 'none' ? [] : [{ bearer: [route.access] }],
      ...(params.length + query.length > 0 ? { parameters: [...params, ...query] } : {}),
      ...(route.body
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: bodySchema(route.body) } },
            },
          }
        : {}),
      responses: { '200': { description: 'OK', content: ok }, ...errors },
    }
    paths[route.path] = { ...paths[route.path], [route.method.toLowerCase()]: op }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Grail API',
      version: grailVersion(),
      description:
        "The HTTP API of `grail serve`. Answers have the shapes of the CLI's `--json` output. Reads need a read or write token (unless the server listens on loopback with --insecure-read); writes need a write token and a reason. Tokens: `grail token create --name NAME --scope read|write`.",
    },
    servers: [{ url: '/' }],
    tags: [
      { name: 'fleet', description: 'environments, services, instances, releases, plan, drift, hotfixes' },
      { name: 'images', description: 'the image catalog' },
      { name: 'events', description: 'the audit log, paged and live' },
      { name: 'reconciler', description: "the reconcilers' figures" },
      { name: 'writes', description: 'changes: each needs a write token and a reason, and is an event' },
      { name: 'metrics', description: 'Prometheus' },
      { name: 'meta', description: 'this document' },
    ],
    paths,
    components: {
      schemas: SCHEMAS,
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description:
            'A token from `grail token create`, as `Authorization: Bearer grail_…`. The scope named by each operation (read or write) is the one it needs; a write token also reads.',
        },
      },
    },
  }
}

/** The route of the document itself (no token needed). */
export function openApiRoute(doc: () => Record<string, unknown>): Route {
  return {
    method: 'GET',
    path: '/api/openapi.json',
    access: 'none',
    doc: { summary: 'This document (OpenAPI 3.1)', tags: ['meta'], response: { type: 'object' } },
    handle: async () => ({ json: doc() }),
  }
}
