#!/usr/bin/env node
// Builds the web dashboard (dashboard/) into dist/dashboard/: index.html, favicon.svg, app.js (one ES module,
// bundled and minified by esbuild, nothing fetched from a CDN at run time) and app.css. `npm run build`
// runs this; it takes well under a second. The page works under Content-Security-Policy default-src
// 'self': no inline script or style, which the build checks.
import { createHash } from 'node:crypto'
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = resolve(fileURLToPath(new URL('..', import.meta.url)))
const src = resolve(root, 'dashboard')
const outdir = resolve(root, 'dist/dashboard')

const html = await readFile(resolve(src, 'index.html'), 'utf8')
if (/<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=/i.test(html))
  throw new Error(
    'dashboard/index.html has an inline script, style or handler: the CSP default-src self refuses it',
  )

await rm(outdir, { recursive: true, force: true })
await mkdir(outdir, { recursive: true })
await build({
  entryPoints: { app: resolve(src, 'src/main.ts') },
  outdir,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
})
for (const f of ['app.css', 'favicon.svg']) await copyFile(resolve(src, f), resolve(outdir, f))

// grail serve lets browsers cache assets for 5 minutes and fetches index.html every time: index.html
// names each asset with its content hash (`app.js?v=…`), so an upgrade is never run with a stale script
const hashOf = async (f) =>
  createHash('sha256')
    .update(await readFile(resolve(outdir, f)))
    .digest('hex')
    .slice(0, 12)
let page = html
for (const f of ['app.js', 'app.css', 'favicon.svg']) {
  const ref = `"${f}"`
  if (!page.includes(ref)) throw new Error(`dashboard/index.html does not name ${f}`)
  page = page.replace(ref, `"${f}?v=${await hashOf(f)}"`)
}
await writeFile(resolve(outdir, 'index.html'), page)

const js = await readFile(resolve(outdir, 'app.js'), 'utf8')
if (/\binnerHTML\b|\bouterHTML\b|insertAdjacentHTML|document\.write\b|\beval\(/.test(js))
  throw new Error('dist/dashboard/app.js writes HTML from strings or evaluates code: show data as text nodes')
