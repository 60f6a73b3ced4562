// The programs the builder runs, as argv data: compared by equality, never passed through a shell.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { mmdebstrapCommand } from './base-debian.js'

test('mmdebstrap gets the variant, packages, suite and SOURCE_DATE_EPOCH', () => {
  const cmd = mmdebstrapCommand(
    {
      kind: 'debian',
      suite: 'bookworm',
      variant: 'essential',
      include: ['busybox', 'ca-certificates'],
      components: ['main'],
      architecture: 'amd64',
    },
    '/work/rootfs',
    1700000000,
  )
  assert.equal(cmd.file, 'mmdebstrap')
  assert.deepEqual(cmd.args, [
    '--mode=root',
    '--variant=essential',
    '--architectures=amd64',
    '--components=main',
    '--include=busybox,ca-certificates',
    'bookworm',
    '/work/rootfs',
  ])
  assert.equal(cmd.env?.SOURCE_DATE_EPOCH, '1700000000')
})
