import { ApiError } from '../api.js'
import { type Child, h } from '../dom.js'

/** A coloured label: health, image status, drift class. */
export function badge(text: string, kind: string = text): HTMLElement {
  return h('span', { class: `badge ${kind.replace(/[^a-z-]/gi, '')}` }, text)
}

/** A table with a header row; `rows` are arrays of cells, or ready rows. */
export function table(
  head: string[],
  rows: Array<HTMLTableRowElement | Child[]>,
  cls = '',
): HTMLTableElement {
  return h(
    'table',
    { class: cls },
    h('thead', null, h('tr', null, ...head.map((c) => h('th', null, c)))),
    h(
      'tbody',
      null,
      ...rows.map((r) => (Array.isArray(r) ? h('tr', null, ...r.map((c) => h('td', null, c))) : r)),
    ),
  )
}

/** An inline error box for a section whose fetch failed. */
export function errorBox(err: unknown): HTMLElement {
  if (err instanceof ApiError)
    return h(
      'div',
      { class: 'error' },
      h('strong', null, `${err.status || 'error'} ${err.code}`),
      `: ${err.message}`,
      err.hint ? h('div', { class: 'hint' }, `hint: ${err.hint}`) : null,
    )
  return h('div', { class: 'error' }, String(err))
}

/** Runs one fetch per item, keeping each one's value or error (a broken environment does not hide the others). */
export async function settle<K, T>(
  keys: K[],
  fn: (k: K) => Promise<T>,
): Promise<Map<K, T | ApiError | Error>> {
  const out = new Map<K, T | ApiError | Error>()
  await Promise.all(
    keys.map(async (k) => {
      try {
        out.set(k, await fn(k))
      } catch (err) {
        out.set(k, err instanceof Error ? err : new Error(String(err)))
      }
    }),
  )
  return out
}

/** A refresh that never runs twice at once: a call during a run makes one more run after it. */
export function serialized<A>(
  fn: (arg: A | undefined) => Promise<void>,
  merge: (a: A | undefined, b: A | undefined) => A | undefined,
): (arg?: A) => Promise<void> {
  let running: Promise<void> | undefined
  let again = false
  let pending: A | undefined
  const run = async (arg: A | undefined): Promise<void> => {
    try {
      await fn(arg)
    } finally {
      running = undefined
      if (again) {
        again = false
        const next = pending
        pending = undefined
        running = run(next)
      }
    }
  }
  return (arg?: A) => {
    if (running) {
      again = true
      pending = merge(pending, arg)
      return running
    }
    running = run(arg)
    return running
  }
}
