#!/usr/bin/env node
// Bundles the CLI (src/cli/main.ts) into dist/bundle/grail.cjs and records V8's code cache for it, which
// bin/grail.js loads; `npm run build` runs this after tsc. Every command pays Node's start and then module
// loading: from ~110 files under dist/ and node_modules, a no-op `grail build` spent ~70 ms of ~200 ms
// resolving, reading and linking modules, and `grail --help` took 1.9x `node -e ""`. Measured on Node 20
// (bench/build): an ESM bundle code-split per command still cost 1.45x for --help (the ESM loader and
// compiling ~260 KB); one CommonJS file compiled from the code cache costs 1.2x.
// - CommonJS, one file: esbuild wraps each module so that it runs when first imported, so a command's
//   `import()` of its engine stays lazy (and costs no file lookups);
// - minified with names kept (stack traces name functions; dist/bundle/grail.cjs.map maps them back, with
//   NODE_OPTIONS=--enable-source-maps, which is off by default because it costs every start);
// - better-sqlite3's JavaScript inside (required from node_modules, its dozen files cost a no-op build
//   ~3 ms), its native addon loaded by path (src/state/db.ts), never through `bindings`, which finds it
//   from its caller's file and would look next to the bundle;
// - packages left outside, required from node_modules only by the code that uses them: jiti and pino (they load their own files by path), zod, yaml and diff (large, and a
//   no-op build does not need them: the spec is cached). ora is ESM only and inside: an import() in code
//   compiled from the code cache fails (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING), so the bundle may
//   have none, which the build checks.
import { readFile, rm } from 'node:fs/promises'
import { relative, resolve } from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = resolve(fileURLToPath(new URL('..', import.meta.url)))
const src = resolve(root, 'src')
const outdir = resolve(root, 'dist/bundle')
const { version } = JSON.parse(await readFile(resolve(root, 'package.json'), 'utf8'))

/**
 * `import.meta.url` of a bundled module is the URL of its tsc output under dist/ (which `npm run build`
 * writes too): the code finds files next to its compiled self (package.json two levels up,
 * schema/grail.schema.json, dist/proxy/keeper-main.js spawned by path, spec/define-config.js).
 */
const metaUrlOfTscOutput = {
  name: 'import-meta-url-of-tsc-output',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      if (!args.path.startsWith(`${src}/`)) return undefined
      const source = await readFile(args.path, 'utf8')
      if (!source.includes('import.meta.url')) return { contents: source, loader: 'ts' }
      const out = relative(outdir, resolve(root, 'dist', relative(src, args.path))).replace(/\.ts$/, '.js')
      const url = `require('node:url').pathToFileURL(require('node:path').join(__dirname, ${JSON.stringify(out)})).href`
      return { contents: source.replaceAll('import.meta.url', url), loader: 'ts' }
    })
  },
}

/**
 * commander requires child_process at the top for executable subcommands, which Grail has none of;
 * loading it (with net, dgram and the streams it pulls in) cost every start ~3 ms. It is required when
 * first used instead.
 */
const lazyChildProcessInCommander = {
  name: 'lazy-child-process-in-commander',
  setup(b) {
    b.onLoad({ filter: /[\\/]commander[\\/]lib[\\/]command\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8')
      const eager = "const childProcess = require('node:child_process');"
      if (!source.includes(eager)) throw new Error(`${args.path}: no "${eager}" to make lazy`)
      const lazy = "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };"
      return { contents: source.replace(eager, lazy), loader: 'js' }
    })
  },
}

// stale output of an earlier build would linger
await rm(outdir, { recursive: true, force: true })
await build({
  // noop: the fast path of a no-op `grail build` that bin/grail.js tries first (src/cli/noop-stamp.ts)
  entryPoints: { grail: resolve(src, 'cli/main.ts'), noop: resolve(src, 'cli/noop-stamp.ts') },
  outdir,
  outExtension: { '.js': '.cjs' },
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external: ['bindings', 'jiti', 'pino', 'zod', 'yaml', 'diff'],
  plugins: [metaUrlOfTscOutput, lazyChildProcessInCommander],
  // src/cli/version.ts: the version without reading package.json at every start
  define: { __GRAIL_VERSION__: JSON.stringify(version) },
  minify: true,
  keepNames: true,
  sourcemap: 'linked',
  legalComments: 'none',
  // import.meta.resolve('tsx') is only reached when running from src/ (a .ts import.meta.url)
  logOverride: { 'empty-import-meta': 'silent' },
  logLevel: 'warning',
})

const bundled = await readFile(resolve(outdir, 'grail.cjs'), 'utf8')
const dynamic = /\bimport\(\s*["'`]([^"'`]+)/.exec(bundled)
if (dynamic)
  throw new Error(`dist/bundle/grail.cjs imports ${dynamic[1]} with import(): bundle it, or require() it`)

// the code cache holds what `grail --help` compiles: the CLI's setup, which every command runs
const res = spawnSync(process.execPath, [resolve(root, 'bin/grail.js'), '--help'], {
  env: { ...process.env, GRAIL_WRITE_CODE_CACHE: '1' },
  stdio: ['ignore', 'ignore', 'inherit'],
})
if (res.status !== 0) throw new Error(`bin/grail.js --help exited ${res.status} while writing the code cache`)
