/**
 * The grail.yaml schema: one zod schema that is the input types (`GrailConfigInput`, for
 * `defineConfig`), the JSON Schema (schema/grail.schema.json) and the reference docs (docs/spec.md).
 * It normalises shorthands, durations and defaults; host paths, environment overrides and
 * SOURCE_DATE_EPOCH are applied afterwards by `normaliseProject`, which knows where the file is.
 */
import { z } from 'zod'
import { baseSchema } from './schema-base.js'
import { DEFAULT_REDACT_KEYS } from '../util/redact.js'
import { durationSchema, integer, nameSchema, report, serviceNameSchema } from './schema-common.js'
import { registrySchema } from './schema-registry.js'
import { resourcesSchema } from './schema-resources.js'
import { serviceOverrideSchema, serviceSchema } from './schema-service.js'
import { stepSchema } from './schema-steps.js'

const imageSchema = z
  .strictObject({
    base: baseSchema.prefault('scratch'),
    context: z
      .string()
      .min(1)
      .default('.')
      .describe(
        'Build context directory, relative to the spec file; `copy` reads only from here. Default `.`.',
      ),
    sourceDateEpoch: integer('a whole number of seconds since 1970 (≥ 0)', 0)
      .optional()
      .describe(
        'Timestamp (seconds) every file mtime is clamped to. Default: `$SOURCE_DATE_EPOCH` if set, else 1 (1970-01-01T00:00:01Z).',
      ),
    steps: z
      .array(stepSchema)
      .default([])
      .describe('Build steps, in order; each becomes (at most) one layer. Default: none.'),
    resources: resourcesSchema
      .optional()
      .describe(
        'Limits of each `run` step (`memory`, `cpus`, `pids`); they do not change the image. Default: none.',
      ),
  })
  .describe('An image: a base plus steps, built reproducibly into a versioned OCI image.')

const environmentSchema = z
  .strictObject({
    // any name: which providers exist is the runtime factory's business (PROVIDER_UNAVAILABLE names them),
    // so `provider: docker` and `provider: nosuch` are the same error, in every command on the environment
    provider: nameSchema('a provider name')
      .default('local')
      .meta({ examples: ['local', 'docker', 'swarm'] })
      .describe(
        'Where instances run: `local` (runc, no daemon); `docker` (Docker/Podman API) and `swarm` are planned. A provider this Grail does not have is an error (PROVIDER_UNAVAILABLE) in every command on the environment. Default `local`.',
      ),
    endpoint: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Provider connection, e.g. `unix:///run/docker.sock` or `tcp://host:2376`. Default: the provider's usual socket.",
      ),
    services: z
      .record(serviceNameSchema('a service name'), serviceOverrideSchema)
      .default({})
      .describe(
        'Per-service overrides, deep-merged into `services.<name>`: mappings merge, lists and values replace; `healthcheck` and `publish` replace as a whole.',
      ),
    registry: registrySchema
      .optional()
      .describe(
        "The registry this environment pulls from (and `grail push` sends to): replaces the project's `registry` as a whole. Default: the project's.",
      ),
  })
  .check((ctx) => {
    if (ctx.value.provider === 'local' && ctx.value.endpoint !== undefined) {
      report(ctx, 'the local provider has no endpoint', ctx.value.endpoint, {
        path: ['endpoint'],
        hint: 'remove endpoint, or set provider: docker / swarm',
      })
    }
  })
  .describe('A place the services run, with its provider and per-service overrides.')

const PATCH_ACTIONS = ['report', 'build', 'deploy'] as const

const patchSchema = z
  .strictObject({
    interval: durationSchema()
      .refine((ms) => ms > 0, { error: 'expected a duration above 0' })
      .prefault('6h')
      .describe(
        'How often `grail serve` checks the Debian archive for newer versions of the packages recorded for each image (and how old a cached archive index may be). Default `6h`.',
      ),
    action: z
      .enum(PATCH_ACTIONS, { error: `expected one of ${PATCH_ACTIONS.join(', ')}` })
      .default('report')
      .describe(
        'What a finding triggers: `report` (an event `patch.outdated`), `build` (a new version of each affected image, with the newer packages), or `deploy` (build, then apply the environments named in `deploy`). Default `report`.',
      ),
    deploy: z
      .array(nameSchema('an environment name'))
      .optional()
      .describe(
        'With `action: deploy`: the environments a patched image is applied to (for example `[staging]`), never any other. Required then, and only then.',
      ),
    security: z
      .boolean()
      .default(false)
      .describe(
        'Act only on updates from the security archive (`<suite>-security`); other updates are still shown by `grail outdated`. Default `false`.',
      ),
  })
  .check((ctx) => {
    const { action, deploy } = ctx.value
    if (action === 'deploy' && (deploy === undefined || deploy.length === 0)) {
      report(ctx, 'action deploy needs the environments to deploy to', deploy ?? action, {
        path: deploy === undefined ? ['action'] : ['deploy'],
        hint: 'add deploy: [staging] (environments declared under `environments:`), or use action: build',
      })
    }
    if (action !== 'deploy' && deploy !== undefined) {
      report(ctx, `deploy is only used with action: deploy (this policy's action is ${action})`, deploy, {
        path: ['deploy'],
        hint: 'set action: deploy, or remove deploy',
      })
    }
  })
  .describe(
    'What triggers a build: how often the Debian archive is checked for newer packages than each image has, and what a finding does.',
  )

