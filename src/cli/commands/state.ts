import type { Command } from 'commander'
import { GrailError } from '../../errors.js'
import { wholeNumber } from '../args.js'
import type { GlobalOptions } from '../project.js'
import { projectHome } from '../project.js'
import { out, printJson, style, table } from '../render.js'

/** `--since`: a duration back from now (`30m`, `2h`, `7d`) or an ISO date/time; as an ISO time. */
async function sinceTime(value: string): Promise<string> {
  const { parseDuration } = await import('../../spec/duration.js')
  const ms = parseDuration(value)
  if (ms !== undefined) return new Date(Date.now() - ms).toISOString()
  const t = Date.parse(value)
  if (/^\d{4}-\d{2}-\d{2}/.test(value) && !Number.isNaN(t)) return new Date(t).toISOString()
  throw new GrailError('BAD_SINCE', `--since ${JSON.stringify(value)} is neither a duration nor a date`, {
    hint: 'use a duration back from now (30m, 2h, 7d) or an ISO date such as 2026-01-31 or 2026-01-31T12:00:00Z',
  })
}

/** `grail events`, the audit log; `grail state reset`, starting over when the state is lost. */
export function registerState(program: Command, globals: () => GlobalOptions): void {
  program
    .command('events')
    .description('the audit log: what Grail did, when, by whom and why (oldest first)')
    .option('--since <when>', 'only events since a duration ago (30m, 2h, 7d) or a date')
    .option('-n, --limit <count>', 'at most this many, the newest (default 100)', wholeNumber('a count'))
    .option('--subject <name>', 'only events about this service, environment, image or instance')
    .action(async (flags: { since?: string; limit?: number; subject?: string }) => {
      const g = globals()
      const since = flags.since === undefined ? undefined : await sinceTime(flags.since)
      const { openDb, listEvents } = await import('../../state/index.js')
      const db = openDb(projectHome(g).db)
      let events: ReturnType<typeof listEvents>
      try {
        events = listEvents(db, {
          ...(since ? { since } : {}),
          ...(flags.subject ? { subject: flags.subject } : {}),
          limit: flags.limit ?? 100,
        }).reverse()
      } finally {
        db.close()
      }
      if (g.json) {
        printJson(events)
        return
      }
      if (events.length === 0) {
        out(since ? `no events since ${since}` : 'no events yet')
        return
      }
      const rows = [['AT', 'KIND', 'SUBJECT', 'ACTOR', 'DATA'].map(style.bold)]
      for (const e of events) {
        const data = JSON.stringify(e.data)
        rows.push([e.at, e.kind, e.subject, e.actor, data === '{}' ? '' : style.dim(data)])
      }
      for (const line of table(rows)) out(line)
    })

  const state = program.command('state').description("Grail's own state of this project (.grail/state.db)")
  state
    .command('reset')
    .description(
      'start over with an empty state: stop every instance and proxy of this project, keep the old database beside it',
    )
    .option('--force', 'do it (without it, only say what would be done)')
    .action(async (flags: { force?: boolean }) => {
      const g = globals()
      const home = projectHome(g)
      const { stateLeftovers } = await import('../../state/index.js')
      if (!flags.force) {
        const found = stateLeftovers(home.db)
        throw new GrailError(
          'RESET_NEEDS_FORCE',
          `grail state reset stops every instance and proxy of this project and starts ${home.db} over empty`,
          {
            details: [
              ...(found.length ? found : ['nothing runs']),
              'the old database is kept beside the new one; images and volumes stay',
            ],
            hint: 'restore state.db from a backup if you have one; otherwise run `grail state reset --force`',
          },
        )
      }
      const { resetState } = await import('../../lifecycle/reset-state.js')
      const res = await resetState(home)
      if (g.json) {
        printJson(res)
        return
      }
      out(
        `state reset: stopped ${res.instances.length} instance(s) and ${res.proxies.length} prox${res.proxies.length === 1 ? 'y' : 'ies'}`,
      )
      if (res.keptAs) out(`the previous state database is kept as ${res.keptAs}`)
      out(
        'images stay on disk but not in the catalog: `grail up` builds them again (same digests) and deploys',
      )
    })
}
