import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { liveProcess } from './observe.js'

test('a process that is alive is read; one that died (a zombie its parent has not reaped) is gone, not an error', async () => {
  assert.ok((await liveProcess(process.pid))?.mountPoints.has('/'))
  // the inner sleep exits at once and its parent, exec'd into a long sleep, never reaps it
  const parent = spawn('/bin/sh', ['-c', 'sleep 0 & exec sleep 5'], { stdio: 'ignore' })
  try {
    let zombie: number | undefined
    for (let i = 0; i < 100 && zombie === undefined; i++) {
      await sleep(20)
      const kids = readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, 'utf8').trim()
      for (const pid of kids.split(' ').filter(Boolean).map(Number)) {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
        if (stat.charAt(stat.lastIndexOf(')') + 2) === 'Z') zombie = pid
      }
    }
    assert.ok(zombie, 'a zombie to read')
    assert.equal(await liveProcess(zombie), undefined)
    assert.equal(await liveProcess(2 ** 22 + 1), undefined)
  } finally {
    parent.kill('SIGKILL')
  }
})
