// The counts of a node:test TAP report and the one summary line scripts/run-tests.mjs ends with. node:test
// counts a test that called `t.skip()` or had `{ skip }` only under "# skipped", never under "# pass", and
// this keeps it so: a skipped case is reported as skipped, never as passed.

/**
 * The totals of a TAP report as node's tap reporter ends it (`# pass N`, `# fail N`, `# cancelled N`,
 * `# skipped N`, `# todo N`). The last line of each wins: what a test prints to stdout comes out as a comment first
 * (`console.log('pass 9')` reads `# pass 9`).
 * A cancelled test (its file crashed, its parent failed, it timed out) counts as failed.
 */
export function tapCounts(text) {
  const last = (name) => {
    const all = [...text.matchAll(new RegExp(`^# ${name} (\\d+)$`, 'gm'))]
    return Number(all.at(-1)?.[1] ?? 0)
  }
  return {
    passed: last('pass'),
    failed: last('fail') + last('cancelled'),
    skipped: last('skipped'),
    todo: last('todo'),
  }
}

/** "N passed, N failed, N skipped", and ", N todo" when there are any. */
export function summaryLine(c) {
  return `${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped${c.todo ? `, ${c.todo} todo` : ''}`
}
