#!/usr/bin/env node
// The `grail` command: runs the CLI bundle that `npm run build` makes (scripts/build-cli.mjs), compiled
// from V8's code cache when it has one for this Node, which saves parsing it on every start.
'use strict'
const { readFileSync, writeFileSync, writeSync, renameSync } = require('node:fs')
const { dirname, join } = require('node:path')

const bundle = join(__dirname, '..', 'dist', 'bundle', 'grail.cjs')
const cacheFile = `${bundle}.cache`

/** Compiles and runs the bundle as require() would, with the code cache; returns its exports. */
function load() {
  const Module = require('node:module')
  const vm = require('node:vm')
  // only require() applies the source map (NODE_OPTIONS=--enable-source-maps, for a readable stack)
  if (process.sourceMapsEnabled) return { exports: require(bundle), script: undefined }
  let cachedData
  try {
    cachedData = readFileSync(cacheFile)
  } catch (err) {
    if (err.code !== 'ENOENT') throw err
  }
  const script = new vm.Script(Module.wrap(readFileSync(bundle, 'utf8')), {
    filename: bundle,
    cachedData,
  })
  const module = { exports: {}, filename: bundle, id: bundle }
  script
    .runInThisContext()
    .call(module.exports, module.exports, Module.createRequire(bundle), module, bundle, dirname(bundle))
  return { exports: module.exports, script }
}

/**
 * A `grail build` that changes nothing is answered from the stamp the last one left (src/cli/noop-stamp.ts)
 * when every input is as it recorded, before loading the CLI; undefined (or any error) takes the full path.
 */
function noopBuild() {
  const argv = process.argv.slice(2)
  if (argv.length > 2 || !argv.includes('build')) return undefined
  try {
    return require(join(__dirname, '..', 'dist', 'bundle', 'noop.cjs')).fastNoopBuild(argv)
  } catch {
    return undefined
  }
}

/** Writes to fd 1 directly (setting process.stdout up costs ~1 ms); a non-blocking pipe gets the rest. */
function print(text) {
  const buf = Buffer.from(text)
  let done = 0
  try {
    while (done < buf.length) done += writeSync(1, buf, done)
  } catch (err) {
    // a reader that went away (`grail build | head -1`) is no error, as in the CLI (cli/render.ts)
    if (err.code === 'EPIPE') return
    if (err.code !== 'EAGAIN') throw err
    process.stdout.write(buf.subarray(done))
  }
}

const answered = noopBuild()
if (answered !== undefined) print(answered)
else {
  const { exports: cli, script } = load()
  cli.main(process.argv).then((code) => {
    process.exitCode = code
    // scripts/build-cli.mjs asks for the cache once, after the bundle is written
    if (process.env.GRAIL_WRITE_CODE_CACHE === '1' && script) {
      writeFileSync(`${cacheFile}.tmp`, script.createCachedData())
      renameSync(`${cacheFile}.tmp`, cacheFile)
    }
  })
}
