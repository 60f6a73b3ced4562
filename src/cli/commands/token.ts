import type { Command } from 'commander'
import type { GlobalOptions } from '../project.js'
import { projectHome } from '../project.js'
import { formatAge, out, printJson, style, table } from '../render.js'

/** `grail token create|list|revoke`: the bearer tokens of the HTTP API that `grail serve` runs. */
export function registerToken(program: Command, globals: () => GlobalOptions): void {
  const token = program.command('token').description('bearer tokens for the HTTP API of `grail serve`')

  token
    .command('create')
    .description('create a token; it is printed once and stored only as its sha256')
    .requiredOption('--name <name>', 'a name for the token (lowercase letters, digits, "-")')
    .requiredOption('--scope <scope>', 'read (GET endpoints, /metrics) or write (also apply, rollback, …)')
    .action(async (flags: { name: string; scope: string }) => {
      const g = globals()
      const { openDb, createToken } = await import('../../state/index.js')
      const db = openDb(projectHome(g).db)
      try {
        const { token: secret, record } = createToken(db, {
          name: flags.name,
          scope: flags.scope as 'read' | 'write',
        })
        // the token is the one secret Grail prints on purpose, once: written past the output redaction
        // (which hides any value under a key like "token"), alone on stdout so that scripts can take it
        if (g.json) process.stdout.write(`${JSON.stringify({ ...record, token: secret }, null, 2)}\n`)
        else {
          process.stdout.write(`${secret}\n`)
          process.stderr.write(
            `${style.dim(`token ${record.name} (${record.scope}) created; it is not shown again: store it now`)}\n`,
          )
        }
      } finally {
        db.close()
      }
    })

  token
    .command('list')
    .description('the tokens: name, scope, created, last used, revoked')
    .action(async () => {
      const g = globals()
      const { openDb, listTokens } = await import('../../state/index.js')
      const db = openDb(projectHome(g).db)
      try {
        const tokens = listTokens(db)
        if (g.json) {
          printJson(tokens)
          return
        }
        if (tokens.length === 0) {
          out('no tokens: `grail token create --name NAME --scope read|write` makes one')
          return
        }
        const rows = [['NAME', 'SCOPE', 'CREATED', 'LAST USED', 'STATUS'].map(style.bold)]
        for (const t of tokens)
          rows.push([
            t.name,
            t.scope,
            `${formatAge(t.createdAt)} ago`,
            t.lastUsedAt ? `${formatAge(t.lastUsedAt)} ago` : '-',
            t.revokedAt ? style.yellow(`revoked ${formatAge(t.revokedAt)} ago`) : style.green('live'),
          ])
        for (const line of table(rows)) out(line)
      } finally {
        db.close()
      }
    })

  token
    .command('revoke')
    .description('revoke a token: every later request with it is refused')
    .argument('<name>', 'token name')
    .action(async (name: string) => {
      const g = globals()
      const { openDb, revokeToken } = await import('../../state/index.js')
      const db = openDb(projectHome(g).db)
      try {
        const record = revokeToken(db, name)
        if (g.json) printJson(record)
        else out(`token ${record.name} revoked`)
      } finally {
        db.close()
      }
    })
}
