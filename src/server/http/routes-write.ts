import { deployEnvironment, recycleEnvironment } from '../../engine/deploy.js'
import type { OpenedEnvironment, ServerContext } from '../context.js'
import { promoteReport } from '../../engine/promote.js'
import { rollbackService } from '../../engine/rollback.js'
import { setPinned } from '../../lifecycle/pin.js'
import { findImage, parseImageRef, revokeImages } from '../../lifecycle/revoke.js'
import { appendEvent } from '../../state/index.js'
import { environmentOf } from './routes-read.js'
import type { ApiRequest, ApiResult, Route } from './router.js'
import { schemaRef as ref } from './schemas.js'

/**
 * Runs a write on an environment: under its apply lock (LOCKED → 409 naming the holder), the request
 * recorded first as the event `api.VERB` with the token's name (`by`: a key named like "token" would be
 * redacted from the event log) and the reason, then the same engine
 * function the CLI command calls; then the reconciler is asked for a pass.
 */
async function environmentWrite<T>(
  ctx: ServerContext,
  r: ApiRequest,
  verb: string,
  subject: (env: string) => string,
  fn: (a: OpenedEnvironment) => Promise<T>,
): Promise<ApiResult> {
  const env = environmentOf(ctx, r.params.env as string)
  const { reason: _, ...args } = r.body
  const json = await ctx.withEnvironment(env, { lock: true }, async (a) => {
    appendEvent(a.db, `api.${verb}`, subject(env), {
      by: r.token?.name ?? null,
      reason: r.body.reason,
      environment: env,
      ...args,
    })
    return fn(a)
  })
  ctx.reconcileSoon(env)
  return { json }
}

/** An image version of the path, checked (BAD_IMAGE_REF 400, UNKNOWN_IMAGE 404): `NAME@VERSION`. */
function imageRefOf(ctx: ServerContext, r: ApiRequest): string {
  const ref = `${r.params.name}@${r.params.version}`
  findImage(ctx.db, parseImageRef(ref))
  return ref
}

const reasonOnly = 'Body: `{"reason": "…"}`; the reason goes into the event log.'

/** The POST and DELETE routes: apply, rollback, recycle, promote, revoke, pin and unpin. */
export function writeRoutes(ctx: ServerContext): Route[] {
  return [
    {
      method: 'POST',
      path: '/api/v1/environments/{env}/apply',
      access: 'write',
      body: {},
      doc: {
        summary: 'Converge the environment, as `grail apply ENV --json` (the images must be built)',
        description: `${reasonOnly} A release that fails its health gate is rolled back: the answer is 200 with \`results[].ok\` false.`,
        tags: ['writes'],
        response: ref('Deploy'),
      },
      handle: (r) =>
        environmentWrite(
          ctx,
          r,
          'apply',
          (env) => env,
          (a) => deployEnvironment(a),
        ),
    },
    {
      method: 'POST',
      path: '/api/v1/environments/{env}/services/{svc}/rollback',
      access: 'write',
      body: {
        release: {
          type: 'integer',
          description: 'the release to go back to (default: the one before the active one)',
        },
      },
      doc: {
        summary: 'Re-deploy an earlier release of a service, as `grail rollback SVC [RELEASE] -e ENV --json`',
        tags: ['writes'],
        response: ref('Rollback'),
      },
      handle: (r) =>
        environmentWrite(
          ctx,
          r,
          'rollback',
          () => r.params.svc as string,
          (a) =>
            rollbackService(a, {
              service: r.params.svc as string,
              ...(typeof r.body.release === 'number' ? { release: r.body.release } : {}),
            }),
        ),
    },
    {
      method: 'POST',
      path: '/api/v1/environments/{env}/recycle',
      access: 'write',
      body: { service: { type: 'string', description: 'only this service (default: every service)' } },
      doc: {
        summary: 'Replace the instances due by recycle.maxAge now, as `grail recycle ENV --json`',
        tags: ['writes'],
        response: ref('Recycle'),
      },
      handle: (r) =>
        environmentWrite(
          ctx,
          r,
          'recycle',
          (env) => (typeof r.body.service === 'string' ? r.body.service : env),
          (a) =>
            recycleEnvironment(a, {
              dryRun: false,
              now: Date.now(),
              ...(typeof r.body.service === 'string' ? { service: r.body.service } : {}),
            }),
        ),
    },
    {
      method: 'POST',
      path: '/api/v1/environments/{env}/services/{svc}/promote',
      access: 'write',
      body: {
        from: {
          type: 'string',
          required: true,
          description: 'the environment whose active release is promoted into {env}',
        },
      },
      doc: {
        summary:
          'Deploy in {env} the release of the service active in `from`, as `grail promote SVC --from FROM --to ENV --json`',
        tags: ['writes'],
        response: ref('Promote'),
      },
      handle: (r) =>
        environmentWrite(
          ctx,
          r,
          'promote',
          () => r.params.svc as string,
          (a) => promoteReport(a, r.params.svc as string, r.body.from as string),
        ),
    },
    {
      method: 'POST',
      path: '/api/v1/images/{name}/versions/{version}/revoke',
      access: 'write',
      body: { cascade: { type: 'boolean', description: 'also revoke every image built on it' } },
      doc: {
        summary: 'Pull an image version out of service, as `grail revoke NAME@VERSION --reason … --json`',
        description: `${reasonOnly} The next reconcile (or apply) of each environment replaces what runs it.`,
        tags: ['writes'],
        response: ref('Revoke'),
      },
      handle: async (r) => {
        const image = imageRefOf(ctx, r)
        const cascade = r.body.cascade === true
        appendEvent(ctx.db, 'api.revoke', image, {
          by: r.token?.name ?? null,
          reason: r.body.reason,
          cascade,
        })
        const json = revokeImages(ctx.db, image, r.body.reason as string, cascade)
        for (const env of ctx.environments) ctx.reconcileSoon(env)
        return { json }
      },
    },
    ...(['POST', 'DELETE'] as const).map(
      (method): Route => ({
        method,
        path: '/api/v1/images/{name}/versions/{version}/pin',
        access: 'write',
        body: {},
        doc: {
          summary:
            method === 'POST'
              ? 'Keep an image version through every gc, as `grail pin NAME@VERSION --json`'
              : 'Let gc collect a pinned version again, as `grail unpin NAME@VERSION --json`',
          tags: ['writes'],
          response: ref('Pin'),
        },
        handle: async (r) => {
          const image = imageRefOf(ctx, r)
          const verb = method === 'POST' ? 'pin' : 'unpin'
          appendEvent(ctx.db, `api.${verb}`, image, { by: r.token?.name ?? null, reason: r.body.reason })
          return {
            json: setPinned(ctx.db, image, { pinned: method === 'POST', reason: r.body.reason as string }),
          }
        },
      }),
    ),
  ]
}
