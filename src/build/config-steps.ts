import type { ImageConfig } from '../oci/types.js'
import type { Step } from '../spec/types.js'

export type ConfigStep = Exclude<Step, { kind: 'copy' } | { kind: 'run' }>

/** Label under which an image carries its health check (OCI image config has no field for it). */
export const HEALTHCHECK_LABEL = 'dev.grail.healthcheck'

export function isConfigStep(step: Step): step is ConfigStep {
  return step.kind !== 'copy' && step.kind !== 'run'
}

/** Sets or replaces `KEY=value` entries of an env list, keeping first-seen order. */
export function mergeEnv(list: readonly string[], add: Record<string, string>): string[] {
  const out = [...list]
  for (const [k, v] of Object.entries(add)) {
    const i = out.findIndex((e) => e.slice(0, e.indexOf('=')) === k)
    if (i >= 0) out[i] = `${k}=${v}`
    else out.push(`${k}=${v}`)
  }
  return out
}

/**
 * Applies a metadata step to an image config, returning a new config (pure: no layer, no I/O). Keys are
 * sorted where the format is a map so the config's bytes do not depend on step order within a map.
 */
export function applyConfigStep(image: ImageConfig, step: ConfigStep): ImageConfig {
  const c = { ...image.config }
  switch (step.kind) {
    case 'env':
      c.Env = mergeEnv(c.Env ?? [], step.env)
      break
    case 'user':
      c.User = step.user
      break
    case 'workdir':
      c.WorkingDir = step.path
      break
    case 'entrypoint':
      c.Entrypoint = step.argv
      // as in Docker: a new entrypoint drops an inherited cmd
      c.Cmd = undefined
      break
    case 'cmd':
      c.Cmd = step.argv
      break
    case 'expose':
      c.ExposedPorts = { ...c.ExposedPorts }
      for (const p of step.ports) c.ExposedPorts[`${p.port}/${p.protocol}`] = {}
      break
    case 'volume':
      c.Volumes = { ...c.Volumes }
      for (const p of step.paths) c.Volumes[p] = {}
      break
    case 'label':
      c.Labels = { ...c.Labels, ...step.labels }
      break
    case 'healthcheck':
      c.Labels = { ...c.Labels, [HEALTHCHECK_LABEL]: JSON.stringify(step.check) }
      break
  }
  return {
    ...image,
    config: c,
    history: [...(image.history ?? []), { created_by: `grail: ${describeStep(step)}`, empty_layer: true }],
  }
}

/** One line that names a step for progress output and image history. */
export function describeStep(step: Step): string {
  switch (step.kind) {
    case 'copy':
      return `copy ${step.from.join(' ')} ${step.to}`
    case 'run':
      return `run ${step.argv[0] === '/bin/sh' && step.argv[1] === '-c' ? step.argv.slice(2).join(' ') : JSON.stringify(step.argv)}`
    case 'env':
      return `env ${Object.keys(step.env).join(' ')}`
    case 'user':
      return `user ${step.user}`
    case 'workdir':
      return `workdir ${step.path}`
    case 'entrypoint':
      return `entrypoint ${JSON.stringify(step.argv)}`
    case 'cmd':
      return `cmd ${JSON.stringify(step.argv)}`
    case 'expose':
      return `expose ${step.ports.map((p) => `${p.port}/${p.protocol}`).join(' ')}`
    case 'volume':
      return `volume ${step.paths.join(' ')}`
    case 'label':
      return `label ${Object.keys(step.labels).join(' ')}`
    case 'healthcheck':
      return `healthcheck ${step.check.type}`
  }
}
