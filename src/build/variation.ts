import { existsSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Command } from '../util/exec.js'

/**
 * What a `run` step sees of its surroundings beyond the image and the spec. A normal build fixes all of
 * it, so a step sees the same on every machine; the second build of `--verify` changes every part
 * (`VERIFY_VARIATION`), so a step that writes what it sees into the image gives another image, and the
 * comparison names the file.
 */
export interface StepVariation {
  /** the sandbox's UTS hostname */
  hostname: string
  /** added to the step's environment where the image and the step set none of the same kind */
  timezone?: string
  locale?: string
  /** the environment in reverse order */
  reverseEnv: boolean
  /** seconds added to CLOCK_MONOTONIC and CLOCK_BOOTTIME (a time namespace); the wall clock cannot be */
  clockOffset: number
  /** label of the host work dir (overlay upper and work dirs, visible in /proc/self/mountinfo) */
  workLabel: string
  /** the image's root mounted again at this path, the step started in its working dir below it */
  rootAlias?: string
}

export const NORMAL_VARIATION: StepVariation = {
  hostname: 'grail-build',
  reverseEnv: false,
  clockOffset: 0,
  workLabel: 'run',
}

export const VERIFY_VARIATION: StepVariation = {
  hostname: 'grail-verify-host',
  // 13:45 ahead of UTC, in POSIX form so it needs no zoneinfo: the hour, the minutes and mostly the date
  timezone: '<+1345>-13:45',
  locale: 'fr_CH.UTF-8',
  reverseEnv: true,
  // a year and a month
  clockOffset: 397 * 86_400,
  workLabel: 'run-verify-build-path',
  rootAlias: '/dev/.grail-verify-build-path',
}

/**
 * Every step's umask, in both builds: it sets the mode of each file a step creates (`echo > f` gives 0644
 * under 022, 0664 under 002), so varying it would fail nearly every build over a value no machine can
 * change. A step that reads it reads the same on every machine.
 */
export const STEP_UMASK = 0o022

const LOCALE_KEYS = /^(LANG|LANGUAGE|LC_[A-Z]+)=/

/** The step's environment under a variation; what the image or the step sets is never changed. */
export function variedEnv(env: readonly string[], v: StepVariation): string[] {
  const out = [...env]
  if (v.timezone && !out.some((e) => e.startsWith('TZ='))) out.push(`TZ=${v.timezone}`)
  if (v.locale && !out.some((e) => LOCALE_KEYS.test(e)))
    out.push(`LANG=${v.locale}`, `LC_ALL=${v.locale}`, `LANGUAGE=${v.locale.replace(/\..*$/, '')}`)
  return v.reverseEnv ? out.reverse() : out
}

/** Whether this kernel has time namespaces (Linux 5.6 and later, CONFIG_TIME_NS). */
export function timeNamespaces(): boolean {
  return existsSync('/proc/self/ns/time')
}

/**
 * Runs `cmd` (runc) in a new time namespace whose monotonic and boot-time clocks are `offset` seconds
 * ahead: runc 1.1 cannot set `linux.timeOffsets` itself, and the container inherits the namespace.
 */
export function inTimeNamespace(cmd: Command, offset: number): Command {
  if (offset === 0 || !timeNamespaces()) return cmd
  const o = String(offset)
  return {
    ...cmd,
    file: 'unshare',
    args: ['--time', '--monotonic', o, '--boottime', o, cmd.file, ...cmd.args],
  }
}

/**
 * Waits until the wall clock reads a later second than it did at `since` (ms): everything a build
 * observed before `since` then lies in another second than anything the next build observes.
 */
export async function nextSecond(since: number): Promise<void> {
  const target = (Math.floor(since / 1000) + 1) * 1000
  while (Date.now() < target) await sleep(target - Date.now() + 2)
}