const policiesSchema = z.strictObject({
  gc: z
    .strictObject({
      keepVersions: integer('a whole number ≥ 1', 1)
        .default(5)
        .describe('Versions of each image always kept. Default `5`.'),
      keepDeployedWithin: durationSchema()
        .prefault('14d')
        .describe('Images deployed within this long are kept (rollback targets). Default `14d`.'),
      keepReleases: integer('a whole number ≥ 1', 1)
        .default(3)
        .describe(
          'Releases per service and environment kept as rollback targets, besides the active one. Default `3`.',
        ),
    })
    .prefault({})
    .describe('Garbage collection of images. What runs, and its ancestors, are never collected.'),
  disruptionBudget: z
    .strictObject({
      maxUnavailable: integer('a whole number ≥ 1', 1)
        .default(1)
        .describe('Instances per service that recycling/revocation may take down at once. Default `1`.'),
      minHealthy: integer('a whole number ≥ 0', 0)
        .default(0)
        .describe('Healthy instances per service that voluntary disruptions must leave. Default `0`.'),
    })
    .prefault({})
    .describe('Budget shared by recycling, revocation and rollouts.'),
  hotfix: z
    .strictObject({
      maxTtl: durationSchema()
        .refine((ms) => ms > 0, { error: 'expected a duration above 0' })
        .prefault('24h')
        .describe('Longest TTL a hotfix may ask for; after it the instance is replaced. Default `24h`.'),
      requireReason: z.boolean().default(true).describe('A hotfix must give a reason. Default `true`.'),
    })
    .prefault({})
    .describe('Rules for break-glass changes to live instances.'),
  redact: z
    .strictObject({
      keys: z
        .array(z.string().min(1))
        .default([...DEFAULT_REDACT_KEYS])
        .describe(
          `Globs of env keys (any case) whose values are secrets: redacted in events, logs, hotfix output and command output, and refused by capture. \`NAME=value\` and \`NAME: value\` in text are redacted too. Default \`${DEFAULT_REDACT_KEYS.join(', ')}\`.`,
        ),
    })
    .prefault({})
    .describe('What counts as a secret besides values a service marks `secret`.'),
  patch: patchSchema.prefault({}),
})

/** The whole grail.yaml. */
export const grailSchema = z
  .strictObject({
    project: nameSchema('a project name').describe(
      'Project name (lowercase letters, digits, `-`). Labels every instance.',
    ),
    images: z
      .record(nameSchema('an image name'), imageSchema)
      .default({})
      .describe('Images to build, by name.'),
    services: z
      .record(serviceNameSchema('a service name'), serviceSchema)
      .default({})
      .describe('Services to run, by name: instances of one image.'),
    environments: z
      .record(nameSchema('an environment name'), environmentSchema)
      .prefault({ local: { provider: 'local' } })
      .describe('Where the services run, by name. Default `{local: {provider: local}}`.'),
    registry: registrySchema
      .optional()
      .describe(
        'The registry images are pushed to and pulled from: `https://host[:port]`, or a mapping with `url`, `prefix`, `auth`, `ca`, `insecure` and `cache`. Environments use it unless they set their own. See docs/registry.md.',
      ),
    policies: policiesSchema
      .prefault({})
      .describe('Project-wide rules: garbage collection, disruption budget, hotfixes, secrets, patching.'),
  })
  .describe('grail.yaml: the images, services, environments and policies of one Grail project.')

/** What a user may write in grail.yaml / grail.config.ts (shorthands allowed, defaults optional). */
export type GrailConfigInput = z.input<typeof grailSchema>
/** The schema's output: normalised values, before host paths and environments are resolved. */
export type GrailConfigParsed = z.output<typeof grailSchema>
