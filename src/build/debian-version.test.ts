import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { compareDebianVersions as cmp } from './debian-version.js'

/** [smaller, larger] pairs, each checked both ways. */
const ORDERED: Array<[string, string]> = [
  ['1.0', '1.1'],
  ['1.9', '1.10'],
  ['1.0~rc1', '1.0'],
  ['1.0~~', '1.0~'],
  ['1.0~', '1.0'],
  ['1.0', '1.0a'],
  ['1.0a', '1.0+'],
  ['1.0+', '1.0.1'],
  ['1.0-1', '1.0-2'],
  ['1.0-9', '1.0-10'],
  ['1.0-1', '1.0.1-1'],
  ['2:1.0', '10:0.1'],
  ['9.9', '1:0.1'],
  ['1.0-1~bpo12+1', '1.0-1'],
  ['2024a-0+deb12u1', '2024b-0+deb12u1'],
  ['2.36-9+deb12u9', '2.36-9+deb12u10'],
  ['0.26.5-5', '0.26.5-5+deb12u1'],
  ['3.0.17-1~deb12u2', '3.0.20-1~deb12u2'],
  ['1:9.2p1-2+deb12u7', '1:9.2p1-2+deb12u10'],
  ['8:6.9.11.60+dfsg-1.6+deb12u11', '8:6.9.11.60+dfsg-1.6+deb12u16'],
  ['1.2.3', '1.2.3-0.1'],
  ['a', 'b'],
  ['1.0-a', '1.0-b'],
]

const EQUAL: Array<[string, string]> = [
  ['1.0', '1.0'],
  ['1.0', '0:1.0'],
  ['1.0', '1.0-0'],
  ['1.00', '1.0'],
  ['1.001', '1.1'],
  ['2:1.0-1', '2:1.0-1'],
]

describe('Debian version ordering (dpkg)', () => {
  it('orders epochs, tildes, letters, revisions as dpkg does', () => {
    for (const [a, b] of ORDERED) {
      assert.equal(cmp(a, b), -1, `${a} < ${b}`)
      assert.equal(cmp(b, a), 1, `${b} > ${a}`)
    }
    for (const [a, b] of EQUAL) {
      assert.equal(cmp(a, b), 0, `${a} = ${b}`)
      assert.equal(cmp(b, a), 0, `${b} = ${a}`)
    }
  })

  it('agrees with dpkg --compare-versions', () => {
    const lt = (a: string, b: string): boolean => {
      try {
        execFileSync('dpkg', ['--compare-versions', a, 'lt', b])
        return true
      } catch {
        return false
      }
    }
    // every pair above, both ways, and each version against its neighbours in Grail's order (one dpkg
    // process per comparison: every pair of the list would take seconds)
    const sorted = [...new Set([...ORDERED, ...EQUAL].flat())].sort(cmp)
    const pairs: Array<[string, string]> = [...ORDERED, ...EQUAL]
    for (const [i, v] of sorted.entries()) for (const w of sorted.slice(i + 1, i + 3)) pairs.push([v, w])
    for (const [a, b] of pairs) {
      assert.equal(cmp(a, b) < 0, lt(a, b), `${a} lt ${b}`)
      assert.equal(cmp(b, a) < 0, lt(b, a), `${b} lt ${a}`)
    }
  })

  it('sorts a list', () => {
    const sorted = ['1:0.1', '1.0', '1.0~rc1', '1.0-1', '0.9', '1.0+b1'].sort(cmp)
    assert.deepEqual(sorted, ['0.9', '1.0~rc1', '1.0', '1.0-1', '1.0+b1', '1:0.1'])
  })
})
