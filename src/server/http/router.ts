import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TokenRecord } from '../../state/index.js'
import type { BodyShape } from './body.js'
import type { JsonSchema } from './schemas.js'

/** What a route needs: nothing, a read (or write) token, or a write token. */
export type Access = 'none' | 'read' | 'write'

export type Method = 'GET' | 'POST' | 'DELETE'

/** One request as a handler sees it: path parameters, query, the token that was accepted, the body. */
export interface ApiRequest {
  params: Record<string, string>
  query: URLSearchParams
  /** the token the request was authorised with; null for `none` routes and insecure reads */
  token: TokenRecord | null
  /** the JSON body, checked (POST and DELETE routes only) */
  body: Record<string, unknown>
  req: IncomingMessage
  res: ServerResponse
}

/** A handler's answer: a JSON body with its status, or `streamed` when it wrote the response itself. */
export type ApiResult = { status?: number; json: unknown } | 'streamed'

/** What the OpenAPI document says about a route (the document is generated from the route table). */
export interface RouteDoc {
  summary: string
  description?: string
  tags: string[]
  /** query parameters: name → schema and description */
  query?: Record<string, { schema: JsonSchema; description: string }>
  /** the 200 response: JSON schema, or another media type with its schema */
  response: JsonSchema | { mediaType: string; schema: JsonSchema }
}

export interface Route {
  method: Method
  /** `/api/v1/environments/{env}/status`: `{name}` matches one non-empty path segment */
  path: string
  access: Access
  /** the keys a write's body takes besides `reason` (checked before the handler runs; also the doc) */
  body?: BodyShape
  doc: RouteDoc
  handle(r: ApiRequest): Promise<ApiResult>
}

/** The outcome of matching a path: a route and its parameters, the methods the path has, or nothing. */
export type Match =
  | { kind: 'route'; route: Route; params: Record<string, string> }
  | { kind: 'method'; allow: Method[] }
  | { kind: 'none' }

/** The parameters `pattern` takes from `path` (both split on `/`), or null when it does not match. */
export function matchPath(pattern: string, path: string): Record<string, string> | null {
  const want = pattern.split('/')
  const have = path.split('/')
  if (want.length !== have.length) return null
  const params: Record<string, string> = {}
  for (let i = 0; i < want.length; i++) {
    const w = want[i] as string
    const h = have[i] as string
    if (w.startsWith('{') && w.endsWith('}')) {
      if (h === '') return null
      let value: string
      try {
        value = decodeURIComponent(h)
      } catch {
        return null
      }
      // a parameter is one segment: an encoded slash does not make two
      if (value.includes('/')) return null
      params[w.slice(1, -1)] = value
    } else if (w !== h) return null
  }
  return params
}

/** Finds the route for a method and path in a table (first match wins). */
export function matchRoute(routes: readonly Route[], method: string, path: string): Match {
  const allow: Method[] = []
  for (const route of routes) {
    const params = matchPath(route.path, path)
    if (!params) continue
    if (route.method === method) return { kind: 'route', route, params }
    allow.push(route.method)
  }
  return allow.length > 0 ? { kind: 'method', allow } : { kind: 'none' }
}
