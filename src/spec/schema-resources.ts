import { z } from 'zod'
import { integer, report } from './schema-common.js'
import type { Resources } from './types.js'

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  ki: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mi: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gi: 1024 ** 3,
}
const MEMORY_PATTERN = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i
/** runc and the kernel refuse smaller limits (Docker's minimum too). */
const MIN_MEMORY = 6 * 1024 ** 2
const MEMORY_ERROR =
  'expected a memory size such as "256m", "1g" or "512Mi" (at least 6m), or a number of bytes'

/** Bytes of a memory size: a number of bytes, or a number with a unit (k, m, g; binary, as Docker). */
export function parseMemory(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? value : undefined
  const m = MEMORY_PATTERN.exec(value.trim())
  const unit = UNITS[(m?.[2] ?? '').toLowerCase()]
  if (!m || unit === undefined) return undefined
  return Math.floor(Number(m[1]) * unit)
}

const memorySchema = z.union([z.string(), z.number()], { error: MEMORY_ERROR }).transform((v, ctx) => {
  const bytes = parseMemory(v)
  if (bytes === undefined || bytes < MIN_MEMORY) {
    report(ctx, MEMORY_ERROR, v, { hint: 'for example memory: 256m' })
    return z.NEVER
  }
  return bytes
})

/** Limits of a `run` step or an instance, enforced by the kernel's cgroups where it can (docs/deploying.md). */
export const resourcesSchema = z
  .strictObject({
    memory: memorySchema
      .optional()
      .describe(
        'Memory limit: `"256m"`, `"1g"`, `"512Mi"` or bytes; beyond it the kernel OOM-kills. Default: none.',
      ),
    cpus: z
      .number({ error: 'expected a number of CPUs such as 0.5 or 2' })
      .min(0.01, { error: 'expected a number of CPUs such as 0.5 or 2 (at least 0.01)' })
      .max(1024, { error: 'expected a number of CPUs such as 0.5 or 2 (at most 1024)' })
      .optional()
      .describe('CPU time, in CPUs (`0.5` = half of one CPU per period). Default: none.'),
    pids: integer('a whole number of processes (at least 2: the init and the app)', 2)
      .optional()
      .describe('Most processes and threads at once, the init included. Default: none.'),
  })
  .transform((r): Resources => r)
  .describe('Resource limits (cgroups): `memory`, `cpus`, `pids`.')
