import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { removeDir, tempProject } from '../../test/helpers/project.js'
import { resolveUser } from './process.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await removeDir(d)
})

test('users resolve against the image, not the host', async () => {
  const rootfs = await tempProject({
    'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nwww:x:33:34:www:/srv:/bin/sh\n',
    'etc/group': 'root:x:0:\nwww:x:34:\nstaff:x:50:\n',
  })
  dirs.push(rootfs)
  assert.deepEqual(await resolveUser(rootfs, undefined), { uid: 0, gid: 0 })
  assert.deepEqual(await resolveUser(rootfs, 'www'), { uid: 33, gid: 34 })
  assert.deepEqual(
    await resolveUser(rootfs, '33'),
    { uid: 33, gid: 34 },
    'a listed uid takes its primary group',
  )
  assert.deepEqual(await resolveUser(rootfs, '1000'), { uid: 1000, gid: 0 }, 'an unlisted uid gets group 0')
  assert.deepEqual(await resolveUser(rootfs, 'www:staff'), { uid: 33, gid: 50 })
  assert.deepEqual(await resolveUser(rootfs, '1000:1000'), { uid: 1000, gid: 1000 })
  await assert.rejects(resolveUser(rootfs, 'nobody'), { code: 'UNKNOWN_USER', message: /\/etc\/passwd/ })
  await assert.rejects(resolveUser(rootfs, 'www:wheel'), { code: 'UNKNOWN_GROUP', message: /"wheel"/ })
})
