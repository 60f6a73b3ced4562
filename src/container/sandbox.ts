// container/: the runc and overlayfs code the builder's sandboxed `run` steps and the local provider's
// instances share. This file: the OCI runtime config (config.json) of a bundle, and the runc, mount and
// umount argv that run it over an overlay of snapshot dirs, as data.
import type { Resources } from '../spec/types.js'
import type { Command } from '../util/exec.js'
import { defaultSeccomp } from './seccomp.js'

/** What a container (a build step or an instance) runs and with which identity. */
export interface SandboxProcess {
  argv: string[]
  env: string[]
  cwd: string
  uid: number
  gid: number
  additionalGids?: number[]
  network: boolean
  hostname?: string
  /** the process's umask (runc's default, 022, when unset) */
  umask?: number
}

const CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
]

/** What a long-running instance adds to a sandbox config; a build step passes none of it. */
export interface SandboxExtras {
  /** bind mounts (volumes, deploy files), after the standard /proc, /dev and /sys mounts */
  binds?: Array<{ source: string; destination: string; readonly: boolean }>
  /** OCI annotations, e.g. the labels that make a container attributable (`dev.grail.project`) */
  annotations?: Record<string, string>
  /**
   * Host path of a static init (tini) to run as PID 1 in front of the process, as `docker --init` does:
   * it forwards signals (an app that is PID 1 gets no default signal actions, so busybox httpd ignored
   * SIGTERM) and reaps orphaned children. Mounted read-only at `INIT_PATH`, on the /dev tmpfs, so it
   * never shows in the rootfs or its upper dir.
   */
  init?: string
  /** cgroup limits (memory, CPU time, processes) */
  resources?: Resources
  /** a user namespace mapping ids 0…size-1 to host ids base…: root inside is not root on the host */
  idMap?: { base: number; size: number }
  /** the rootfs mounted a second time at this path (non-recursive), on the /dev tmpfs */
  rootAlias?: string
}

/** OCI `linux.resources` for limits: memory in bytes, CPU time as a CFS quota per 100 ms period. */
export function cgroupResources(r: Resources): Record<string, unknown> {
  const period = 100_000
  return {
    ...(r.memory === undefined ? {} : { memory: { limit: r.memory } }),
    ...(r.cpus === undefined ? {} : { cpu: { quota: Math.round(r.cpus * period), period } }),
    ...(r.pids === undefined ? {} : { pids: { limit: r.pids } }),
  }
}

/** Where the init is mounted inside an instance. */
export const INIT_PATH = '/dev/init'

/**
 * The OCI runtime config (config.json) for one build step or instance. The rootfs is an overlay prepared
 * by the caller; network is off (a fresh network namespace with only loopback) unless the step asks for it
 * (instances use the host's, so they listen on loopback); the process gets the capabilities a package
 * manager needs and nothing from the host but /proc, /dev, /sys and the `extras` bind mounts.
 */
export function runtimeConfig(
  rootfs: string,
  proc: SandboxProcess,
  extras: SandboxExtras = {},
): Record<string, unknown> {
  const namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }]
  if (!proc.network) namespaces.push({ type: 'network' })
  if (extras.idMap) namespaces.push({ type: 'user' })
  const mounts: Array<Record<string, unknown>> = [
    { destination: '/proc', type: 'proc', source: 'proc' },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
    },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    // sysfs can be mounted only in a network namespace the user namespace owns; else the host's, bound
    extras.idMap && proc.network
      ? {
          destination: '/sys',
          type: 'bind',
          source: '/sys',
          options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'],
        }
      : { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  ]
  if (proc.network) {
    mounts.push({
      destination: '/etc/resolv.conf',
      type: 'bind',
      source: '/etc/resolv.conf',
      options: ['rbind', 'ro'],
    })
  }
  if (extras.init) {
    mounts.push({ destination: INIT_PATH, type: 'bind', source: extras.init, options: ['bind', 'ro'] })
  }
  if (extras.rootAlias) {
    mounts.push({ destination: extras.rootAlias, type: 'bind', source: rootfs, options: ['bind'] })
  }
  for (const b of extras.binds ?? []) {
    mounts.push({
      destination: b.destination,
      type: 'bind',
      source: b.source,
      options: ['rbind', b.readonly ? 'ro' : 'rw'],
    })
  }
  return {
    ociVersion: '1.0.2',
    ...(extras.annotations ? { annotations: extras.annotations } : {}),
    process: {
      terminal: false,
      user: {
        uid: proc.uid,
        gid: proc.gid,
        additionalGids: proc.additionalGids ?? [],
        ...(proc.umask === undefined ? {} : { umask: proc.umask }),
      },
      args: extras.init ? [INIT_PATH, '--', ...proc.argv] : proc.argv,
      env: proc.env,
      cwd: proc.cwd,
      capabilities: { bounding: CAPS, effective: CAPS, permitted: CAPS, inheritable: [], ambient: [] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 4096, soft: 4096 }],
      noNewPrivileges: true,
    },
    root: { path: rootfs, readonly: false },
    hostname: proc.hostname ?? 'grail-build',
    mounts,
    linux: {
      namespaces,
      maskedPaths: [
        '/proc/acpi',
        '/proc/asound',
        '/proc/kcore',
        '/proc/keys',
        '/proc/latency_stats',
        '/proc/timer_list',
        '/proc/timer_stats',
        '/proc/sched_debug',
        '/sys/firmware',
        '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
      seccomp: defaultSeccomp(),
      ...(extras.resources ? { resources: cgroupResources(extras.resources) } : {}),
      ...(extras.idMap
        ? {
            uidMappings: [{ containerID: 0, hostID: extras.idMap.base, size: extras.idMap.size }],
            gidMappings: [{ containerID: 0, hostID: extras.idMap.base, size: extras.idMap.size }],
          }
        : {}),
    },
  }
}

/** `runc run` for a bundle, foreground, with its own state root so Grail never touches other containers. */
export function runcRunCommand(opts: { runcRoot: string; bundle: string; id: string }): Command {
  return { file: 'runc', args: ['--root', opts.runcRoot, 'run', '--bundle', opts.bundle, opts.id] }
}

export function runcDeleteCommand(opts: { runcRoot: string; id: string }): Command {
  return { file: 'runc', args: ['--root', opts.runcRoot, 'delete', '--force', opts.id] }
}

/**
 * Mounts an overlay of read-only snapshot dirs (`lowers`, topmost first) with a writable upper dir.
 * redirect_dir, index and metacopy are off so the upper dir is a plain, self-contained record of changes:
 * renamed dirs are copied up whole and no file is a metadata-only stub.
 */
export function overlayMountCommand(opts: {
  lowers: string[]
  upper: string
  work: string
  target: string
}): Command {
  const options = [
    `lowerdir=${opts.lowers.join(':')}`,
    `upperdir=${opts.upper}`,
    `workdir=${opts.work}`,
    'redirect_dir=off',
    'index=off',
    'metacopy=off',
  ].join(',')
  return { file: 'mount', args: ['-t', 'overlay', 'overlay', '-o', options, opts.target] }
}

export function umountCommand(target: string): Command {
  return { file: 'umount', args: [target] }
}
