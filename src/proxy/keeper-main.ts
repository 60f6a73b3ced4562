// Entry of the proxy keeper: `node dist/proxy/keeper-main.js --pid-file <file> <daemon flags>`. Started
// detached by `ensureProxy`; it runs the daemon (daemon-main) as its child and restarts it; see keeper.ts.
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { parseDaemonArgs } from './daemon-protocol.js'
import { runKeeper } from './keeper.js'

const logger = pino({ base: { pid: process.pid, role: 'keeper' } }, pino.destination({ dest: 1, sync: true }))

function daemonCommand(): string[] {
  const here = import.meta.url
  if (here.endsWith('.ts')) {
    return ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('./daemon-main.ts', here))]
  }
  return [fileURLToPath(new URL('./daemon-main.js', here))]
}

const argv = process.argv.slice(2)
if (argv[0] !== '--pid-file' || argv[1] === undefined) {
  process.stderr.write('grail proxy keeper: usage: keeper-main --pid-file FILE DAEMON-FLAGS\n')
  process.exit(2)
}
const daemonArgs = argv.slice(2)
try {
  parseDaemonArgs(daemonArgs)
} catch (err) {
  process.stderr.write(`grail proxy keeper: ${(err as Error).message}\n`)
  process.exit(2)
}
const code = await runKeeper({
  daemonCommand: daemonCommand(),
  daemonArgs,
  pidFile: argv[1],
  log: (event, data) => logger.info({ event, ...data }),
})
process.exit(code)
