import { InvalidArgumentError } from 'commander'

/**
 * A commander parser for a whole number ≥ `min`: `abc`, `1.5`, `-2` and `10x` are refused (where
 * `Number.parseInt` would read `10x` as 10 and `abc` as NaN), and commander names the argument.
 */
export function wholeNumber(what: string, min = 1): (value: string) => number {
  return (value) => {
    const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : Number.NaN
    if (!Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`expected ${what} (a whole number ≥ ${min}), found "${value}"`)
    }
    return n
  }
}
