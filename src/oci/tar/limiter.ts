/** Runs background tasks with at most `limit` in flight; the first failure is rethrown by `run` or `drain`. */
export interface Limiter {
  /** Starts `task`, first waiting for a free slot. */
  run(task: () => Promise<void>): Promise<void>
  /** Waits for every task started so far. */
  drain(): Promise<void>
}

/**
 * A small bounded queue for independent work whose order does not matter (closing files after their
 * metadata is set). Failures are kept, never left as unhandled rejections, and surface on the next call.
 */
export function createLimiter(limit: number): Limiter {
  const inflight = new Set<Promise<void>>()
  let failure: { error: unknown } | undefined
  const check = () => {
    if (failure) throw failure.error
  }
  return {
    async run(task) {
      check()
      while (inflight.size >= limit) {
        await Promise.race(inflight)
        check()
      }
      const p: Promise<void> = task()
        .catch((error: unknown) => {
          failure ??= { error }
        })
        .finally(() => inflight.delete(p))
      inflight.add(p)
    },
    async drain() {
      await Promise.all(inflight)
      check()
    },
  }
}
