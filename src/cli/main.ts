import { Command, CommanderError } from 'commander'
import { registerBuild } from './commands/build.js'
import { registerDeploy } from './commands/deploy.js'
import { registerDrift } from './commands/drift.js'
import { registerLifecycle } from './commands/lifecycle.js'
import { registerImages, registerRevoke } from './commands/images.js'
import { registerInit } from './commands/init.js'
import { registerOperate } from './commands/operate.js'
import { registerOutdated } from './commands/outdated.js'
import { registerRegistry } from './commands/registry.js'
import { registerSchema } from './commands/schema.js'
import { registerServe } from './commands/serve.js'
import { registerState } from './commands/state.js'
import { registerToken } from './commands/token.js'
import { registerVerify } from './commands/verify.js'
import type { GlobalOptions } from './project.js'
import { EXIT, ignoreClosedPipes, reportError } from './render.js'
import { reportUsage, usageError } from './usage.js'
import { grailVersion } from './version.js'

/**
 * The `grail` entry point: parses argv, runs one command, maps the outcome to an exit code.
 * Commands load the engine lazily so that `grail build` of an unchanged image starts fast.
 */
export async function main(argv: string[]): Promise<number> {
  ignoreClosedPipes()
  // commander's own error message is held back: a usage error is rendered by reportUsage, as one line
  // and a hint (with its "did you mean"), or with --json as one JSON object
  const json = argv.includes('--json')
  const program = new Command('grail')
    .description('immutable infrastructure: reproducible golden images, deployed by replacement')
    .version(grailVersion(), '-V, --version', 'print the version of Grail')
    .option('-C, --chdir <dir>', 'run as if started in DIR')
    .option('-f, --file <file>', 'spec file (default: grail.yaml in the directory or a parent)')
    .option('--json', 'machine-readable output')
    .option('--show-values', 'show env values, deploy-file contents and secrets instead of hiding them')
    .exitOverride()
    .configureOutput({
      writeErr: (s) => {
        if (!json) process.stderr.write(s)
      },
      outputError: () => {},
    })
  const globals = () => program.opts<GlobalOptions>()
  registerInit(program, globals)
  registerBuild(program, globals)
  registerRegistry(program, globals)
  registerImages(program, globals)
  registerRevoke(program, globals)
  registerOutdated(program, globals)
  registerDeploy(program, globals)
  registerOperate(program, globals)
  registerDrift(program, globals)
  registerVerify(program, globals)
  registerLifecycle(program, globals)
  registerState(program, globals)
  registerServe(program, globals)
  registerToken(program, globals)
  registerSchema(program)
  try {
    await program.parseAsync(argv)
    // a command may ask for another status without failing (plan/drift --detailed-exitcode: 2)
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return EXIT.ok
      // `grail` alone: commander has shown the help on stderr; as JSON that is the error it stands for
      if (err.code === 'commander.help') {
        if (json)
          reportUsage(
            { code: 'USAGE_NO_COMMAND', message: 'no command given', hint: 'see `grail --help`' },
            true,
          )
      } else reportUsage(usageError(err, program, argv), json)
      return EXIT.user
    }
    return reportError(err, json)
  }
}
