import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Command } from 'commander'
import { GrailError } from '../../errors.js'
import { installedSchemaPath } from '../../spec/schema-file.js'
import type { GlobalOptions } from '../project.js'
import { SPEC_FILES } from '../project.js'
import { out, printJson, style } from '../render.js'

/** A project name derived from a directory name, made to satisfy the name rule. */
export function projectNameFor(dir: string): string {
  const name = basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
  return /^[a-z0-9]/.test(name) ? name : 'app'
}

/**
 * The editor modeline for the schema of the installed Grail, as a file URL: the modeline ends at the
 * first space, so a path with spaces has to be percent-encoded. None when the schema file is missing.
 */
export function schemaModeline(schemaFile = installedSchemaPath()): string {
  if (!existsSync(schemaFile)) return ''
  return `# yaml-language-server: $schema=${pathToFileURL(schemaFile).href}\n`
}

/** The spec `grail init` writes: a working golden image and a service, with comments. */
export function initTemplate(name: string, modeline = schemaModeline()): string {
  return `${modeline}# Reference: docs/spec.md. Build with \`grail build\`, list with \`grail images\`.
project: ${name}

images:
  ${name}:
    base:
      debian: { suite: bookworm, variant: essential, include: [busybox] }
    steps:
      - copy: site/ /srv/www
      - env: { PORT: "8080" }
      - expose: 8080
      - healthcheck: { http: /healthz }
      - cmd: ["/bin/sh", "-c", "exec busybox httpd -f -p \\"0.0.0.0:\${PORT}\\" -h /srv/www"]

services:
  web:
    image: ${name}
    replicas: 2
    port: 8080
    publish: 8080
`
}

/** `grail init [DIR]`: scaffolds a spec and a tiny site that builds as is. */
export function registerInit(program: Command, globals: () => GlobalOptions): void {
  program
    .command('init')
    .description('create grail.yaml and a small site to start from')
    .argument('[dir]', 'project directory', '.')
    .option('--force', 'overwrite an existing grail.yaml')
    .action(async (dirArg: string, flags: { force?: boolean }) => {
      const g = globals()
      const dir = resolve(g.chdir ?? '.', dirArg)
      const existing = SPEC_FILES.map((f) => join(dir, f)).find((f) => existsSync(f))
      if (existing && !flags.force) {
        throw new GrailError('SPEC_EXISTS', `${existing} already exists`, {
          hint: 'edit it, or pass --force to replace it with the starter spec',
        })
      }
      const name = projectNameFor(dir)
      const written: string[] = []
      await mkdir(join(dir, 'site'), { recursive: true })
      const files: Array<[string, string]> = [
        ['grail.yaml', initTemplate(name)],
        ['site/index.html', `<!doctype html>\n<title>${name}</title>\n<h1>${name}</h1>\n`],
        ['site/healthz', 'ok\n'],
        ['.gitignore', '.grail/\n'],
      ]
      for (const [rel, content] of files) {
        const path = join(dir, rel)
        if (rel !== 'grail.yaml' && existsSync(path)) continue
        await writeFile(path, content)
        written.push(rel)
      }
      if (g.json) printJson({ project: name, dir, written })
      else {
        for (const f of written) out(`${style.green('created')} ${join(dir, f)}`)
        out(`next: ${style.bold('grail build')} ${style.dim(`(in ${dir})`)}`)
      }
    })
}
