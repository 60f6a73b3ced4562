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

test('a patch build moves a pinned package to the newer version, and only a pinned one', () => {
  const cmd = mmdebstrapCommand(
    {
      kind: 'debian',
      suite: 'bookworm',
      variant: 'essential',
      include: ['busybox', 'kitty-terminfo=0.26.5-5', 'tzdata=2024a-0+deb12u1'],
      components: ['main'],
      architecture: 'amd64',
    },
    '/work/rootfs',
    1,
    { 'kitty-terminfo': '0.26.5-5+deb12u1', busybox: '1:1.35.0-4+b4' },
  )
  assert.ok(cmd.args.includes('--include=busybox,kitty-terminfo=0.26.5-5+deb12u1,tzdata=2024a-0+deb12u1'))
})
