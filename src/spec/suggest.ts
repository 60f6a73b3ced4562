/**
 * "Did you mean" for spec keys, enum values, step kinds and image names. Candidates are compared after
 * folding case and dropping `-`/`_`, so `max_surge` finds `maxSurge` and `bluegreen` finds `blue-green`.
 */

/** Optimal string alignment distance: Levenshtein plus adjacent transpositions (`entrypiont` → 1). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1
  const cols = b.length + 1
  const d: number[] = new Array(rows * cols).fill(0)
  const at = (i: number, j: number): number => d[i * cols + j] as number
  for (let i = 0; i < rows; i++) d[i * cols] = i
  for (let j = 0; j < cols; j++) d[j] = j
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, at(i - 2, j - 2) + 1)
      d[i * cols + j] = v
    }
  }
  return at(a.length, b.length)
}

function fold(s: string): string {
  return s.toLowerCase().replace(/[-_\s]/g, '')
}

/**
 * The candidate closest to `input`, or undefined when none is close enough to be a plausible typo: at
 * most a third of the word's length apart (at least 1, so short keys still match), or one is a prefix
 * of the other (`rolling-update` → `rolling`).
 */
export function closest(input: string, candidates: Iterable<string>): string | undefined {
  const want = fold(input)
  if (want === '') return undefined
  let best: string | undefined
  let bestScore = Number.POSITIVE_INFINITY
  for (const c of candidates) {
    if (c === input) continue
    const have = fold(c)
    if (have === '') continue
    let score = editDistance(want, have)
    const limit = Math.max(1, Math.floor(Math.max(want.length, have.length) / 3))
    if (score > limit) {
      const prefix = have.length >= 3 && want.length >= 3 && (want.startsWith(have) || have.startsWith(want))
      if (!prefix) continue
      score = limit + 0.5
    }
    if (score < bestScore) {
      best = c
      bestScore = score
    }
  }
  return best
}

/** `did you mean "x"?` for the closest candidate, else undefined. */
export function didYouMean(input: string, candidates: Iterable<string>): string | undefined {
  const c = closest(input, candidates)
  return c === undefined ? undefined : `did you mean "${c}"?`
}

/** `"a", "b" or "c"`, for messages that list what is allowed. */
export function listOr(values: readonly string[], quote = true, word = 'or'): string {
  const q = values.map((v) => (quote ? `"${v}"` : v))
  if (q.length <= 1) return q.join('')
  return `${q.slice(0, -1).join(', ')} ${word} ${q[q.length - 1]}`
}

/** `"a", "b" and "c"`, for messages that list what was found. */
export function listAnd(values: readonly string[]): string {
  return listOr(values, true, 'and')
}
