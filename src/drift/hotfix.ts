import { GrailError } from '../errors.js'
import type { ExecResult, FileChange } from '../runtime/types.js'
import { formatDuration } from '../spec/duration.js'
import {
  appendEvent,
  currentActor,
  finishHotfix,
  type HotfixRecord,
  insertHotfix,
  type InstanceRecord,
  liveInstances,
  redactorOf,
} from '../state/index.js'
import { redactText, redactValue } from '../util/redact.js'
import { fileDrift, hotfixChangeOf, sameChange } from './files.js'
import type { DriftEnv } from './scan.js'
import type { FileFinding } from './types.js'

/** Output kept in the event log per stream: enough to read what happened, bounded. */
const OUTPUT_LIMIT = 16 * 1024

export interface HotfixRequest {
  instance: string
  reason: string
  ttlMs: number
  command: string[]
  now?: number
}

export interface HotfixResult {
  hotfix: HotfixRecord
  exec: ExecResult
  /** what the command changed, with unified diffs of small text files */
  changes: FileFinding[]
}

const clip = (s: string): string =>
  s.length <= OUTPUT_LIMIT ? s : `${s.slice(0, OUTPUT_LIMIT)}\n[… ${s.length - OUTPUT_LIMIT} more bytes]`

/** The healthy instance `id` of the environment, or a user error naming it. */
export function liveInstance(a: DriftEnv, id: string): InstanceRecord {
  const rec = liveInstances(a.db, a.environment).find((r) => r.id === id)
  if (rec === undefined || rec.phase !== 'healthy') {
    throw new GrailError(
      'INSTANCE_NOT_FOUND',
      `no running instance ${id} in environment ${a.environment}${rec ? ` (it is ${rec.phase})` : ''}`,
      { hint: 'list the instances with `grail status`' },
    )
  }
  return rec
}

/**
 * A break-glass change: runs `command` inside the live instance and records who, when, why, the command,
 * its output and the files it changed, with the project's secrets redacted from all of it. The record
 * is written before the command runs (a killed run leaves it `running`, which excuses nothing); until
 * the TTL ends, drift that matches the recorded changes is
 * excused, after it the instance is replaced by the next apply.
 */
export async function runHotfix(a: DriftEnv, req: HotfixRequest): Promise<HotfixResult> {
  const policy = a.project.policies.hotfix
  if (req.command.length === 0) {
    throw new GrailError('HOTFIX_NO_COMMAND', 'grail hotfix needs a command after --', {
      hint: 'for example: grail hotfix INSTANCE --reason "..." --ttl 2h -- sh -c "echo fix > /etc/app.conf"',
    })
  }
  if (policy.requireReason && req.reason.trim() === '') {
    throw new GrailError('HOTFIX_NO_REASON', 'a hotfix needs a reason (policies.hotfix.requireReason)', {
      hint: 'say why with --reason "…": it goes into the audit log',
    })
  }
  if (!(req.ttlMs > 0) || req.ttlMs > policy.maxTtl) {
    throw new GrailError(
      'HOTFIX_TTL',
      `--ttl ${formatDuration(req.ttlMs)} is outside (0, ${formatDuration(policy.maxTtl)}] (policies.hotfix.maxTtl)`,
      { hint: 'a hotfix is temporary: capture it into the image (`grail capture`) for anything longer' },
    )
  }
  const rec = liveInstance(a, req.instance)
  const handle = { id: rec.id, provider: a.provider.name }
  const before = await a.provider.diff(handle)
  const now = req.now ?? Date.now()
  const hotfix = insertHotfix(a.db, {
    instance: rec.id,
    environment: a.environment,
    service: rec.service,
    actor: currentActor(),
    reason: redactText(req.reason, redactorOf(a.db)),
    // the record outlives the instance and is printed by drift and status: no secret goes into it
    command: redactValue(req.command, redactorOf(a.db)),
    expiresAt: new Date(now + req.ttlMs).toISOString(),
  })
  appendEvent(a.db, 'hotfix.started', rec.id, {
    hotfix: hotfix.id,
    reason: req.reason,
    command: req.command,
    expiresAt: hotfix.expiresAt,
  })
  const exec = await a.provider.exec(handle, req.command)
  const svc = a.project.environments[a.environment]?.services[rec.service]
  const image = (await a.provider.inspect(handle)).imageDigest
  const after = await fileDrift({
    home: a.home,
    store: a.store,
    provider: a.provider,
    instance: rec.id,
    image,
    ignore: svc?.drift.ignore ?? [],
    hotfixes: [],
    now,
    withDiffs: true,
  })
  const changedPaths = new Set(
    after.changes.filter((c) => !before.some((b) => sameChange(c, hotfixChangeOf(b)))).map((c) => c.path),
  )
  const changes: FileChange[] = after.changes.filter((c) => changedPaths.has(c.path))
  const findings = after.files.filter((f) => changedPaths.has(f.path))
  finishHotfix(a.db, hotfix.id, exec.code, changes.map(hotfixChangeOf))
  appendEvent(a.db, 'hotfix.applied', rec.id, {
    hotfix: hotfix.id,
    reason: req.reason,
    command: req.command,
    exitCode: exec.code,
    // redacted before it is clipped, so no secret is cut in two and half of it kept
    stdout: clip(redactText(exec.stdout, redactorOf(a.db))),
    stderr: clip(redactText(exec.stderr, redactorOf(a.db))),
    expiresAt: hotfix.expiresAt,
    changes: findings.map((f) => ({
      kind: f.kind,
      path: f.path,
      what: f.what,
      ...(f.diff ? { diff: f.diff } : {}),
    })),
  })
  return {
    hotfix: { ...hotfix, status: 'recorded', exitCode: exec.code, changes: changes.map(hotfixChangeOf) },
    exec,
    changes: findings,
  }
}
