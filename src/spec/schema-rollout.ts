import { z } from 'zod'
import { checkExactlyOne, durationSchema, integer } from './schema-common.js'

const canarySchema = z.preprocess(
  (raw: { instances?: number; percent?: number }, ctx) => {
    checkExactlyOne(ctx, raw, ['instances', 'percent'], 'canary')
    return raw
  },
  z.strictObject({
    instances: integer('a whole number ≥ 1', 1).optional().describe('Number of canary instances.'),
    percent: integer('a percentage (1-100)', 1, 100).optional().describe('Share of traffic for the canary.'),
  }),
)

/** How a new release replaces running instances; `order` stays unset here, the service decides it. */
export const rolloutSchema = z.strictObject({
  strategy: z
    .enum(['rolling', 'blue-green', 'canary'])
    .default('rolling')
    .describe(
      '`rolling` (replace in batches), `blue-green` (full new set, then switch) or `canary`. Default `rolling`.',
    ),
  maxSurge: integer('a whole number ≥ 0', 0)
    .default(1)
    .describe('Rolling: instances started above `replicas` during a rollout. Default `1`.'),
  maxUnavailable: integer('a whole number ≥ 0', 0)
    .default(0)
    .describe('Rolling: instances that may be missing below `replicas` during a rollout. Default `0`.'),
  order: z
    .enum(['start-first', 'stop-first'])
    .optional()
    .describe(
      'Start the new instance before stopping the old one, or the reverse. Default `start-first`, or `stop-first` when the service has an exclusive volume.',
    ),
  bake: durationSchema()
    .prefault('0s')
    .describe('Blue-green/canary: how long the new set runs before the old one is destroyed. Default `0s`.'),
  canary: canarySchema
    .optional()
    .describe(
      'Canary size: `{instances: N}` or `{percent: P}`. Default `{instances: 1}` with `strategy: canary`.',
    ),
  healthTimeout: durationSchema()
    .prefault('60s')
    .describe(
      'How long a new instance may take to become healthy before the rollout fails and rolls back. Default `60s`.',
    ),
  drain: durationSchema()
    .prefault('2s')
    .describe('How long an old instance drains connections before it stops. Default `2s`.'),
})

const WINDOW = /^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$/
/** Scheduled replacement of old instances. */
export const recycleSchema = z.strictObject({
  maxAge: durationSchema()
    .refine((ms) => ms > 0, { error: 'expected a duration above 0' })
    .optional()
    .describe('Replace instances older than this (`7d`). Default: never.'),
  jitter: durationSchema()
    .prefault('0s')
    .describe('Random extra age per instance so replacements spread out. Default `0s`.'),
  window: z
    .string()
    .regex(WINDOW, { error: 'expected a daily window "HH:MM-HH:MM" (UTC), such as "02:00-05:00"' })
    .optional()
    .describe(
      'Daily UTC window in which recycling may happen, `"HH:MM-HH:MM"` (may wrap midnight). Default: any time.',
    ),
  order: z
    .enum(['oldest', 'most-drifted'])
    .default('oldest')
    .describe('Which instances go first. Default `oldest`.'),
})

/** When repeated involuntary restarts of a service count as a crash loop, and how apply backs off. */
export const crashLoopSchema = z.strictObject({
  restarts: integer('a whole number ≥ 1', 1)
    .default(3)
    .describe(
      'Restarts (replacements of crashed or unhealthy instances, and new instances failing their gate) of one release within `window` that make a crash loop. Default `3`.',
    ),
  window: durationSchema()
    .refine((ms) => ms > 0, { error: 'expected a duration above 0' })
    .prefault('10m')
    .describe('How far back restarts count. Default `10m`.'),
  backoff: durationSchema()
    .prefault('30s')
    .describe(
      'Wait after the last restart before the next one, once in a crash loop; doubles with each further restart. Default `30s`.',
    ),
  maxBackoff: durationSchema()
    .prefault('10m')
    .describe('Upper bound of the doubling backoff. Default `10m`.'),
})
