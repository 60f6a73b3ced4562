// What a real dockerd (test/helpers/dockerd.ts) needs to pull from a TestRegistry: trust in the test's CA
// and credentials for the client.
//
// Trust: Debian's dockerd 20.10 reads registry CAs only from /etc/docker/certs.d/HOST:PORT/ (the path is
// compiled in; only rootless mode uses $XDG_CONFIG_HOME/docker/certs.d, and neither `--config-file` nor
// daemon.json can move it). So `trustInDockerd` writes /etc/docker/certs.d/127.0.0.1:PORT/ca.crt and the
// function it returns removes that dir again; the port is the registry's fresh one, so no other test's
// registry shares the path. dockerd reads the dir on every pull, so no daemon restart is needed. A plain
// HTTP registry needs no CA but `--insecure-registry 127.0.0.1:PORT` in the daemon's argv instead
// (dockerd treats 127.0.0.0/8 as insecure by default, so loopback plain HTTP already works).
//
// Credentials: the docker client (not the daemon) reads `$DOCKER_CONFIG/config.json` `auths` and sends
// them with the pull; `writeDockerAuth` writes that file (0600) into the dockerd helper's private client
// config dir, so pulls need no `docker login` (whose password would be in argv or a TTY).
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { TestRegistry } from './registry.js'

export const DOCKER_CERTS_D = '/etc/docker/certs.d'

/** Makes every dockerd on this machine trust `registry`'s CA; returns the undo (idempotent). */
export async function trustInDockerd(
  registry: TestRegistry,
  certsD = DOCKER_CERTS_D,
): Promise<() => Promise<void>> {
  const dir = join(certsD, registry.host)
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'ca.crt'), await readFile(registry.caFile))
  let undone = false
  return async () => {
    if (undone) return
    undone = true
    await rm(dir, { recursive: true, force: true })
  }
}

/** Writes `configDir/config.json` with `auths[registry.host]` (base64 user:pass), mode 0600. */
export async function writeDockerAuth(
  configDir: string,
  registry: TestRegistry,
  creds: { username: string; password: string } = {
    username: registry.username,
    password: registry.password,
  },
): Promise<string> {
  const file = join(configDir, 'config.json')
  const auth = Buffer.from(`${creds.username}:${creds.password}`).toString('base64')
  await mkdir(configDir, { recursive: true })
  await writeFile(file, `${JSON.stringify({ auths: { [registry.host]: { auth } } }, null, 2)}\n`, {
    mode: 0o600,
  })
  await chmod(file, 0o600) // writeFile's mode applies only to a new file
  return file
}
