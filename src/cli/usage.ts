import type { Command, CommanderError } from 'commander'
import { style } from './render.js'

/** A usage error (unknown command or option, missing or invalid argument) as Grail shows it. */
export interface UsageError {
  /** `USAGE_UNKNOWN_COMMAND`, `USAGE_UNKNOWN_OPTION`, `USAGE_MISSING_ARGUMENT`, … */
  code: string
  /** One line, without commander's `error: ` prefix. */
  message: string
  /** Commander's suggestion (`did you mean status?`) when it has one, and where the usage is. */
  hint: string
}

/** Global options that take a value: their value is not the command's name. */
const VALUE_OPTIONS = new Set(['-C', '--chdir', '-f', '--file'])

/** The command argv names (`grail -C dir status --jsn` → `status`), when it is one of the program's. */
function commandName(program: Command, argv: readonly string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i] as string
    if (VALUE_OPTIONS.has(arg)) i++
    else if (!arg.startsWith('-'))
      return program.commands.some((c) => c.name() === arg || c.aliases().includes(arg)) ? arg : undefined
  }
  return undefined
}

/**
 * Commander's error as one line and a hint. Commander puts its suggestion on a second line
 * (`(Did you mean status?)`); it becomes the hint, which also says where the full usage is, instead of
 * the whole help that used to follow every mistyped word.
 */
export function usageError(err: CommanderError, program: Command, argv: readonly string[]): UsageError {
  const [first = '', ...rest] = err.message.split('\n')
  const suggestion = /\(Did you mean (.+)\?\)/.exec(rest.join('\n'))?.[1]
  const name = commandName(program, argv)
  const usage = `see \`grail ${name ? `${name} ` : ''}--help\``
  return {
    code: `USAGE_${err.code
      .replace(/^commander\./, '')
      .replace(/[A-Z]/g, (c) => `_${c}`)
      .toUpperCase()}`,
    message: first.replace(/^error: /, ''),
    hint: suggestion ? `did you mean ${suggestion}? ${usage}` : usage,
  }
}

/** Writes a usage error on stderr: two lines (error, hint), or with `json` one JSON object. */
export function reportUsage(usage: UsageError, json: boolean): void {
  if (json) {
    const { code, message, hint } = usage
    process.stderr.write(`${JSON.stringify({ error: { code, message, details: [], hint } })}\n`)
    return
  }
  process.stderr.write(`${style.red('error')}: ${usage.message}\n${style.dim('hint')}: ${usage.hint}\n`)
}
