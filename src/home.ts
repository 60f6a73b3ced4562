import { join, resolve } from 'node:path'

/** Where Grail keeps everything for one project: `.grail/` beside the spec, or `$GRAIL_HOME`. */
export interface GrailHome {
  root: string
  db: string
  oci: string
  snapshots: string
  tmp: string
  runcRoot: string
  /** one OCI runtime bundle per deployed instance (local provider) */
  instances: string
  /** volume data, `<project>/<environment>/<name>`; outlives instances */
  volumes: string
}

export function resolveHome(projectDir: string, env: NodeJS.ProcessEnv = process.env): GrailHome {
  const root = env.GRAIL_HOME ? resolve(env.GRAIL_HOME) : join(projectDir, '.grail')
  return homeAt(root)
}

/** The layout of a Grail home rooted at `root` (also used for throwaway homes, e.g. `build --verify`). */
export function homeAt(root: string): GrailHome {
  return {
    root,
    db: join(root, 'state.db'),
    oci: join(root, 'oci'),
    snapshots: join(root, 'snapshots'),
    tmp: join(root, 'tmp'),
    runcRoot: join(root, 'runc'),
    instances: join(root, 'instances'),
    volumes: join(root, 'volumes'),
  }
}
