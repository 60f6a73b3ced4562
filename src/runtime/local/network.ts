import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { GrailError } from '../../errors.js'
import type { GrailHome } from '../../home.js'
import type { Command } from '../../util/exec.js'
import { runCommand } from '../../util/exec.js'

/**
 * An instance's own network: runc gives it a fresh network namespace (loopback only), and Grail links
 * that namespace to the host with a veth pair on a point-to-point link of two addresses from
 * 169.254.64.0/18, a part of the link-local range (addresses that by definition live on one link and
 * are never routed) that leaves out 169.254.169.0/24, where cloud metadata services live. The host end
 * gets a /32 with the instance's address as its peer, so the only route added to the host is one host
 * route per instance; no NAT, no bridge, no iptables rule, no way out: instances have no outbound
 * network (docs/deploying.md). The proxy and health checks reach an instance at its address.
 */
export const LINKS = 8192

/** The two addresses of link `index` (0 ≤ index < LINKS): the host's end and the instance's. */
export function linkAddresses(index: number): { host: string; instance: string } {
  if (!Number.isInteger(index) || index < 0 || index >= LINKS)
    throw new Error(`no link ${index}; this is a bug`)
  const third = 64 + (index >> 7)
  const fourth = (index & 127) * 2
  return { host: `169.254.${third}.${fourth}`, instance: `169.254.${third}.${fourth + 1}` }
}

/**
 * Interface names of link `index` (at most 15 characters, the kernel's limit): the name is the
 * allocation. `ip link add` of a name that exists fails, so two Grail processes (of any project on this
 * host) can never take the same link, with no lock and no shared file.
 */
export function linkInterfaces(index: number): { host: string; peer: string } {
  const hex = index.toString(16).padStart(4, '0')
  return { host: `grl${hex}`, peer: `grl${hex}p` }
}

/** The named network namespace of an instance: unique per Grail home and instance id, short. */
export function netnsName(home: GrailHome, id: string): string {
  return `grail-${createHash('sha256').update(`${home.runcRoot}\0${id}`).digest('hex').slice(0, 16)}`
}

/** Where the first allocation attempt for a namespace starts: spread by its name, so few attempts clash. */
function firstIndex(netns: string): number {
  return Number.parseInt(createHash('sha256').update(netns).digest('hex').slice(0, 8), 16) % LINKS
}

const ip = (...args: string[]): Command => ({ file: 'ip', args })

/** `ip` commands that wire link `index` between the host and namespace `netns`, as data. */
export function wireCommands(netns: string, index: number): Command[] {
  const { host, peer } = linkInterfaces(index)
  const a = linkAddresses(index)
  return [
    ip('addr', 'add', a.host, 'peer', a.instance, 'dev', host),
    ip('link', 'set', host, 'up'),
    ip('-n', netns, 'link', 'set', peer, 'name', 'eth0'),
    ip('-n', netns, 'addr', 'add', a.instance, 'peer', a.host, 'dev', 'eth0'),
    ip('-n', netns, 'link', 'set', 'eth0', 'up'),
  ]
}

/** `ip link add` of the veth pair of link `index`, its peer created right inside `netns`. */
export function vethCommand(netns: string, index: number): Command {
  const { host, peer } = linkInterfaces(index)
  return ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer, 'netns', netns)
}

/**
 * Names the network namespace of a created (not yet started) container `netns`, takes the first free
 * link from its spread start, and wires it. `onLink` is called with the link before it is configured,
 * so the caller records it before anything depends on it. Returns the link index.
 */
export async function wireInstance(opts: {
  netns: string
  pid: number
  onLink: (index: number) => Promise<void>
}): Promise<number> {
  await runCommand(ip('netns', 'attach', opts.netns, String(opts.pid)))
  const start = firstIndex(opts.netns)
  for (let i = 0; i < LINKS; i++) {
    const index = (start + i) % LINKS
    const res = await runCommand(vethCommand(opts.netns, index), { allowFailure: true })
    if (res.code !== 0) {
      if (/File exists/.test(res.stderr.toString('utf8'))) continue
      throw new GrailError('NETWORK_FAILED', `could not create the network link of ${opts.netns}`, {
        details: [res.stderr.toString('utf8').trim()],
        hint: 'Grail needs root and the iproute2 package (`ip`) for instance networks',
      })
    }
    await opts.onLink(index)
    for (const cmd of wireCommands(opts.netns, index)) await runCommand(cmd)
    return index
  }
  throw new GrailError('NETWORK_EXHAUSTED', `all ${LINKS} instance links of this host are in use`, {
    hint: 'destroy instances (`grail down` in projects that are not needed), or use network: host',
  })
}

/**
 * Removes what `wireInstance` made: the host end of the link (which takes its peer with it at once)
 * and the named namespace. Idempotent: what is not there is skipped.
 */
export async function unwireInstance(netns: string, index: number | undefined): Promise<void> {
  if (!existsSync(`/run/netns/${netns}`)) return
  // while the namespace exists, the link's name is still ours (its peer lives in the namespace); once the
  // namespace is gone, the kernel removes the pair and the name may already be another instance's
  if (index !== undefined && existsSync(`/sys/class/net/${linkInterfaces(index).host}`)) {
    await runCommand(ip('link', 'delete', linkInterfaces(index).host), { allowFailure: true })
  }
  await runCommand(ip('netns', 'delete', netns))
}
