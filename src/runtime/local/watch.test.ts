import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { pidProbe } from './watch.js'

const stateOf = (pid: number): string => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
  return stat.charAt(stat.lastIndexOf(')') + 2)
}

test('pidProbe: a live process runs; a zombie its parent has not reaped and a reaped one do not', async () => {
  const probe = pidProbe()
  // the shell starts a short sleep and becomes a long one, which never reaps the short one: a zombie
  const parent = spawn('/bin/sh', ['-c', 'sleep 0.05 & echo $!; exec sleep 30'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  })
  const exited = once(parent, 'exit')
  try {
    const [line] = (await once(parent.stdout, 'data')) as [Buffer]
    const child = Number(line.toString().trim())
    assert.ok(probe.running(parent.pid as number))
    for (const until = Date.now() + 5000; stateOf(child) !== 'Z'; await sleep(10))
      assert.ok(Date.now() < until, 'the short sleep became a zombie')
    assert.equal(probe.running(child), false, 'a zombie has exited')
  } finally {
    parent.kill('SIGKILL')
    await exited
  }
  assert.equal(probe.running(parent.pid as number), false, 'a reaped process has exited')
  probe.close()
})
