import { createReadStream } from 'node:fs'
import { realpath, stat } from 'node:fs/promises'
import type { ServerResponse } from 'node:http'
import { extname, join, sep } from 'node:path'
import { isErrno } from '../../errors.js'
import { SECURITY_HEADERS } from './respond.js'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
}

/** What `/` answers when the dashboard was not built (dist/dashboard/ is missing). */
export const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Grail</title></head>
<body><h1>Grail</h1><p>The dashboard is not built. Run <code>npm run build</code> in Grail's source tree,
or use the API: <a href="/api/openapi.json">/api/openapi.json</a>.</p></body></html>
`

/**
 * The file under `root` that a URL path names, or undefined: `/` is index.html; a segment `..` or `.`,
 * an empty or hidden segment, a NUL, a backslash or a path whose real location (symlinks resolved) is
 * outside `root` names nothing. A path without an extension that names no file is the dashboard's own
 * route: index.html answers it.
 */
export async function resolveStatic(root: string, urlPath: string): Promise<string | undefined> {
  let decoded: string
  try {
    decoded = decodeURIComponent(urlPath)
  } catch {
    return undefined
  }
  if (!decoded.startsWith('/') || decoded.includes('\0') || decoded.includes('\\')) return undefined
  const segments = decoded.slice(1).split('/')
  if (decoded === '/') segments.length = 0
  if (segments.some((s) => s === '' || s === '.' || s === '..' || s.startsWith('.'))) return undefined
  let realRoot: string
  try {
    realRoot = await realpath(root)
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined
    throw err
  }
  const candidates =
    segments.length === 0
      ? ['index.html']
      : extname(segments[segments.length - 1] as string) === ''
        ? [join(...segments), 'index.html']
        : [join(...segments)]
  for (const rel of candidates) {
    let real: string
    try {
      real = await realpath(join(realRoot, rel))
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) continue
      throw err
    }
    if (!real.startsWith(realRoot + sep)) return undefined
    const st = await stat(real)
    if (st.isFile()) return real
  }
  return undefined
}

/** Whether the dashboard directory exists. */
async function exists(dir: string): Promise<boolean> {
  try {
    return (await stat(dir)).isDirectory()
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false
    throw err
  }
}

/**
 * Serves the dashboard's files from `root` (GET and HEAD): the file with its content type, 404
 * otherwise; when `root` does not exist, `/` is a short page saying the dashboard is not built.
 * Returns false when the path names nothing (the caller answers 404).
 */
export async function serveStatic(
  root: string,
  urlPath: string,
  res: ServerResponse,
  head: boolean,
): Promise<boolean> {
  const file = await resolveStatic(root, urlPath)
  if (file === undefined) {
    if (urlPath !== '/' || (await exists(root))) return false
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Length': String(Buffer.byteLength(NOT_BUILT_PAGE)),
    })
    res.end(head ? undefined : NOT_BUILT_PAGE)
    return true
  }
  const st = await stat(file)
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'Content-Type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': String(st.size),
    // index.html names the hashed assets, so it is always fetched again; assets may be cached
    'Cache-Control': file.endsWith(`${sep}index.html`) ? 'no-cache' : 'public, max-age=300',
  })
  if (head) {
    res.end()
    return true
  }
  await new Promise<void>((resolve, reject) => {
    const stream = createReadStream(file)
    stream.on('error', reject)
    res.on('close', () => {
      stream.destroy()
      resolve()
    })
    stream.pipe(res)
  })
  return true
}
