// Entry of the data plane's keeper: `node dist/proxy/haproxy/keeper-main.js --dir DIR --haproxy PATH`.
// Started detached by the data plane (dataplane.ts); see keeper.ts. With `--bind HOST PORT` it is the
// keeper's binder child instead.
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { runBinder, runHaproxyKeeper } from './keeper.js'

const argv = process.argv.slice(2)
if (argv[0] === '--bind' && argv[1] !== undefined && argv[2] !== undefined) {
  runBinder(argv[1], Number(argv[2]))
} else if (argv[0] === '--dir' && argv[1] !== undefined && argv[2] === '--haproxy' && argv[3] !== undefined) {
  const logger = pino(
    { base: { pid: process.pid, role: 'keeper' } },
    pino.destination({ dest: 1, sync: true }),
  )
  const code = await runHaproxyKeeper({
    dir: argv[1],
    haproxy: argv[3],
    entry: [...process.execArgv, fileURLToPath(import.meta.url)],
    log: (event, data) => logger.info({ event, ...data }),
  })
  process.exit(code)
} else {
  process.stderr.write('grail data plane keeper: usage: keeper-main --dir DIR --haproxy PATH\n')
  process.exit(2)
}
